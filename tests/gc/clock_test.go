package gc_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/store/storeserver"
	"github.com/nokv/nokv/tests/cluster"
)

// TestGCJudgesExpiryByTSOTime: the store that collects a region runs its
// clock 30 s ahead. Values whose expiry (judged, like every read, by the
// physical time of TSO timestamps) is still 15 s away must survive GC
// rounds that pass their commits; a value that did expire by then is
// collected, which shows that GC ran there. GC that asked the store's own
// clock deleted live keys that every reader still sees.
func TestGCJudgesExpiryByTSOTime(t *testing.T) {
	var ahead [4]atomic.Int64 // per store id: how far its clock runs ahead
	c := cluster.Start(t, cluster.Options{
		GCInterval: 100 * time.Millisecond, GCLifeTime: time.Second,
		StoreConfig: func(id uint64, cfg *storeserver.Config) {
			cfg.TestingKnobs.Now = func() time.Time { return time.Now().Add(time.Duration(ahead[id].Load())) }
		},
	})
	kc := newClient(t, c)
	region := c.RegionFor([]byte("ttl/0")).GetId()
	fast := c.WaitLeader(region).GetStoreId()
	ahead[fast].Store(int64(30 * time.Second))

	now := kvclient.PhysicalMs(mustTS(t, c))
	const keys = 20
	for i := range keys {
		if err := kc.Set(testCtx(t), fmt.Appendf(nil, "ttl/%d", i), []byte("live"), now+15_000); err != nil {
			t.Fatal(err)
		}
	}
	if err := kc.Set(testCtx(t), []byte("short"), []byte("gone"), now+300); err != nil {
		t.Fatal(err)
	}
	// A timestamp past every commit and past the short value's expiry;
	// then GC rounds with a safe point above it on every store.
	past := mustTS(t, c)
	for kvclient.PhysicalMs(past) <= now+300 {
		time.Sleep(50 * time.Millisecond)
		past = mustTS(t, c)
	}
	waitGCPast(t, c, past)

	if l := c.Leader(region); l == nil || l.GetStoreId() != fast {
		t.Skipf("leadership moved off the store with the fast clock (now %v): the scenario did not happen", l)
	}
	if n, _ := c.StoreStats(fast)["gc_deleted_keys"].(int64); n == 0 {
		t.Fatal("GC collected nothing on the store with the fast clock: the expired value should have gone")
	}
	wantAbsent(t, kc, "short")
	lost := 0
	for i := range keys {
		if _, found, err := kc.Get(testCtx(t), fmt.Appendf(nil, "ttl/%d", i)); err != nil {
			t.Fatal(err)
		} else if !found {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("GC on a store whose clock runs 30 s ahead deleted %d of %d values that expire 15 s from now by TSO time", lost, keys)
	}
}
