package gateway

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

// Random draws on the raft backend, whose walks seek forward only (a
// request each): SPOP on 50k members reads a bounded number of sub-keys;
// fairness is checked on fewer members and draws than on the embedded
// backend, and for SRANDMEMBER only, each draw being dozens of requests
// (the race detector made 4000 draws of 200 members take over 10 minutes).
func TestRandomPicksOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	conformance.RunRandomPicks(t, srv.Addr(), conformance.RandomPicks{Pops: 30, Members: 150, Draws: 2000, FewValueDraws: true})
}
