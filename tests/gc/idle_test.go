package gc_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// The tests here cover what a store's GC skips (issue 14): a region whose
// data has not changed since a pass that found nothing is not walked again
// (gc_regions_skipped), and the skip must never hide garbage. Each uses
// one region, so every skip counted is that region's.

func startIdleGCCluster(t *testing.T) *cluster.Cluster {
	return cluster.Start(t, cluster.Options{GCInterval: 100 * time.Millisecond, GCLifeTime: gcLifeTime})
}

// gcStat sums a GC counter over the stores (only the leader collects).
func gcStat(c *cluster.Cluster, name string) int64 {
	var n int64
	for _, id := range c.StoreIDs() {
		v, _ := c.StoreStats(id)[name].(int64)
		n += v
	}
	return n
}

// waitSkips waits until the stores have skipped the region n more times.
func waitSkips(t *testing.T, c *cluster.Cluster, n int64) {
	t.Helper()
	from := gcStat(c, "gc_regions_skipped")
	cluster.Eventually(t, 30*time.Second, func() error {
		if got := gcStat(c, "gc_regions_skipped") - from; got < n {
			return fmt.Errorf("region skipped %d times, want %d", got, n)
		}
		return nil
	})
}

// waitDeletedAbove waits until GC has deleted more than n engine keys.
func waitDeletedAbove(t *testing.T, c *cluster.Cluster, n int64) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, func() error {
		if got := gcStat(c, "gc_deleted_keys"); got <= n {
			return fmt.Errorf("GC deleted %d keys, want more than %d", got, n)
		}
		return nil
	})
}

// TestGCCollectsAnIdleRegionAgainAfterAWrite: once a region is skipped, a
// write makes it collected again: the version it replaced goes.
func TestGCCollectsAnIdleRegionAgainAfterAWrite(t *testing.T) {
	c := startIdleGCCluster(t)
	kc := newClient(t, c)
	mustSet(t, kc, "k", "v1")
	mustSet(t, kc, "k", "v2")
	waitGCPast(t, c, mustTS(t, c))
	waitDeletedAbove(t, c, 0) // v1
	waitSkips(t, c, 3)
	deleted := gcStat(c, "gc_deleted_keys")

	mustSet(t, kc, "k", "v3")
	v3 := mustTS(t, c)
	waitGCPast(t, c, v3)
	waitDeletedAbove(t, c, deleted) // v2
	wantValue(t, kc, "k", "v3")
	waitSkips(t, c, 3) // idle again
}

// TestGCCollectsAnIdleExpiredValue: a value with a TTL is collected once it
// has expired by the safe point's time, although nothing was written: the
// region is skipped only while every kept value is still live.
func TestGCCollectsAnIdleExpiredValue(t *testing.T) {
	c := startIdleGCCluster(t)
	kc := newClient(t, c)
	expires := time.Now().Add(4 * time.Second).UnixMilli()
	put(t, c, "ttl", "soon-gone", expires)
	put(t, c, "keep", "stays", 0)
	waitSkips(t, c, 3)
	// The safe point trails the clock by gcLifeTime: until it passes the
	// expiry there is nothing to collect.
	if time.Now().UnixMilli() < expires+gcLifeTime.Milliseconds()-500 {
		if n := gcStat(c, "gc_deleted_keys"); n != 0 {
			t.Fatalf("GC deleted %d keys before anything expired", n)
		}
	}
	waitDeletedAbove(t, c, 0)
	wantAbsent(t, kc, "ttl")
	wantValue(t, kc, "keep", "stays")
}

// TestGCResolvesALockLeftInAnIdleRegion: a transaction abandoned after its
// prewrite in a region GC had been skipping is still found and rolled back
// before the safe point passes its start, and its late commit fails.
func TestGCResolvesALockLeftInAnIdleRegion(t *testing.T) {
	c := startIdleGCCluster(t)
	kc := newClient(t, c)
	mustSet(t, kc, "k", "before")
	waitSkips(t, c, 3)
	startTS := mustTS(t, c)
	c.RawPrewrite(t, startTS, "k", uint64(time.Hour.Milliseconds()), map[string]string{"k": "never"})
	waitGCPast(t, c, startTS)
	if locks := locksIn(t, c, "k"); len(locks) != 0 {
		t.Fatalf("GC passed transaction %d but left its lock: %v", startTS, locks)
	}
	wantValue(t, kc, "k", "before")
	if kerr := c.RawCommit(t, startTS, mustTS(t, c), "k"); kerr == nil {
		t.Fatal("the rolled-back transaction committed late")
	}
	waitSkips(t, c, 3)
}

// TestGCSkipsABusyRegionOfYoungVersions: a region taking writes all the
// time is skipped too while every version in it is younger than the GC
// life time (above the safe point now and at the next round), as in a
// young cluster under load, where a pass per round walked every key; once
// the writes stop and the safe point passes them, the old versions go.
func TestGCSkipsABusyRegionOfYoungVersions(t *testing.T) {
	c := startIdleGCCluster(t)
	kc := newClient(t, c)
	mustSet(t, kc, "k", "v0")
	mustSet(t, kc, "other", "o")
	from := gcStat(c, "gc_regions_skipped")
	rounds := gcStat(c, "gc_rounds")
	// Writes for about two thirds of the life time, several per GC round.
	end := time.Now().Add(gcLifeTime * 2 / 3)
	i := 1
	for ; time.Now().Before(end); i++ {
		mustSet(t, kc, "k", fmt.Sprintf("v%d", i))
		time.Sleep(30 * time.Millisecond)
	}
	last := fmt.Sprintf("v%d", i-1)
	// Every store runs rounds; only the leader collects the region.
	skipped := gcStat(c, "gc_regions_skipped") - from
	ran := (gcStat(c, "gc_rounds") - rounds) / int64(len(c.StoreIDs()))
	if skipped < ran/2 || skipped < 3 {
		t.Fatalf("while the region took writes its leader skipped it %d times in about %d rounds, want most of them", skipped, ran)
	}
	if n := gcStat(c, "gc_deleted_keys"); n != 0 {
		t.Fatalf("GC deleted %d keys while every version was younger than the life time", n)
	}
	waitGCPast(t, c, mustTS(t, c))
	waitDeletedAbove(t, c, int64(i/2)) // most of the replaced versions
	wantValue(t, kc, "k", last)
	wantValue(t, kc, "other", "o")
}
