//go:build unix

package command

import (
	"syscall"
	"time"
)

// cpuUsage returns the system and user CPU time of the process and of its
// waited-for children (getrusage), for INFO cpu.
func cpuUsage() (self, children [2]time.Duration) {
	get := func(who int) [2]time.Duration {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) != nil {
			return [2]time.Duration{}
		}
		return [2]time.Duration{time.Duration(ru.Stime.Nano()), time.Duration(ru.Utime.Nano())}
	}
	return get(syscall.RUSAGE_SELF), get(syscall.RUSAGE_CHILDREN)
}
