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
	left := c.RegionFor([]byte("a"))
	leader := c.WaitLeader(left.GetId())
	info, err := c.RegionInfo(leader.GetStoreId(), left.GetId())
	if err != nil {
		t.Fatal(err)
	}
	region := info.GetRegion()
	var followerPeer *metapb.Peer
	for _, p := range region.GetPeers() {
		if p.GetStoreId() != leader.GetStoreId() {
			followerPeer = p
		}
	}
	follower := followerPeer.GetStoreId()
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
	good := &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch(), Peer: leader}

	// The leader answers the well-routed request.
	if re := get(leader.GetStoreId(), good, "a"); re != nil {
		t.Fatalf("well-routed request: %v", re)
	}
	// A follower names the leader.
	re := get(follower, &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch(), Peer: followerPeer}, "a")
	if re.GetNotLeader() == nil || re.GetNotLeader().GetLeader().GetStoreId() != leader.GetStoreId() {
		t.Fatalf("follower: %v, want not_leader naming store %d", re, leader.GetStoreId())
	}
	// A stale epoch gets the current region.
	stale := &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: &metapb.RegionEpoch{Version: 0, ConfVer: 1}, Peer: leader}
	re = get(leader.GetStoreId(), stale, "a")
	if re.GetEpochNotMatch() == nil || len(re.GetEpochNotMatch().GetCurrentRegions()) == 0 ||
		re.GetEpochNotMatch().GetCurrentRegions()[0].GetRegionEpoch().GetVersion() != region.GetRegionEpoch().GetVersion() {
		t.Fatalf("stale epoch: %v", re)
	}
	// An unknown region.
	re = get(leader.GetStoreId(), &kvrpcpb.Context{RegionId: 999, Peer: leader}, "a")
	if re.GetRegionNotFound().GetRegionId() != 999 {
		t.Fatalf("unknown region: %v", re)
	}
	// A key of the other region.
	re = get(leader.GetStoreId(), good, "z")
	if re.GetKeyNotInRegion() == nil || string(re.GetKeyNotInRegion().GetEndKey()) != "m" {
		t.Fatalf("key outside the region: %v", re)
	}
	// A request meant for another store.
	wrong := &kvrpcpb.Context{RegionId: region.GetId(), RegionEpoch: region.GetRegionEpoch(), Peer: &metapb.Peer{Id: 1, StoreId: 42}}
	re = get(leader.GetStoreId(), wrong, "a")
	if re.GetStoreNotMatch().GetRequestStoreId() != 42 {
		t.Fatalf("wrong store: %v", re)
	}
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
