package gatewayserver_test

import (
	"sync/atomic"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// startPanicky runs an embedded gateway whose writes to conformance.PanicKey
// panic while armed.
func startPanicky(t *testing.T) (addr string, arm func(bool)) {
	var armed atomic.Bool
	srv := startServer(t, func(c *gatewayserver.Config) {
		c.TestingKnobs.PanicOn = func(key []byte) bool {
			return armed.Load() && string(key) == conformance.PanicKey
		}
	})
	return srv.Addr(), armed.Store
}

func TestPanicIsContainedEventLoop(t *testing.T) {
	addr, arm := startPanicky(t)
	conformance.RunPanicContainment(t, addr, arm)
}

func TestPanicIsContainedRedconServer(t *testing.T) {
	t.Cleanup(gatewayserver.ServeWithRedcon())
	addr, arm := startPanicky(t)
	conformance.RunPanicContainment(t, addr, arm)
}
