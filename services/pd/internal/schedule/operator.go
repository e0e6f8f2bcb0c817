package schedule

import (
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"google.golang.org/protobuf/proto"
)

// Kind names an operation, for metrics and logs.
type Kind string

// Operation kinds.
const (
	KindAddLearner     Kind = "add-learner"
	KindPromoteLearner Kind = "promote-learner"
	// KindReplacePeer promotes a caught-up learner and demotes a voter in
	// one joint configuration change.
	KindReplacePeer    Kind = "replace-peer"
	KindRemovePeer     Kind = "remove-peer"
	KindSplit          Kind = "split"
	KindTransferLeader Kind = "transfer-leader"
)

// operator is one operation in flight for a region.
type operator struct {
	kind    Kind
	created time.Time
	// epoch is the region epoch the operation was computed against.
	epoch *metapb.RegionEpoch
	// peer is the peer the operation adds, promotes, removes or hands the
	// leadership to; nil for a split.
	peer *metapb.Peer
	// demote is the voter a replacement demotes to learner.
	demote *metapb.Peer
	// from is the store that held the leader, for a transfer.
	from uint64
	resp *pdpb.RegionHeartbeatResponse
}

func newOperator(kind Kind, region *metapb.Region, peer *metapb.Peer, now time.Time) *operator {
	op := &operator{
		kind:    kind,
		created: now,
		epoch:   proto.Clone(region.GetRegionEpoch()).(*metapb.RegionEpoch),
		resp: &pdpb.RegionHeartbeatResponse{
			RegionId:    region.GetId(),
			RegionEpoch: proto.Clone(region.GetRegionEpoch()).(*metapb.RegionEpoch),
		},
	}
	if peer != nil {
		op.peer = proto.Clone(peer).(*metapb.Peer)
	}
	change := func(t pdpb.ConfChangeType) *pdpb.RegionHeartbeatResponse_ChangePeer {
		return &pdpb.RegionHeartbeatResponse_ChangePeer{ChangePeer: &pdpb.ChangePeer{ChangeType: t, Peer: proto.Clone(peer).(*metapb.Peer)}}
	}
	switch kind {
	case KindAddLearner:
		op.resp.Operation = change(pdpb.ConfChangeType_ADD_LEARNER)
	case KindPromoteLearner:
		op.resp.Operation = change(pdpb.ConfChangeType_PROMOTE_LEARNER)
	case KindRemovePeer:
		op.resp.Operation = change(pdpb.ConfChangeType_REMOVE_PEER)
	case KindSplit:
		op.resp.Operation = &pdpb.RegionHeartbeatResponse_SplitRegion{SplitRegion: &pdpb.SplitRegion{}}
	case KindTransferLeader:
		op.resp.Operation = &pdpb.RegionHeartbeatResponse_TransferLeader{TransferLeader: &pdpb.TransferLeader{Peer: proto.Clone(peer).(*metapb.Peer)}}
	}
	return op
}

// newReplaceOperator swaps learner in for voter through joint consensus:
// one ChangePeerV2 promotes the learner and demotes the voter, so the region
// never has more voters than before; its leader leaves the joint
// configuration by itself, and the demoted peer is removed as a learner
// afterwards.
func newReplaceOperator(region *metapb.Region, learner, voter *metapb.Peer, now time.Time) *operator {
	op := newOperator(KindReplacePeer, region, learner, now)
	op.demote = proto.Clone(voter).(*metapb.Peer)
	op.resp.Operation = &pdpb.RegionHeartbeatResponse_ChangePeerV2{ChangePeerV2: &pdpb.ChangePeerV2{Changes: []*pdpb.ChangePeer{
		{ChangeType: pdpb.ConfChangeType_PROMOTE_LEARNER, Peer: proto.Clone(learner).(*metapb.Peer)},
		{ChangeType: pdpb.ConfChangeType_DEMOTE_VOTER, Peer: proto.Clone(voter).(*metapb.Peer)},
	}}}
	return op
}

// done reports whether the heartbeat shows the operation's effect.
func (op *operator) done(req *pdpb.RegionHeartbeatRequest) bool {
	region := req.GetRegion()
	switch op.kind {
	case KindAddLearner:
		return findPeer(region, op.peer.GetId()) != nil
	case KindPromoteLearner:
		p := findPeer(region, op.peer.GetId())
		return p != nil && p.GetRole() == metapb.PeerRole_VOTER
	case KindReplacePeer:
		p, d := findPeer(region, op.peer.GetId()), findPeer(region, op.demote.GetId())
		return p != nil && p.GetRole() == metapb.PeerRole_VOTER && (d == nil || d.GetRole() == metapb.PeerRole_LEARNER)
	case KindRemovePeer:
		return findPeer(region, op.peer.GetId()) == nil
	case KindSplit:
		return region.GetRegionEpoch().GetVersion() > op.epoch.GetVersion()
	case KindTransferLeader:
		return req.GetLeader().GetId() == op.peer.GetId()
	}
	return false
}

// obsolete reports whether the region's epoch moved on, so the store would
// ignore the operation.
func (op *operator) obsolete(region *metapb.Region) bool {
	e := region.GetRegionEpoch()
	return e.GetVersion() != op.epoch.GetVersion() || e.GetConfVer() != op.epoch.GetConfVer()
}

func findPeer(r *metapb.Region, id uint64) *metapb.Peer {
	for _, p := range r.GetPeers() {
		if p.GetId() == id {
			return p
		}
	}
	return nil
}
