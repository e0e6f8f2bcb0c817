// Package stats owns the process-wide expvar variable NoKV.Stats. Each service
// registers its own section (NoKV.Stats.redis, NoKV.Stats.pd, ...); a test process
// that runs several services in-process must not publish the variable twice, which
// expvar forbids, so the publishing happens here, once.
package stats

import (
	"expvar"
	"sync"
)

var (
	once sync.Once
	root *expvar.Map
)

// Register sets NoKV.Stats.<section> to the value f returns at read time. A later
// Register of the same section replaces the earlier one (the newest server wins).
func Register(section string, f func() any) {
	once.Do(func() {
		root = new(expvar.Map)
		expvar.Publish("NoKV.Stats", root)
	})
	root.Set(section, expvar.Func(f))
}
