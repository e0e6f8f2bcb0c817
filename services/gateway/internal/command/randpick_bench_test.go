package command

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
)

// bigSet fills key with n members "m:00000"... (SADD in batches of 1000).
func bigSet(b *testing.B, e *Executor, c *Client, key string, n int) {
	b.Helper()
	for i := 0; i < n; i += 1000 {
		args := []string{"SADD", key}
		for j := i; j < min(i+1000, n); j++ {
			args = append(args, fmt.Sprintf("m:%05d", j))
		}
		benchSetup(b, e, c, args...)
	}
}

// BenchmarkSPop is SPOP on a set of 50k members (docs/benchmarks.md,
// "Collections": 73 pops/s when SPOP read up to the drawn position). The
// set is refilled (outside the measurement) whenever it shrank by 10k,
// so every pop sees 40k-50k members.
func BenchmarkSPop(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncNo)
	const n = 50000
	bigSet(b, e, c, "s", n)
	pop := argv("SPOP", "s")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPUClock(b)
	defer cpu.report()
	i := 0
	for b.Loop() {
		if i++; i%10000 == 0 {
			b.StopTimer()
			cpu.pause()
			bigSet(b, e, c, "s", n)
			cpu.resume()
			b.StartTimer()
		}
		if err := e.Exec(b.Context(), c, pop, true); err != nil {
			b.Fatal(err)
		}
		c.Out.Reset()
	}
}

// BenchmarkSRandMember is SRANDMEMBER on a set of 50k members.
func BenchmarkSRandMember(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncNo)
	bigSet(b, e, c, "s", 50000)
	rand := argv("SRANDMEMBER", "s")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := startCPUClock(b)
	defer cpu.report()
	for b.Loop() {
		if err := e.Exec(b.Context(), c, rand, true); err != nil {
			b.Fatal(err)
		}
		c.Out.Reset()
	}
}

// cpuClock measures the process's CPU time (user + system, Pebble's
// background work included) over a benchmark's loop: on a shared machine
// the wall clock's ns/op says more about the neighbours.
type cpuClock struct {
	b            *testing.B
	start, spent int64
}

func startCPUClock(b *testing.B) *cpuClock {
	return &cpuClock{b: b, start: rusageNs(b)}
}

func (c *cpuClock) pause()  { c.spent += rusageNs(c.b) - c.start }
func (c *cpuClock) resume() { c.start = rusageNs(c.b) }

func (c *cpuClock) report() {
	c.pause()
	c.b.ReportMetric(float64(c.spent)/float64(c.b.N), "cpu-ns/op")
}

func rusageNs(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
