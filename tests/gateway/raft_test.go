// Package gateway runs the gateway's conformance suite against the raft
// backend: nokv-redis over an in-process cluster of PD and three stores.
package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// startGateway runs nokv-redis with the raft backend against c; mutate,
// if given, adjusts its settings first.
func startGateway(t *testing.T, c *cluster.Cluster, mutate ...func(*gatewayserver.Config)) *gatewayserver.Server {
	t.Helper()
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Backend = gatewayserver.BackendRaft
	cfg.PDAddr = c.PDAddr()
	cfg.MaxRetries = 10
	cfg.WorkDir = t.TempDir()
	for _, m := range mutate {
		m(&cfg)
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
	return srv
}

func TestConformanceOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	srv := startGateway(t, c)
	// Every command is a cluster transaction run one after another, so the
	// suite's 1000-command pipeline takes seconds, more on a loaded machine.
	// HashAndSetScanCursors pages through 300 elements, not 1000: each page
	// is a cluster read, and COUNT 1 over 1000 fields and members took
	// 139 s (RESP2) and 114 s (RESP3) under the race detector at load 13–20.
	conformance.Run(t, conformance.Target{Addr: srv.Addr(), IncrClients: 10, IncrEach: 50, Timeout: 2 * time.Minute,
		NoSwapDB: true, ScanElems: 300})
}

// On the raft backend every command of a pipeline is a cluster transaction,
// so a long pipeline takes seconds: its replies must flow while it runs, not
// all at its end, or clients' read timeouts fire first.
func TestPipelineRepliesFlowWhileItRuns(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	const n = 300
	var pipeline []byte
	for range n {
		pipeline = append(pipeline, conformance.Encode("INCR", "counter")...)
	}
	r := conformance.DialRaw(t, srv.Addr())
	r.Send(pipeline)
	if got := r.Read(); got != ":1\r\n" {
		t.Fatalf("first reply %q", got)
	}
	// The first reply has arrived; most of the pipeline has not run yet.
	probe := conformance.DialRaw(t, srv.Addr())
	reply := probe.Do("GET", "counter")
	var seen int
	if _, err := fmt.Sscanf(reply, "$%d\r\n%d\r\n", new(int), &seen); err != nil {
		t.Fatalf("GET counter = %q: %v", reply, err)
	}
	// Without the bound on holding, the first reply would come once redcon's
	// first read of the pipeline (4 KiB, ~146 INCRs) had run in full.
	t.Logf("the first reply came when %d of %d INCRs had run", seen, n)
	if seen >= 100 {
		t.Fatalf("the first reply came only after %d INCRs had run", seen)
	}
	for i := 2; i <= n; i++ {
		if got, want := r.Read(), fmt.Sprintf(":%d\r\n", i); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
}
