package raft_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/tests/cluster"
)

// TestRegionErrorsAreTyped sends misrouted requests and checks each comes
// back as the right region error with the data a client needs to re-route.
func TestRegionErrorsAreTyped(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"m"}})
	regionID := c.RegionFor([]byte("a")).GetId()
	get := func(store uint64, rc *kvrpcpb.Context, key string) *kvrpcpb.RegionError {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		resp, err := c.Client(store).KvGet(ctx, &kvrpcpb.GetRequest{Context: rc, Key: []byte(key), Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetRegionError()
	}
	// ask sends a request built for the current leader and one of its
	// followers to the store send picks, and returns the region error. On a
	// loaded machine leadership may move between finding the leader and the
	// request landing (the test cluster's election timeout is 200ms); the
	// request is then rebuilt for the new leader, since what is checked is
	// the error a stable leader gives.
	type route struct {
		region   *metapb.Region
		leader   *metapb.Peer
		follower *metapb.Peer
	}
	ask := func(what string, send func(r route) (store uint64, rc *kvrpcpb.Context, key string), accept func(*kvrpcpb.RegionError) bool) {
		t.Helper()
		var re *kvrpcpb.RegionError
		for attempt := 0; attempt < 20; attempt++ {
			leader := c.WaitLeader(regionID)
			info, err := c.RegionInfo(leader.GetStoreId(), regionID)
			if err != nil {
				t.Fatal(err)
			}
			r := route{region: info.GetRegion(), leader: leader}
			for _, p := range r.region.GetPeers() {
				if p.GetStoreId() != leader.GetStoreId() {
					r.follower = p
				}
			}
			store, rc, key := send(r)
			if re = get(store, rc, key); accept(re) {
				return
			}
			if re != nil && re.GetNotLeader() == nil {
				break // not a leadership change (nor a follower that became leader)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: %v", what, re)
	}
	good := func(r route) *kvrpcpb.Context {
		return &kvrpcpb.Context{RegionId: regionID, RegionEpoch: r.region.GetRegionEpoch(), Peer: r.leader}
	}

	// The leader answers the well-routed request.
	ask("well-routed request", func(r route) (uint64, *kvrpcpb.Context, string) {
		return r.leader.GetStoreId(), good(r), "a"
	}, func(re *kvrpcpb.RegionError) bool { return re == nil })
	// A follower names the leader.
	var leaderStore uint64
	ask("follower, want not_leader naming the leader", func(r route) (uint64, *kvrpcpb.Context, string) {
		leaderStore = r.leader.GetStoreId()
		return r.follower.GetStoreId(), &kvrpcpb.Context{RegionId: regionID, RegionEpoch: r.region.GetRegionEpoch(), Peer: r.follower}, "a"
	}, func(re *kvrpcpb.RegionError) bool {
		return re.GetNotLeader().GetLeader().GetStoreId() == leaderStore
	})
	// A stale epoch gets the current region.
	var version uint64
	ask("stale epoch", func(r route) (uint64, *kvrpcpb.Context, string) {
		version = r.region.GetRegionEpoch().GetVersion()
		return r.leader.GetStoreId(), &kvrpcpb.Context{RegionId: regionID, RegionEpoch: &metapb.RegionEpoch{Version: 0, ConfVer: 1}, Peer: r.leader}, "a"
	}, func(re *kvrpcpb.RegionError) bool {
		cur := re.GetEpochNotMatch().GetCurrentRegions()
		return len(cur) > 0 && cur[0].GetRegionEpoch().GetVersion() == version
	})
	// An unknown region.
	ask("unknown region", func(r route) (uint64, *kvrpcpb.Context, string) {
		return r.leader.GetStoreId(), &kvrpcpb.Context{RegionId: 999, Peer: r.leader}, "a"
	}, func(re *kvrpcpb.RegionError) bool { return re.GetRegionNotFound().GetRegionId() == 999 })
	// A key of the other region.
	ask("key outside the region", func(r route) (uint64, *kvrpcpb.Context, string) {
		return r.leader.GetStoreId(), good(r), "z"
	}, func(re *kvrpcpb.RegionError) bool {
		return re.GetKeyNotInRegion() != nil && string(re.GetKeyNotInRegion().GetEndKey()) == "m"
	})
	// A request meant for another store.
	ask("wrong store", func(r route) (uint64, *kvrpcpb.Context, string) {
		return r.leader.GetStoreId(), &kvrpcpb.Context{RegionId: regionID, RegionEpoch: r.region.GetRegionEpoch(), Peer: &metapb.Peer{Id: 1, StoreId: 42}}, "a"
	}, func(re *kvrpcpb.RegionError) bool { return re.GetStoreNotMatch().GetRequestStoreId() == 42 })
}

// TestPDReplacesADownStore stops a store and waits for PD's heartbeat
// responses to drive the repair: a learner on the spare store, promoted,
// and the dead peer removed.
func TestPDReplacesADownStore(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Stores: 4, ExcludeStores: []uint64{4}, ReplaceDownAfter: time.Second})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("before", "1")
	dead := uint64(3)
	if c.WaitLeader(region).GetStoreId() == dead {
		dead = 2
	}
	c.StopStore(dead)
	cluster.Eventually(t, 30*time.Second, func() error {
		l := c.WaitLeader(region)
		info, err := c.RegionInfo(l.GetStoreId(), region)
		if err != nil {
			return err
		}
		var onSpare, onDead bool
		for _, p := range info.GetRegion().GetPeers() {
			onSpare = onSpare || (p.GetStoreId() == 4 && p.GetRole() == metapb.PeerRole_VOTER)
			onDead = onDead || p.GetStoreId() == dead
		}
		if !onSpare || onDead {
			return fmt.Errorf("region peers %v: want a voter on store 4 and none on store %d", info.GetRegion().GetPeers(), dead)
		}
		return nil
	})
	c.MustPut("after", "2")
	// The replaced store comes back: the region's members tell its stale
	// peer it was removed, and the store drops it.
	c.StartStore(dead)
	cluster.Eventually(t, 15*time.Second, func() error {
		st, err := c.RegionInfo(dead, region)
		if err != nil {
			return err
		}
		if st.GetRegionError().GetRegionNotFound() == nil {
			return fmt.Errorf("store %d still holds its removed peer of region %d", dead, region)
		}
		return nil
	})
	transferTo(t, c, region, 4)
	for _, k := range []string{"before", "after"} {
		if _, ok := c.MustGet(k); !ok {
			t.Fatalf("%s missing on the replacement replica", k)
		}
	}
}
