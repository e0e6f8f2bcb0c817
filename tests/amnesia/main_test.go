// Package amnesia_test checks that a store that lost its data directory
// cannot rejoin under its old id (issue 11, data-loss path 2), that the
// documented replacement works, and that stores and PD refuse each other
// across cluster ids.
package amnesia_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}
