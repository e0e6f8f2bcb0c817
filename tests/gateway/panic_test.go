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
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Backend = gatewayserver.BackendRaft
	cfg.PDAddr = c.PDAddr()
	cfg.MaxRetries = 10
	cfg.TestingKnobs.PanicOn = func(key []byte) bool {
		return armed.Load() && string(key) == conformance.PanicKey
	}
	srv, err := gatewayserver.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	conformance.RunPanicContainment(t, srv.Addr(), armed.Store)
}
