// Package gateway tests nokv-redis on the raft backend over an in-process
// cluster of PD and three stores: blocking commands, multi-gateway
// writes, formats, limits, reclaiming and the rest. The conformance suite
// and the comparisons with redis-server run in tests/gatewaycompare.
package gateway

import (
	"fmt"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

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
