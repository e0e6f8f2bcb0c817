package gateway

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

// Random draws on the raft backend, whose walks seek forward only (a
// request each): SPOP on 5000 members reads a bounded number of sub-keys,
// draws are members and come with their values and scores, SPOP until
// empty returns each member once. Fairness of the forward-only walk is
// judged by the command package's tests (command/randpick_test.go runs
// every draw both ways): here each draw is dozens of requests, and the
// draws fairness needs took 10 minutes under the race detector.
func TestRandomPicksOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	conformance.RunRandomPicks(t, srv.Addr(), conformance.RandomPicks{Big: 5000, Pops: 20, Members: 150, Draws: 100,
		FewValueDraws: true, MembersOnly: true})
}
