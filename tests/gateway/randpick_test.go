package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
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
// tests run twice) pop from one sample per run, not by walks: a walk is a
// dozen requests and more (~10 ms of CPU over the cluster), a scan a few
// µs per member. With the embedded backend's threshold the second run
// walked every pop (spopSampleAfterRemote in command/popcache.go). The
// first run's sample is the reservoir the set's SADDs kept (no scan:
// command/spopfill.go), the second's a scan (the load's SADDs found the
// set popped from, and the sample then stale).
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
	run := func() (scans, adopted, walks int64) {
		t.Helper()
		reads, walked := backendVar(t, "nokv_coll_pops", "batch_reads"), backendVar(t, "nokv_coll_random", "walks")
		fills := backendVar(t, "nokv_coll_pops", "fill_adopted")
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
		return backendVar(t, "nokv_coll_pops", "batch_reads") - reads, backendVar(t, "nokv_coll_pops", "fill_adopted") - fills,
			backendVar(t, "nokv_coll_random", "walks") - walked
	}
	load(0, first)
	if scans, adopted, walks := run(); scans != 0 || adopted != 1 || walks != 0 {
		t.Fatalf("first run of %d pops: %d scans, %d samples adopted from SADD's reservoir, %d walks, want 0, 1 and 0",
			pops, scans, adopted, walks)
	}
	load(first, more)
	if scans, adopted, walks := run(); scans != 1 || adopted != 0 || walks != 0 {
		t.Fatalf("run of %d pops after a load: %d scans, %d samples adopted, %d walks, want 1, 0 and 0", pops, scans, adopted, walks)
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

// A job queue on one set through two raft gateways at once: workers SADD
// a new member and SPOP, over and over, so each gateway's kept SPOP sample
// (command/popcache.go) sees the other's writes and pops, and conflicting
// transactions retry. Every SPOP must answer a member that was added and
// not popped before, and what was popped plus what is left must be
// exactly what was added, each once, with SCARD agreeing; the pops must
// have come from kept samples, reading their members first, some of them
// named in a combined transaction's run ahead (read in its batch).
func TestSPopQueueAcrossTwoRaftGateways(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	gws := []string{startGateway(t, c).Addr(), startGateway(t, c).Addr()}
	notWritten := func(r string) bool {
		return strings.HasPrefix(r, "-ERR too many concurrent writes") || strings.HasPrefix(r, "-ERR cluster unavailable")
	}
	const initial, workers, perWorker = 3000, 8, 50
	conn := conformance.DialRaw(t, gws[0])
	for i := 0; i < initial; i += 500 {
		args := []string{"SADD", "q"}
		for j := i; j < i+500; j++ {
			args = append(args, fmt.Sprintf("m:%05d", j))
		}
		if r := conn.Do(args...); r != ":500\r\n" {
			t.Fatalf("SADD: %q", r)
		}
	}
	hits, verified := backendVar(t, "nokv_coll_pops", "batch_hits"), backendVar(t, "nokv_coll_pops", "sample_verified")
	walks, ahead := backendVar(t, "nokv_coll_random", "walks"), backendVar(t, "nokv_coll_pops", "sample_ahead")
	retaken := backendVar(t, "nokv_coll_pops", "sample_retaken")
	var (
		mu       sync.Mutex
		popped   = map[string]int{}
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	do := func(conn *conformance.RawConn, args ...string) string {
		for {
			if r := conn.Do(args...); !notWritten(r) {
				return r
			}
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conformance.DialRaw(t, gws[w%2])
			for i := range perWorker {
				if r := do(conn, "SADD", "q", fmt.Sprintf("w%d:%03d", w, i)); r != ":1\r\n" {
					fail("SADD: %q", r)
					return
				}
				r := do(conn, "SPOP", "q")
				lines := strings.Split(r, "\r\n")
				if len(lines) != 3 || r[0] != '$' {
					fail("SPOP: %q", r)
					return
				}
				mu.Lock()
				popped[lines[1]]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	added := map[string]bool{}
	for i := range initial {
		added[fmt.Sprintf("m:%05d", i)] = true
	}
	for w := range workers {
		for i := range perWorker {
			added[fmt.Sprintf("w%d:%03d", w, i)] = true
		}
	}
	for m, n := range popped {
		if n != 1 || !added[m] {
			t.Fatalf("SPOP answered %q %d times (added: %v)", m, n, added[m])
		}
	}
	left := conformance.DialRaw(t, gws[1]).Do("SMEMBERS", "q")
	nLeft := 0
	for _, line := range strings.Split(left, "\r\n") {
		if strings.HasPrefix(line, "m:") || strings.HasPrefix(line, "w") {
			nLeft++
			if popped[line] != 0 || !added[line] {
				t.Fatalf("SMEMBERS holds %q, popped %d times, added: %v", line, popped[line], added[line])
			}
		}
	}
	if nLeft+len(popped) != len(added) {
		t.Fatalf("%d members left and %d popped, %d added", nLeft, len(popped), len(added))
	}
	if r := conn.Do("SCARD", "q"); r != fmt.Sprintf(":%d\r\n", nLeft) {
		t.Fatalf("SCARD = %q, %d members left", r, nLeft)
	}
	pops := int64(workers * perWorker)
	gotHits := backendVar(t, "nokv_coll_pops", "batch_hits") - hits
	gotVerified := backendVar(t, "nokv_coll_pops", "sample_verified") - verified
	gotAhead := backendVar(t, "nokv_coll_pops", "sample_ahead") - ahead
	t.Logf("%d SPOPs: %d attempts (retries included) from kept samples, %d members verified, %d named in a run ahead, "+
		"%d retried with the member taken before, %d walks", pops, gotHits, gotVerified, gotAhead,
		backendVar(t, "nokv_coll_pops", "sample_retaken")-retaken, backendVar(t, "nokv_coll_random", "walks")-walks)
	if gotHits < pops/2 || gotVerified < pops/2 {
		t.Fatalf("%d SPOPs: %d from kept samples, %d members verified; want most of them", pops, gotHits, gotVerified)
	}
	if gotAhead == 0 {
		t.Fatalf("%d SPOPs, none named its member in a combined transaction's run ahead", pops)
	}
}
