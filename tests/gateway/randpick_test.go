package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

// SPOP runs on the raft backend with other writes between them (a load,
// pops, another load, pops: scripts/bench-collections.sh's SADD and SPOP
// tests run twice) pop from a sample drawn by one scan per run, not by
// walks: a walk is a dozen requests and more (~10 ms of CPU over the
// cluster), a scan a few µs per member. With the embedded backend's
// threshold the second run walked every pop (spopSampleAfterRemote in
// command/popcache.go).
func TestSPopAfterWritesSamplesOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: 2 * time.Minute})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	const first, more, pops = 8000, 4000, 60
	load := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i += 500 {
			var args []any
			for j := i; j < min(i+500, from+n); j++ {
				args = append(args, fmt.Sprintf("m:%06d", j))
			}
			if err := rc.SAdd(ctx, "sp", args...).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	popped := map[string]bool{}
	run := func() (samples, walks int64) {
		t.Helper()
		reads, walked := backendVar(t, "nokv_coll_pops", "batch_reads"), backendVar(t, "nokv_coll_random", "walks")
		for range pops {
			m, err := rc.SPop(ctx, "sp").Result()
			if err != nil {
				t.Fatal(err)
			}
			if popped[m] || !strings.HasPrefix(m, "m:") {
				t.Fatalf("SPOP answered %q, popped before or never added", m)
			}
			popped[m] = true
		}
		return backendVar(t, "nokv_coll_pops", "batch_reads") - reads, backendVar(t, "nokv_coll_random", "walks") - walked
	}
	load(0, first)
	if samples, walks := run(); samples != 1 || walks != 0 {
		t.Fatalf("first run of %d pops: %d samples, %d walks, want 1 and 0", pops, samples, walks)
	}
	load(first, more)
	if samples, walks := run(); samples != 1 || walks != 0 {
		t.Fatalf("run of %d pops after a load: %d samples, %d walks, want 1 and 0", pops, samples, walks)
	}
	n, err := rc.SCard(ctx, "sp").Result()
	if err != nil || n != first+more-2*pops {
		t.Fatalf("SCARD = %d, %v; want %d", n, err, first+more-2*pops)
	}
	for m := range popped {
		if ok, err := rc.SIsMember(ctx, "sp", m).Result(); err != nil || ok {
			t.Fatalf("SISMEMBER %s after its SPOP = %v, %v", m, ok, err)
		}
	}
}
