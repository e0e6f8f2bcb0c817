package raft_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/services/pd/pdserver"
	"github.com/nokv/nokv/services/store/storeserver"
	"github.com/nokv/nokv/tests/cluster"
)

// bigValue is the deterministic value of the i-th big key.
func bigValue(i, size int) string {
	head := fmt.Sprintf("value-%05d-", i)
	return head + strings.Repeat(string(rune('a'+i%26)), size-len(head))
}

// stopFollower stops a store that leads none of the regions, if there is
// one, and returns it.
func stopFollower(t *testing.T, c *cluster.Cluster, regions ...uint64) uint64 {
	t.Helper()
	ids := c.StoreIDs()
	choice := ids[len(ids)-1]
	for _, id := range slices.Backward(ids) {
		leads := false
		for _, r := range regions {
			leads = leads || c.WaitLeader(r).GetStoreId() == id
		}
		if !leads {
			choice = id
			break
		}
	}
	c.StopStore(choice)
	return choice
}

// waitTruncatedPast waits until the region's leader has truncated its log
// past index, so a peer that applied only up to it needs a snapshot.
func waitTruncatedPast(t *testing.T, c *cluster.Cluster, region, index uint64) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, func() error {
		info, err := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
		if err != nil {
			return err
		}
		if info.GetTruncatedIndex() <= index+1 {
			return fmt.Errorf("leader log truncated at %d, not past %d yet", info.GetTruncatedIndex(), index)
		}
		return nil
	})
}

// waitCaughtUp waits until the store's peer has applied what the leader has.
func waitCaughtUp(t *testing.T, c *cluster.Cluster, store, region uint64, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, func() error {
		lead, err := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
		if err != nil {
			return err
		}
		st, err := c.RegionInfo(store, region)
		if err != nil {
			return err
		}
		if st.GetRegionError() != nil {
			return fmt.Errorf("%s", st.GetRegionError().GetMessage())
		}
		if st.GetAppliedIndex() < lead.GetAppliedIndex() {
			return fmt.Errorf("store %d applied %d, leader %d", store, st.GetAppliedIndex(), lead.GetAppliedIndex())
		}
		return nil
	})
}

// scanCount counts the live keys in [start, end) at the leader, in pages.
func scanCount(t *testing.T, c *cluster.Cluster, start, end string) int {
	t.Helper()
	n := 0
	from := []byte(start)
	for {
		rc, store := c.MustLeaderContext(from)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ts, err := c.PDClient.GetTS(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		resp, err := c.Client(store).KvScan(ctx, &kvrpcpb.ScanRequest{Context: rc, StartKey: from, EndKey: []byte(end), Limit: 100, Version: ts, KeyOnly: true})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if re := resp.GetRegionError(); re != nil {
			t.Fatalf("scan: region error %s", re.GetMessage())
		}
		pairs := resp.GetPairs()
		n += len(pairs)
		if len(pairs) < 100 {
			return n
		}
		from = append(append([]byte(nil), pairs[len(pairs)-1].GetKey()...), 0)
	}
}

// putAll writes key(i)=value(i) for i in [0, n) from several goroutines,
// retrying each write for up to a minute.
func putAll(t *testing.T, c *cluster.Cluster, n, writers int, key func(int) string, value func(int) string) {
	t.Helper()
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errc = make(chan error, writers)
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				deadline := time.Now().Add(time.Minute)
				for {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := c.TryPut(ctx, []byte(key(i)), []byte(value(i)))
					cancel()
					if err == nil {
						break
					}
					if time.Now().After(deadline) {
						errc <- fmt.Errorf("put %s: %w", key(i), err)
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// getAt reads key at a fresh timestamp from store, which must lead the
// key's region.
func getAt(c *cluster.Cluster, store uint64, key string) (string, bool, error) {
	rc, leader, err := c.LeaderContext([]byte(key))
	if err != nil {
		return "", false, err
	}
	if leader != store {
		return "", false, fmt.Errorf("store %d leads %s's region, not store %d", leader, key, store)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ts, err := c.PDClient.GetTS(ctx)
	if err != nil {
		return "", false, err
	}
	resp, err := c.Client(store).KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: []byte(key), Version: ts})
	if err != nil {
		return "", false, err
	}
	if re := resp.GetRegionError(); re != nil {
		return "", false, fmt.Errorf("region error: %s", re.GetMessage())
	}
	if resp.GetError() != nil {
		return "", false, fmt.Errorf("key error: %v", resp.GetError())
	}
	return string(resp.GetValue()), !resp.GetNotFound(), nil
}

// TestLargeSnapshotBoundedMemory: a follower that comes back to a region
// of 160 MiB (1 MiB values) whose log the leader truncated catches up by
// snapshot. The snapshot is received into files, so the process's live
// heap grows by far less than the snapshot (the old receiver held all of
// it, and then a batch of all of it). Meanwhile another region, whose
// writes need that follower (the third store is down), keeps committing:
// receiving runs off the raft loop and the apply is an ingest, not a write
// of the whole region on the loop, so the receiving store's loop never
// stalls for the receipt. Afterwards the new replica serves every value.
//
// What this test checks of time is a sanity bound, not performance (the
// benchmarks measure that): under -race on a loaded 2-core machine a synced
// raft round of MiB entries takes 0.1-0.5 s and at times 1 s, and leaders
// whose quorum hangs on the one other live store step down and are
// re-elected now and then. The checks are sized to pass through that and
// to fail on a store that stops for the receipt (see the bounds below).
func TestLargeSnapshotBoundedMemory(t *testing.T) {
	const (
		values    = 160
		valueSize = 1 << 20
		// chunkDelay stretches the receipt of the big region's snapshot
		// (about one chunk per value) to at least 160 x 25 ms = 4 s, so
		// the other region's writes surely overlap it and the apply, and
		// a store that received on its raft loop would stall for 4 s.
		chunkDelay = 25 * time.Millisecond
		// maxRound bounds the receiving store's longest raft loop round
		// while it catches up: seen up to 1 s under -race on a loaded
		// machine, below the 4 s a loop busy with the receipt would take.
		maxRound = 2500 * time.Millisecond
		// maxWrite bounds the slowest write to the other region (each is
		// retried for up to 10 s, as a client would): a few election
		// timeouts and re-elections on a loaded machine, not a region
		// unavailable for the receipt.
		maxWrite = 5 * time.Second
	)
	var slowRegion atomic.Uint64
	c := cluster.Start(t, cluster.Options{
		RaftLogKeep: 5, SplitKeys: []string{"m"},
		// A 500 ms election timeout: with one store down every leader's
		// quorum hangs on a single follower, whose synced rounds of MiB
		// entries take up to half a second on a loaded machine; with the
		// default 200 ms check-quorum window leaders step down at every
		// slow fsync.
		Tick: 50 * time.Millisecond,
		// Keep the big region whole: PD splits regions past 96 MiB, and
		// whether that happens before or after the follower returns would
		// decide how many snapshots it needs.
		PDConfig: func(cfg *pdserver.Config) { cfg.RegionMaxSize = 1 << 30 },
		StoreConfig: func(id uint64, cfg *storeserver.Config) {
			cfg.TestingKnobs.SnapshotChunk = func(region uint64, n int) error {
				if region == slowRegion.Load() {
					time.Sleep(chunkDelay)
				}
				return nil
			}
		},
	})
	big := c.RegionFor([]byte("a")).GetId()
	other := c.RegionFor([]byte("z")).GetId()
	slowRegion.Store(big)
	// One store leads both regions; of the other two, one falls behind
	// and the last is stopped once it has, so every write to the other
	// region needs the store receiving the snapshot.
	leader := c.WaitLeader(big).GetStoreId()
	transferTo(t, c, other, leader)
	var rest []uint64
	for _, id := range c.StoreIDs() {
		if id != leader {
			rest = append(rest, id)
		}
	}
	lagging, third := rest[0], rest[1]
	c.StopStore(lagging)
	before, err := c.RegionInfo(leader, big)
	if err != nil {
		t.Fatal(err)
	}
	// Four writers: the leader persists and replicates a round's proposals
	// together, so their fsyncs overlap (one at a time, the writes took
	// one to two minutes under -race on a loaded machine).
	putAll(t, c, values, 4, func(i int) string { return fmt.Sprintf("big%05d", i) }, func(i int) string { return bigValue(i, valueSize) })
	waitTruncatedPast(t, c, big, before.GetAppliedIndex())
	c.StopStore(third)

	// Sample the live heap (after a forced GC) while the snapshot moves.
	var (
		peak     atomic.Uint64
		stop     = make(chan struct{})
		sampling sync.WaitGroup
	)
	liveHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := min(liveHeap(), liveHeap())
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		for {
			if h := liveHeap(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	c.StartStore(lagging)
	start := time.Now()
	// The other region commits again once the returning store's peer is
	// back; from then on, time its writes.
	cluster.Eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.TryPut(ctx, []byte("z-first"), []byte("v"))
	})
	var (
		mu       sync.Mutex
		lats     []time.Duration
		failures int
		errs     []string
		during   int
	)
	snapDone := make(chan struct{})
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			// As a client would, retry a write that met a leader change
			// until it commits or its 10 s run out; the time counts.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			t0 := time.Now()
			var err error
			for {
				if err = c.TryPut(ctx, []byte(fmt.Sprintf("z%05d", i)), []byte("v")); err == nil || ctx.Err() != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			d := time.Since(t0)
			cancel()
			mu.Lock()
			if err != nil {
				failures++
				if len(errs) < 5 {
					errs = append(errs, fmt.Sprintf("after %v: %v", time.Since(start), err))
				}
			} else {
				lats = append(lats, d)
				select {
				case <-snapDone:
				default:
					during++
				}
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitCaughtUp(t, c, lagging, big, 3*time.Minute)
	close(snapDone)
	took := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	sampling.Wait()

	growth := int64(peak.Load()) - int64(base)
	slices.Sort(lats)
	if len(lats) == 0 {
		t.Fatalf("no write to region %d committed while region %d's snapshot moved (%d failed: %q)", other, big, failures, errs)
	}
	st := c.StoreStats(lagging)
	round, _ := st["raft_round_max_ms"].(int64)
	p99, worst := lats[len(lats)*99/100], lats[len(lats)-1]
	t.Logf("snapshot of %d MiB caught up in %v; live heap %d MiB before, peak growth %d MiB; store %d's longest raft round %d ms; region %d: %d writes (%d before the snapshot was in), %d failed, p99 %v, max %v; errors %q",
		values*valueSize>>20, took, base>>20, growth>>20, lagging, round, other, len(lats), during, failures, p99, worst, errs)
	if limit := int64(values * valueSize / 3); growth > limit {
		t.Errorf("live heap grew by %d MiB while a %d MiB snapshot was received; want under %d MiB", growth>>20, values*valueSize>>20, limit>>20)
	}
	if during == 0 {
		t.Errorf("no write to region %d committed before region %d's snapshot was in", other, big)
	}
	if failures > 0 || worst > maxWrite {
		t.Errorf("writes to region %d while region %d's snapshot was received and applied: %d failed, slowest %v (want none failed, none over %v)", other, big, failures, worst, maxWrite)
	}
	if time.Duration(round)*time.Millisecond > maxRound {
		t.Errorf("store %d's raft loop stalled for %d ms in one round while it caught up (want under %v): every region of the store waited", lagging, round, maxRound)
	}
	if n, _ := st["raft_snapshots_received"].(int64); n < 1 {
		t.Errorf("store %d received no snapshot into files: %v", lagging, st)
	}

	// The new replica holds every value: make it the leader and read
	// there. Leadership may move meanwhile (PD balances leaders, and a
	// loaded machine makes leaders step down now and then): bring it back.
	for i := range values {
		k := fmt.Sprintf("big%05d", i)
		var (
			v  string
			ok bool
		)
		cluster.Eventually(t, time.Minute, func() error {
			var err error
			if v, ok, err = getAt(c, lagging, k); err != nil {
				transferWithin(t, c, big, lagging, 30*time.Second)
			}
			return err
		})
		if !ok || v != bigValue(i, valueSize) {
			t.Fatalf("%s after the snapshot: found %v, %d bytes, right value %v", k, ok, len(v), v == bigValue(i, valueSize))
		}
	}
}

// TestSnapshotApplyCrashRecovers: the store applying a snapshot fails
// (as a crash would) after the APPLYING mark and before, or after, the
// ingest. It restarts, completes the apply from the kept files, catches
// up and converges: every key is there once with its last value.
func TestSnapshotApplyCrashRecovers(t *testing.T) {
	for _, stage := range []string{"before-ingest", "after-ingest"} {
		t.Run(stage, func(t *testing.T) {
			var (
				victim atomic.Uint64
				armed  atomic.Bool
				fired  = make(chan struct{})
				once   sync.Once
			)
			c := cluster.Start(t, cluster.Options{RaftLogKeep: 5, StoreConfig: func(id uint64, cfg *storeserver.Config) {
				cfg.TestingKnobs.SnapshotApply = func(region uint64, at string) error {
					if at == stage && id == victim.Load() && armed.CompareAndSwap(true, false) {
						once.Do(func() { close(fired) })
						return errors.New("injected crash")
					}
					return nil
				}
			}})
			region := c.RegionFor([]byte("a")).GetId()
			for i := range 50 {
				c.MustPut(fmt.Sprintf("k%03d", i), "old")
			}
			id := stopFollower(t, c, region)
			victim.Store(id)
			before, _ := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
			for i := range 120 {
				c.MustPut(fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i))
			}
			waitTruncatedPast(t, c, region, before.GetAppliedIndex())
			armed.Store(true)
			c.StartStore(id)
			select {
			case <-fired:
			case <-time.After(60 * time.Second):
				t.Fatal("the snapshot apply never reached the injected crash")
			}
			c.StopStore(id)
			c.StartStore(id)
			if st := c.StoreStats(id); st["raft_snapshot_applies_resumed"] != int64(1) {
				t.Fatalf("the restarted store did not complete the interrupted apply: %v", st)
			}
			waitCaughtUp(t, c, id, region, 60*time.Second)
			transferTo(t, c, region, id)
			for i := range 120 {
				k := fmt.Sprintf("k%03d", i)
				if v, ok := c.MustGet(k); !ok || v != fmt.Sprintf("v%03d", i) {
					t.Fatalf("%s after the crash and a fresh snapshot: %q, %v", k, v, ok)
				}
			}
			if n := scanCount(t, c, "k", "l"); n != 120 {
				t.Fatalf("scan finds %d keys, want 120", n)
			}
		})
	}
}

// TestRefusedSnapshotRetriesAfterAPause: a follower's store refuses the
// snapshot it needs (here: its receipt fails at the first chunk, as a store
// with all its snapshot slots busy refuses at once). The leader retries,
// but not at every heartbeat: each failed send is reported to raft only
// after a pause, so a refusing store is not hit by a new stream, read and
// sent from the start, every few tens of milliseconds. Once it accepts,
// the follower catches up.
func TestRefusedSnapshotRetriesAfterAPause(t *testing.T) {
	var refuse atomic.Bool
	c := cluster.Start(t, cluster.Options{RaftLogKeep: 5, StoreConfig: func(id uint64, cfg *storeserver.Config) {
		cfg.TestingKnobs.SnapshotChunk = func(region uint64, n int) error {
			if refuse.Load() {
				return errors.New("injected refusal")
			}
			return nil
		}
	}})
	region := c.RegionFor([]byte("a")).GetId()
	id := stopFollower(t, c, region)
	leader := c.WaitLeader(region).GetStoreId()
	before, _ := c.RegionInfo(leader, region)
	// Past the log a leader keeps for a follower (20 x RaftLogKeep).
	for i := range 120 {
		c.MustPut(fmt.Sprintf("k%03d", i), "v")
	}
	waitTruncatedPast(t, c, region, before.GetAppliedIndex())
	refuse.Store(true)
	failures := func() int64 { n, _ := c.StoreStats(leader)["raft_snapshot_send_failures"].(int64); return n }
	base := failures()
	c.StartStore(id)
	// The first refusal comes within a few heartbeats of the start.
	cluster.Eventually(t, 30*time.Second, func() error {
		if failures() == base {
			return errors.New("no snapshot refused yet")
		}
		return nil
	})
	const window = 3 * time.Second
	from := failures()
	time.Sleep(window)
	// One retry a second at most (plus one in flight at either end);
	// without the pause, one every heartbeat (40 ms here): dozens.
	if n := failures() - from; n > 5 {
		t.Fatalf("the leader sent %d snapshots in %v to a store that refused them all; want a retry a second at most", n, window)
	}
	refuse.Store(false)
	waitCaughtUp(t, c, id, region, time.Minute)
	transferTo(t, c, region, id)
	if n := scanCount(t, c, "k", "l"); n != 120 {
		t.Fatalf("scan finds %d keys at the caught-up store, want 120", n)
	}
}
