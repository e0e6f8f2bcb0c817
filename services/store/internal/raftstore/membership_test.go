package raftstore

import (
	"io"
	"log"
	"slices"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
)

func peers(roles map[uint64]metapb.PeerRole) *metapb.Region {
	r := &metapb.Region{Id: 7, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1}}
	ids := make([]uint64, 0, len(roles))
	for id := range roles {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.Peers = append(r.Peers, &metapb.Peer{Id: id, StoreId: id % 10, Role: roles[id]})
	}
	return r
}

func sortedConfState(cs raftpb.ConfState) raftpb.ConfState {
	for _, s := range [][]uint64{cs.Voters, cs.VotersOutgoing, cs.Learners, cs.LearnersNext} {
		slices.Sort(s)
	}
	return cs
}

func sameConfState(a, b raftpb.ConfState) bool {
	a, b = sortedConfState(a), sortedConfState(b)
	return slices.Equal(a.Voters, b.Voters) && slices.Equal(a.VotersOutgoing, b.VotersOutgoing) &&
		slices.Equal(a.Learners, b.Learners) && slices.Equal(a.LearnersNext, b.LearnersNext) && a.AutoLeave == b.AutoLeave
}

// rawNodeAt starts a raft node whose configuration is the region's, as a
// restart or a snapshot would build it.
func rawNodeAt(t *testing.T, r *metapb.Region) *raft.RawNode {
	t.Helper()
	ms := raft.NewMemoryStorage()
	if err := ms.ApplySnapshot(raftpb.Snapshot{Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 1, ConfState: confStateOf(r)}}); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{ID: 71, ElectionTick: 10, HeartbeatTick: 1, Storage: ms, MaxInflightMsgs: 16, MaxSizePerMsg: 1 << 20, Applied: 10,
		Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return rn
}

// The region's recorded roles must describe exactly the configuration raft
// reaches through the same changes, joint states included, or a restart or
// snapshot in the middle of a replacement would rebuild another one.
func TestConfStateOfFollowsRaftThroughAJointReplacement(t *testing.T) {
	const V, L, In, Out = metapb.PeerRole_VOTER, metapb.PeerRole_LEARNER, metapb.PeerRole_INCOMING_VOTER, metapb.PeerRole_DEMOTING_VOTER
	change := func(typ pdpb.ConfChangeType, id uint64) *raftserverpb.ChangePeerRequest {
		return &raftserverpb.ChangePeerRequest{ChangeType: typ, Peer: &metapb.Peer{Id: id, StoreId: id % 10}}
	}
	steps := []struct {
		name          string
		before, after map[uint64]metapb.PeerRole
		admin         *raftserverpb.AdminRequest
	}{
		{
			name:   "enter joint: promote the learner, demote a voter",
			before: map[uint64]metapb.PeerRole{71: V, 72: V, 73: V, 74: L},
			after:  map[uint64]metapb.PeerRole{71: V, 72: V, 73: Out, 74: In},
			admin: &raftserverpb.AdminRequest{ChangePeerV2: &raftserverpb.ChangePeerV2Request{Changes: []*raftserverpb.ChangePeerRequest{
				change(pdpb.ConfChangeType_PROMOTE_LEARNER, 74), change(pdpb.ConfChangeType_DEMOTE_VOTER, 73)}}},
		},
		{
			name:   "leave joint",
			before: map[uint64]metapb.PeerRole{71: V, 72: V, 73: Out, 74: In},
			after:  map[uint64]metapb.PeerRole{71: V, 72: V, 73: L, 74: V},
			admin:  &raftserverpb.AdminRequest{ChangePeerV2: &raftserverpb.ChangePeerV2Request{}},
		},
		{
			name:   "remove the demoted learner",
			before: map[uint64]metapb.PeerRole{71: V, 72: V, 73: L, 74: V},
			after:  map[uint64]metapb.PeerRole{71: V, 72: V, 74: V},
			admin:  &raftserverpb.AdminRequest{ChangePeer: change(pdpb.ConfChangeType_REMOVE_PEER, 73)},
		},
		{
			name:   "enter joint: demote only",
			before: map[uint64]metapb.PeerRole{71: V, 72: V, 73: V},
			after:  map[uint64]metapb.PeerRole{71: V, 72: V, 73: Out},
			admin: &raftserverpb.AdminRequest{ChangePeerV2: &raftserverpb.ChangePeerV2Request{Changes: []*raftserverpb.ChangePeerRequest{
				change(pdpb.ConfChangeType_DEMOTE_VOTER, 73)}}},
		},
		{
			name:   "single step: add a learner",
			before: map[uint64]metapb.PeerRole{71: V, 72: V, 73: V},
			after:  map[uint64]metapb.PeerRole{71: V, 72: V, 73: V, 74: L},
			admin:  &raftserverpb.AdminRequest{ChangePeer: change(pdpb.ConfChangeType_ADD_LEARNER, 74)},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rn := rawNodeAt(t, peers(st.before))
			cc, err := raftConfChange(st.admin, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := rn.ApplyConfChange(cc)
			want := confStateOf(peers(st.after))
			if !sameConfState(*got, want) {
				t.Fatalf("raft reached %v, the region records %v", sortedConfState(*got), sortedConfState(want))
			}
			if len(got.Voters) > 3 || len(got.VotersOutgoing) > 3 {
				t.Fatalf("more than three voters in a majority config: %v", got)
			}
			// A restart from the recorded roles rebuilds the same
			// configuration (raft checks it and panics otherwise).
			rawNodeAt(t, peers(st.after))
		})
	}
}

func TestRaftConfChangeRefusesMisplacedTypes(t *testing.T) {
	p := &metapb.Peer{Id: 74, StoreId: 4}
	for _, admin := range []*raftserverpb.AdminRequest{
		{ChangePeer: &raftserverpb.ChangePeerRequest{ChangeType: pdpb.ConfChangeType_DEMOTE_VOTER, Peer: p}},
		{ChangePeerV2: &raftserverpb.ChangePeerV2Request{Changes: []*raftserverpb.ChangePeerRequest{{ChangeType: pdpb.ConfChangeType_REMOVE_PEER, Peer: p}}}},
		{ChangePeerV2: &raftserverpb.ChangePeerV2Request{Changes: []*raftserverpb.ChangePeerRequest{{ChangeType: pdpb.ConfChangeType_ADD_LEARNER, Peer: p}}}},
		{ChangePeer: &raftserverpb.ChangePeerRequest{ChangeType: pdpb.ConfChangeType_ADD_LEARNER, Peer: &metapb.Peer{Id: 74}}},
	} {
		if _, err := raftConfChange(admin, nil); err == nil {
			t.Errorf("raftConfChange(%v) = nil error", admin)
		}
	}
}

func TestDownPeersStartTheClockAtFirstLook(t *testing.T) {
	p := &peer{
		store:     &Store{cfg: Config{MaxPeerDownDuration: time.Minute, ElectionTicks: 10, TickInterval: 100 * time.Millisecond}},
		id:        71,
		lastHeard: map[uint64]time.Time{},
	}
	const V = metapb.PeerRole_VOTER
	p.regionPtr.Store(peers(map[uint64]metapb.PeerRole{71: V, 72: V, 73: V}))
	t0 := time.Unix(1000, 0)
	if got := p.downPeers(t0); len(got) != 0 {
		t.Fatalf("at first look: down %v", got)
	}
	p.lastHeard[72] = t0.Add(50 * time.Second)
	p.lastHeard[99] = t0 // a peer no longer in the region
	got := p.downPeers(t0.Add(61 * time.Second))
	if len(got) != 1 || got[0].GetPeer().GetId() != 73 || got[0].GetDownSeconds() != 61 {
		t.Fatalf("after 61 s: down %v, want peer 73 for 61 s", got)
	}
	if _, ok := p.lastHeard[99]; ok {
		t.Fatal("a removed peer's clock was kept")
	}
	// The threshold is at least two election timeouts.
	p.store.cfg.MaxPeerDownDuration = time.Millisecond
	if got := p.downPeers(t0.Add(50*time.Second + 1500*time.Millisecond)); len(got) != 1 {
		t.Fatalf("1.5 s after hearing from 72: down %v, want only 73", got)
	}
}
