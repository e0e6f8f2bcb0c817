// Package gateway runs the gateway's conformance suite against the raft
// backend: nokv-redis over an in-process cluster of PD and three stores.
package gateway

import (
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// startGateway runs nokv-redis with the raft backend against c.
func startGateway(t *testing.T, c *cluster.Cluster) *gatewayserver.Server {
	t.Helper()
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Backend = gatewayserver.BackendRaft
	cfg.PDAddr = c.PDAddr()
	cfg.MaxRetries = 10
	cfg.WorkDir = t.TempDir()
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
	return srv
}

func TestConformanceOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"m"}})
	srv := startGateway(t, c)
	// Every command is a cluster transaction run one after another, so the
	// suite's 1000-command pipeline takes seconds, more on a loaded machine.
	conformance.Run(t, conformance.Target{Addr: srv.Addr(), IncrClients: 10, IncrEach: 50, Timeout: 2 * time.Minute})
}
