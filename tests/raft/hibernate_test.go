package raft_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// storeCounter reads one of a running store's counters (NoKV.Stats.store).
func storeCounter(t *testing.T, c *cluster.Cluster, id uint64, name string) int64 {
	t.Helper()
	st := c.StoreStats(id)
	v, ok := st[name].(int64)
	if !ok {
		t.Fatalf("store %d has no counter %q (stats %v)", id, name, st)
	}
	return v
}

// hibernatedRegions starts a cluster of n regions and waits until every
// peer of every store hibernated.
func hibernatedRegions(t *testing.T, n int) *cluster.Cluster {
	t.Helper()
	var splits []string
	for i := 1; i < n; i++ {
		splits = append(splits, fmt.Sprintf("k%03d", i))
	}
	// GC would wake every region each round with its lock scan.
	c := cluster.Start(t, cluster.Options{SplitKeys: splits, GCInterval: time.Hour})
	for i := 0; i < n; i++ {
		c.MustPut(fmt.Sprintf("k%03d-a", i), "1")
	}
	waitAllHibernated(t, c, n, c.StoreIDs())
	return c
}

func waitAllHibernated(t *testing.T, c *cluster.Cluster, n int, stores []uint64) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, func() error {
		for _, id := range stores {
			if h := storeCounter(t, c, id, "raft_hibernated_peers"); h != int64(n) {
				return fmt.Errorf("store %d: %d of %d peers hibernated", id, h, n)
			}
		}
		return nil
	})
}

// Idle regions stop ticking on every store; a write wakes its region,
// which hibernates again once it is quiet.
func TestIdleRegionsHibernate(t *testing.T) {
	const n = 20
	c := hibernatedRegions(t, n)
	ticks := map[uint64]int64{}
	wakes := map[uint64]int64{}
	for _, id := range c.StoreIDs() {
		ticks[id] = storeCounter(t, c, id, "raft_peer_ticks")
		wakes[id] = storeCounter(t, c, id, "raft_wakes")
	}
	// 100 ticks of the harness's 20 ms clock: an awake region would have
	// ticked 100 times on every store and sent 50 heartbeats.
	time.Sleep(2 * time.Second)
	for _, id := range c.StoreIDs() {
		if d := storeCounter(t, c, id, "raft_peer_ticks") - ticks[id]; d != 0 {
			t.Errorf("store %d: %d peer ticks while every region was idle", id, d)
		}
		if d := storeCounter(t, c, id, "raft_wakes") - wakes[id]; d != 0 {
			t.Errorf("store %d: %d peers woke while every region was idle", id, d)
		}
		if h := storeCounter(t, c, id, "raft_hibernated_peers"); h != n {
			t.Errorf("store %d: %d of %d peers hibernated", id, h, n)
		}
	}

	// A write wakes its region on every store (leader and followers).
	c.MustPut("k005-b", "2")
	if v, ok := c.MustGet("k005-b"); !ok || v != "2" {
		t.Fatalf("k005-b = %q, %v", v, ok)
	}
	for _, id := range c.StoreIDs() {
		if d := storeCounter(t, c, id, "raft_wakes") - wakes[id]; d < 1 {
			t.Errorf("store %d: the write woke no peer", id)
		}
	}
	waitAllHibernated(t, c, n, c.StoreIDs())
}

// A region whose leader's store stops while every peer hibernates gets a
// new leader and serves writes: the store's broken link and then its
// silence wake the followers.
func TestHibernatedRegionFailsOverWhenLeaderStoreStops(t *testing.T) {
	const n = 6
	c := hibernatedRegions(t, n)
	region := c.RegionFor([]byte("k003-a")).GetId()
	old := c.WaitLeader(region).GetStoreId()
	c.StopStore(old)
	waitNewLeader(t, c, region, old)
	c.MustPut("k003-b", "2")
	if v, ok := c.MustGet("k003-b"); !ok || v != "2" {
		t.Fatalf("k003-b = %q, %v", v, ok)
	}
	c.StartStore(old)
	if v, ok := c.MustGet("k003-a"); !ok || v != "1" {
		t.Fatalf("k003-a = %q, %v", v, ok)
	}
	waitAllHibernated(t, c, n, c.StoreIDs())
}

// The same when the leader's store is cut off without any link breaking
// (messages are dropped): only the store heartbeats' silence tells.
func TestHibernatedRegionFailsOverWhenLeaderStoreIsSilent(t *testing.T) {
	const n = 6
	c := hibernatedRegions(t, n)
	region := c.RegionFor([]byte("k003-a")).GetId()
	old := c.WaitLeader(region).GetStoreId()
	down := map[uint64]int64{}
	for _, id := range c.StoreIDs() {
		down[id] = storeCounter(t, c, id, "raft_store_down_events")
	}
	c.Isolate(old)
	waitNewLeader(t, c, region, old)
	for _, id := range c.StoreIDs() {
		if id != old && storeCounter(t, c, id, "raft_store_down_events") == down[id] {
			t.Errorf("store %d did not take isolated store %d for down", id, old)
		}
	}
	c.Heal()
	c.MustPut("k003-b", "2")
	if v, ok := c.MustGet("k003-b"); !ok || v != "2" {
		t.Fatalf("k003-b = %q, %v", v, ok)
	}
	waitAllHibernated(t, c, n, c.StoreIDs())
}

// waitNewLeader waits until a store other than old leads the region, as
// that store itself says.
func waitNewLeader(t *testing.T, c *cluster.Cluster, region, old uint64) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, func() error {
		for _, id := range c.StoreIDs() {
			if id == old || !c.Running(id) {
				continue
			}
			info, err := c.RegionInfo(id, region)
			if err == nil && info.GetLeader().GetStoreId() == id {
				return nil
			}
		}
		return fmt.Errorf("region %d: no leader besides store %d yet", region, old)
	})
}
