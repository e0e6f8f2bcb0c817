package raft_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/storeserver"
	"github.com/nokv/nokv/tests/cluster"
)

// confLog records every membership change any store applies.
type confLog struct {
	mu      sync.Mutex
	applied []appliedConf
}

type appliedConf struct {
	store, index uint64
	region       *metapb.Region
	cs           raftpb.ConfState
}

func (l *confLog) record(store, _ uint64, index uint64, region *metapb.Region, cs raftpb.ConfState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = append(l.applied, appliedConf{store: store, index: index, region: region, cs: cs})
}

// check fails the test if any applied configuration had more than three
// voters in a majority config, and returns how many joint ones were seen.
func (l *confLog) check(t *testing.T) (joint int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.applied {
		if len(a.cs.Voters) > 3 || len(a.cs.VotersOutgoing) > 3 {
			t.Fatalf("store %d applied index %d with %d voters (outgoing %d): %v; region %v", a.store, a.index, len(a.cs.Voters), len(a.cs.VotersOutgoing), a.cs, a.region)
		}
		if len(a.cs.VotersOutgoing) > 0 {
			joint++
		}
	}
	return joint
}

func (l *confLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.applied)
}

// changePeer sends a membership change to the region's leader until it
// answers; a non-nil want returns the first error instead of retrying.
func changePeer(t *testing.T, c *cluster.Cluster, req *raftserverpb.ChangePeerAdminRequest) *metapb.Region {
	t.Helper()
	var out *metapb.Region
	cluster.Eventually(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		l := c.WaitLeader(req.GetRegionId())
		resp, err := c.Client(l.GetStoreId()).ChangePeer(ctx, req)
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("%s", re.GetMessage())
		}
		out = resp.GetRegion()
		return nil
	})
	return out
}

func peerOn(r *metapb.Region, store uint64) *metapb.Peer {
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == store {
			return p
		}
	}
	return nil
}

// roles renders a region's membership as store:role pairs.
func roles(r *metapb.Region) map[uint64]metapb.PeerRole {
	out := map[uint64]metapb.PeerRole{}
	for _, p := range r.GetPeers() {
		out[p.GetStoreId()] = p.GetRole()
	}
	return out
}

// waitRegionOn waits until the store's peer of the region is at least at
// conf_ver and has the roles want, and returns it.
func waitRegionOn(t *testing.T, c *cluster.Cluster, store, region uint64, want map[uint64]metapb.PeerRole) *metapb.Region {
	t.Helper()
	var out *metapb.Region
	cluster.Eventually(t, 20*time.Second, func() error {
		info, err := c.RegionInfo(store, region)
		if err != nil {
			return err
		}
		if re := info.GetRegionError(); re != nil {
			return fmt.Errorf("store %d: %s", store, re.GetMessage())
		}
		got := roles(info.GetRegion())
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("store %d: roles %v, want %v", store, got, want)
		}
		out = info.GetRegion()
		return nil
	})
	return out
}

// A replacement swaps a caught-up learner in for a voter through one joint
// configuration: never four voters at any applied index on any store. A
// store that missed the change gets it from a snapshot taken in the joint
// state, a store restarted while the region is joint rebuilds the joint
// configuration from its own state, and the region leaves it once allowed.
func TestReplaceThroughJointConsensus(t *testing.T) {
	var (
		confs confLog
		hold  atomic.Bool
	)
	c := cluster.Start(t, cluster.Options{Stores: 4, ExcludeStores: []uint64{4}, RaftLogKeep: 5, StoreConfig: func(id uint64, cfg *storeserver.Config) {
		cfg.TestingKnobs.OnConfChangeApplied = confs.record
		cfg.TestingKnobs.HoldJoint = func(uint64) bool { return hold.Load() }
	}})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("a", "1")
	transferTo(t, c, region, 2)

	r := changePeer(t, c, &raftserverpb.ChangePeerAdminRequest{RegionId: region, ChangeType: pdpb.ConfChangeType_ADD_LEARNER, Peer: &metapb.Peer{StoreId: 4}})
	learner := peerOn(r, 4)
	waitCaughtUp(t, c, 4, region, 20*time.Second)

	// Store 1 misses what follows.
	before, err := c.RegionInfo(1, region)
	if err != nil {
		t.Fatal(err)
	}
	c.StopStore(1)

	// Swap store 4's learner in for store 3's voter, and keep the region
	// joint for now.
	hold.Store(true)
	victim := peerOn(r, 3)
	r = changePeer(t, c, &raftserverpb.ChangePeerAdminRequest{RegionId: region, Changes: []*pdpb.ChangePeer{
		{ChangeType: pdpb.ConfChangeType_PROMOTE_LEARNER, Peer: learner},
		{ChangeType: pdpb.ConfChangeType_DEMOTE_VOTER, Peer: victim},
	}})
	joint := map[uint64]metapb.PeerRole{1: metapb.PeerRole_VOTER, 2: metapb.PeerRole_VOTER, 3: metapb.PeerRole_DEMOTING_VOTER, 4: metapb.PeerRole_INCOMING_VOTER}
	if fmt.Sprint(roles(r)) != fmt.Sprint(joint) {
		t.Fatalf("region after entering joint: %v", r)
	}
	for _, s := range []uint64{2, 3, 4} {
		waitRegionOn(t, c, s, region, joint)
	}
	// While joint, another change is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = c.Client(c.WaitLeader(region).GetStoreId()).ChangePeer(ctx, &raftserverpb.ChangePeerAdminRequest{RegionId: region, ChangeType: pdpb.ConfChangeType_REMOVE_PEER, Peer: victim})
	cancel()
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("change while joint: err = %v, want FailedPrecondition", err)
	}

	// Enough writes that the leader truncates its log past store 1: store 1
	// comes back through a snapshot taken in the joint state.
	for i := range 120 {
		c.MustPut(fmt.Sprintf("k%03d", i), "v")
	}
	cluster.Eventually(t, 10*time.Second, func() error {
		info, err := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
		if err != nil {
			return err
		}
		if info.GetTruncatedIndex() <= before.GetAppliedIndex()+1 {
			return fmt.Errorf("leader log truncated at %d, store 1 applied %d", info.GetTruncatedIndex(), before.GetAppliedIndex())
		}
		return nil
	})
	c.StartStore(1)
	waitRegionOn(t, c, 1, region, joint)
	waitCaughtUp(t, c, 1, region, 20*time.Second)
	if n, _ := c.StoreStats(1)["raft_snapshots_applied"].(int64); n == 0 {
		t.Fatal("store 1 caught up without a snapshot")
	}

	// Restart the leader's store in the joint state: the others elect a
	// leader under the joint configuration, and the restarted store comes
	// back with it from its own state.
	leader := c.WaitLeader(region).GetStoreId()
	c.StopStore(leader)
	c.MustPut("c", "3")
	c.StartStore(leader)
	waitRegionOn(t, c, leader, region, joint)
	waitCaughtUp(t, c, leader, region, 20*time.Second)
	c.MustPut("d", "4")

	// Let the leader leave: store 4 votes, store 3 is a learner.
	hold.Store(false)
	left := map[uint64]metapb.PeerRole{1: metapb.PeerRole_VOTER, 2: metapb.PeerRole_VOTER, 3: metapb.PeerRole_LEARNER, 4: metapb.PeerRole_VOTER}
	var after *metapb.Region
	for _, s := range c.StoreIDs() {
		after = waitRegionOn(t, c, s, region, left)
	}
	if after.GetRegionEpoch().GetConfVer() != r.GetRegionEpoch().GetConfVer()+1 {
		t.Fatalf("conf_ver after leaving %d, in joint %d", after.GetRegionEpoch().GetConfVer(), r.GetRegionEpoch().GetConfVer())
	}
	r = changePeer(t, c, &raftserverpb.ChangePeerAdminRequest{RegionId: region, ChangeType: pdpb.ConfChangeType_REMOVE_PEER, Peer: peerOn(after, 3)})
	if len(r.GetPeers()) != 3 || peerOn(r, 3) != nil {
		t.Fatalf("region after removing the demoted peer: %v", r)
	}
	if n := confs.check(t); n == 0 {
		t.Fatal("no store applied a joint configuration")
	}
	// The new voter counts toward the quorum: store 3 is gone, stop store 2.
	c.StopStore(2)
	c.MustPut("e", "5")
	for k, v := range map[string]string{"a": "1", "k000": "v", "k119": "v", "c": "3", "d": "4", "e": "5"} {
		if got, ok := c.MustGet(k); !ok || got != v {
			t.Fatalf("%s = %q, %v; want %q", k, got, ok, v)
		}
	}
}

// A change that would remove or demote the leader that proposed it is
// refused when it applies, by every replica alike, even when the
// proposal-time check is bypassed: the region and its raft configuration
// stay as they were and it keeps serving.
func TestLeaderRemovalRefusedAtApply(t *testing.T) {
	var confs confLog
	c := cluster.Start(t, cluster.Options{StoreConfig: func(id uint64, cfg *storeserver.Config) {
		cfg.TestingKnobs.OnConfChangeApplied = confs.record
		cfg.TestingKnobs.AllowLeaderConfChange = true
	}})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("a", "1")
	before := c.RegionFor([]byte("a"))
	for _, req := range []func(leader *metapb.Peer) *raftserverpb.ChangePeerAdminRequest{
		func(l *metapb.Peer) *raftserverpb.ChangePeerAdminRequest {
			return &raftserverpb.ChangePeerAdminRequest{RegionId: region, ChangeType: pdpb.ConfChangeType_REMOVE_PEER, Peer: l}
		},
		func(l *metapb.Peer) *raftserverpb.ChangePeerAdminRequest {
			return &raftserverpb.ChangePeerAdminRequest{RegionId: region, Changes: []*pdpb.ChangePeer{{ChangeType: pdpb.ConfChangeType_DEMOTE_VOTER, Peer: l}}}
		},
	} {
		var err error
		cluster.Eventually(t, 20*time.Second, func() error {
			l := c.WaitLeader(region)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			var resp *raftserverpb.ChangePeerAdminResponse
			resp, err = c.Client(l.GetStoreId()).ChangePeer(ctx, req(l))
			if err == nil && resp.GetRegionError() != nil {
				return fmt.Errorf("%s", resp.GetRegionError().GetMessage()) // not leader: retry
			}
			return nil
		})
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("removing or demoting the leader: err = %v, want FailedPrecondition", err)
		}
	}
	// Every replica applied the refused entries (their applied indexes
	// agree) and kept the region as it was.
	c.MustPut("b", "2")
	cluster.Eventually(t, 20*time.Second, func() error {
		var applied []uint64
		for _, s := range c.StoreIDs() {
			info, err := c.RegionInfo(s, region)
			if err != nil {
				return err
			}
			if !proto.Equal(info.GetRegion(), before) {
				return fmt.Errorf("store %d: region %v, was %v", s, info.GetRegion(), before)
			}
			applied = append(applied, info.GetAppliedIndex())
		}
		if applied[0] != applied[1] || applied[1] != applied[2] {
			return fmt.Errorf("applied indexes %v", applied)
		}
		return nil
	})
	if n := confs.len(); n != 0 {
		t.Fatalf("%d membership changes applied, want none", n)
	}
	if v, ok := c.MustGet("a"); !ok || v != "1" {
		t.Fatalf("a = %q, %v", v, ok)
	}
}

// A follower whose raft stops (its messages dropped both ways) while its
// store stays up and heartbeating is reported down by the leader within the
// threshold, and PD replaces it on the spare store through a joint
// configuration: never four voters, data intact.
func TestPDReplacesDownPeer(t *testing.T) {
	var confs confLog
	c := cluster.Start(t, cluster.Options{Stores: 4, ExcludeStores: []uint64{4}, StoreConfig: func(id uint64, cfg *storeserver.Config) {
		cfg.TestingKnobs.OnConfChangeApplied = confs.record
		cfg.MaxPeerDownDuration = time.Second
	}})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("a", "1")
	transferTo(t, c, region, 1)
	c.Isolate(3)
	c.MustPut("b", "2")

	want := map[uint64]metapb.PeerRole{1: metapb.PeerRole_VOTER, 2: metapb.PeerRole_VOTER, 4: metapb.PeerRole_VOTER}
	cluster.Eventually(t, 60*time.Second, func() error {
		l := c.Leader(region)
		if l == nil {
			return fmt.Errorf("no leader")
		}
		info, err := c.RegionInfo(l.GetStoreId(), region)
		if err != nil {
			return err
		}
		if got := roles(info.GetRegion()); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("roles %v, want %v", got, want)
		}
		return nil
	})
	if n := confs.check(t); n == 0 {
		t.Fatal("the replacement never went through a joint configuration")
	}
	c.MustPut("c", "3")
	for k, v := range map[string]string{"a": "1", "b": "2", "c": "3"} {
		if got, ok := c.MustGet(k); !ok || got != v {
			t.Fatalf("%s = %q, %v; want %q", k, got, ok, v)
		}
	}
	// Once it can talk again, store 3 learns it was removed and drops its
	// replica.
	c.Heal()
	cluster.Eventually(t, 20*time.Second, func() error {
		info, err := c.RegionInfo(3, region)
		if err != nil {
			return err
		}
		if info.GetRegionError().GetRegionNotFound() == nil {
			return fmt.Errorf("store 3 still holds region %d", region)
		}
		return nil
	})
}
