package gateway

import (
	"sync/atomic"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// A command that panics inside its cluster transaction closes only its own
// connection; the gateway and every other client carry on.
func TestPanicIsContainedOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	var armed atomic.Bool
	srv := startGateway(t, c, func(cfg *gatewayserver.Config) {
		cfg.TestingKnobs.PanicOn = func(key []byte) bool {
			return armed.Load() && string(key) == conformance.PanicKey
		}
	})
	conformance.RunPanicContainment(t, srv.Addr(), armed.Store)
}
