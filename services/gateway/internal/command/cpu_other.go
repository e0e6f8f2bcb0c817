//go:build !unix

package command

import "time"

// cpuUsage is not available here: INFO cpu reports zeros.
func cpuUsage() (self, children [2]time.Duration) { return }
