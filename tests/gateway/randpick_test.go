package gateway

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

// Random draws on the raft backend, whose walks seek forward only (a
// request each): SPOP on 50k members reads a bounded number of sub-keys;
// fairness is checked on fewer members and draws than on the embedded
// backend, each draw being dozens of requests.
func TestRandomPicksOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	conformance.RunRandomPicks(t, srv.Addr(), conformance.RandomPicks{Pops: 30, Members: 200, Draws: 4000})
}
