package gc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// gcLifeTime is short so that a test sees GC pass its transactions within
// seconds, and long enough that a transaction the test drives by hand
// finishes its commit well within it, even under -race.
const gcLifeTime = 3 * time.Second

// startGCCluster starts three stores with regions (-inf, "m") and
// ["m", +inf), collecting every 100ms what is older than gcLifeTime.
func startGCCluster(t *testing.T) *cluster.Cluster {
	return cluster.Start(t, cluster.Options{SplitKeys: []string{"m"}, GCInterval: 100 * time.Millisecond, GCLifeTime: gcLifeTime})
}

// TestGCKeepsCommittedSecondaries is the gateway that dies between the
// commit of a transaction's primary and the commit of its secondaries: the
// primary ("a/...", first region) is committed, the secondary ("z/...",
// second region) stays locked and nobody reads it, the primary is then
// overwritten or deleted, and GC runs past all of it. GC must not lose the
// transaction: before it collects the primary's commit record, the
// secondary must be committed (TiKV resolves every lock below the safe
// point first). Without that, the next reader of the secondary asks the
// primary, finds no record of the transaction and rolls the committed
// secondary back.
func TestGCKeepsCommittedSecondaries(t *testing.T) {
	c := startGCCluster(t)
	kc := newClient(t, c)
	for _, tc := range []struct {
		name   string
		change func(key []byte) error // overwrites or deletes the primary
		want   string                 // the primary afterwards; "" absent
	}{
		{"Overwritten", func(k []byte) error { return kc.Set(testCtx(t), k, []byte("newer"), 0) }, "newer"},
		{"Deleted", func(k []byte) error { return kc.Delete(testCtx(t), k) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			primary, secondary := "a/"+tc.name, "z/"+tc.name
			startTS := mustTS(t, c)
			// A short TTL: once it has run out, a reader of the secondary
			// rolls it back unless the primary says committed.
			c.RawPrewrite(t, startTS, primary, 500, map[string]string{primary: "p-committed", secondary: "s-committed"})
			commitTS := mustTS(t, c)
			if kerr := c.RawCommit(t, startTS, commitTS, primary); kerr != nil {
				t.Fatalf("commit of the primary: %v", kerr)
			}
			// The client dies here: the secondary stays locked.
			if err := tc.change([]byte(primary)); err != nil {
				t.Fatalf("change the primary: %v", err)
			}
			waitGCPast(t, c, mustTS(t, c))
			// The scenario happened: GC has collected the primary's commit
			// record (a read at the commit finds nothing, or is refused
			// below the safe point).
			if e, found, err := kc.Snapshot(commitTS).Get(testCtx(t), []byte(primary)); err == nil && found {
				t.Fatalf("the primary's committed version %q is still there: GC did not run past it", e.Value)
			}

			if locks := locksIn(t, c, secondary); len(locks) != 0 {
				t.Errorf("GC collected past the committed transaction %d but left its secondary locked: %v", startTS, locks)
			}
			wantValue(t, kc, secondary, "s-committed")
			if resolvedByGC(c) == 0 {
				t.Error("no store reports locks resolved by GC")
			}
			if tc.want == "" {
				wantAbsent(t, kc, primary)
			} else {
				wantValue(t, kc, primary, tc.want)
			}
		})
	}
}

// TestGCRollsBackOldLocks: a transaction whose client died after its
// prewrites, with locks that would live for an hour, must not hold GC back
// for that hour nor be left for readers: once the safe point passes its
// start, GC has rolled it back (as TiKV's GC does with every transaction
// older than the GC life time), and its late commit fails.
func TestGCRollsBackOldLocks(t *testing.T) {
	c := startGCCluster(t)
	kc := newClient(t, c)
	mustSet(t, kc, "z/old", "before")
	startTS := mustTS(t, c)
	c.RawPrewrite(t, startTS, "a/old", uint64(time.Hour.Milliseconds()), map[string]string{"a/old": "never", "z/old": "never"})
	waitGCPast(t, c, startTS)
	for _, k := range []string{"a/old", "z/old"} {
		if locks := locksIn(t, c, k); len(locks) != 0 {
			t.Fatalf("GC passed transaction %d but left its locks: %v", startTS, locks)
		}
	}
	// No lock to wait for: the reads answer at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e, found, err := kc.Get(ctx, []byte("z/old")); err != nil || !found || string(e.Value) != "before" {
		t.Fatalf("z/old = %q (found %v), %v; want the value from before the abandoned transaction", e.Value, found, err)
	}
	if _, found, err := kc.Get(ctx, []byte("a/old")); err != nil || found {
		t.Fatalf("a/old found %v, %v; want absent", found, err)
	}
	if kerr := c.RawCommit(t, startTS, mustTS(t, c), "a/old"); kerr == nil {
		t.Fatal("the rolled-back transaction committed late")
	}
}

// resolvedByGC sums the locks the stores resolved while driving GC.
func resolvedByGC(c *cluster.Cluster) int64 {
	var n int64
	for _, id := range c.StoreIDs() {
		v, _ := c.StoreStats(id)["gc_locks_resolved"].(int64)
		n += v
	}
	return n
}

// waitGCPast waits until PD's GC safe point is above ts and every store
// has then run two more GC rounds, so that each has collected with a safe
// point above ts.
func waitGCPast(t *testing.T, c *cluster.Cluster, ts uint64) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, func() error {
		sp, err := c.PDClient.GetGCSafePoint(testCtx(t))
		if err != nil {
			return err
		}
		if sp <= ts {
			return fmt.Errorf("GC safe point %d not above %d yet", sp, ts)
		}
		return nil
	})
	rounds := func(id uint64) int64 {
		n, _ := c.StoreStats(id)["gc_rounds"].(int64)
		return n
	}
	start := map[uint64]int64{}
	for _, id := range c.StoreIDs() {
		start[id] = rounds(id)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		for _, id := range c.StoreIDs() {
			if n := rounds(id); n < start[id]+2 {
				return fmt.Errorf("store %d ran %d GC rounds since, want 2", id, n-start[id])
			}
		}
		return nil
	})
}

func newClient(t *testing.T, c *cluster.Cluster) *kvclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kc, err := kvclient.New(ctx, c.PDAddr(), kvclient.Options{MaxRetries: c.File().MaxRetries})
	if err != nil {
		t.Fatalf("kvclient.New: %v", err)
	}
	t.Cleanup(kc.Close)
	return kc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustTS(t *testing.T, c *cluster.Cluster) uint64 {
	t.Helper()
	ts, err := c.PDClient.GetTS(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func mustSet(t *testing.T, kc *kvclient.Client, key, value string) {
	t.Helper()
	if err := kc.Set(testCtx(t), []byte(key), []byte(value), 0); err != nil {
		t.Fatalf("set %s: %v", key, err)
	}
}

func wantValue(t *testing.T, kc *kvclient.Client, key, want string) {
	t.Helper()
	e, found, err := kc.Get(testCtx(t), []byte(key))
	if err != nil || !found || string(e.Value) != want {
		t.Fatalf("%s = %q (found %v), %v; want %q", key, e.Value, found, err, want)
	}
}

func wantAbsent(t *testing.T, kc *kvclient.Client, key string) {
	t.Helper()
	e, found, err := kc.Get(testCtx(t), []byte(key))
	if err != nil || found {
		t.Fatalf("%s = %q (found %v), %v; want absent", key, e.Value, found, err)
	}
}

// locksIn lists the locks in the region holding key, as its leader sees
// them.
func locksIn(t *testing.T, c *cluster.Cluster, key string) []*kvrpcpb.LockInfo {
	t.Helper()
	var locks []*kvrpcpb.LockInfo
	cluster.Eventually(t, 15*time.Second, func() error {
		rc, store, err := c.LeaderContext([]byte(key))
		if err != nil {
			return err
		}
		resp, err := c.Client(store).KvScanLock(testCtx(t), &kvrpcpb.ScanLockRequest{Context: rc, MaxVersion: ^uint64(0)})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("scan locks: region error %v", re)
		}
		locks = resp.GetLocks()
		return nil
	})
	return locks
}
