package raftstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// leaderInfo is what a region heartbeat reports, gathered on the loop.
type leaderInfo struct {
	region  *metapb.Region
	leader  *metapb.Peer
	term    uint64
	pending []*metapb.Peer
	down    []*pdpb.PeerStats
	written uint64
	// hibernated: the region is quiet, nothing of the above changes.
	hibernated bool
}

// idleReportEvery: a hibernated leader reports to PD once when it
// hibernates and then every idleReportEvery region heartbeat intervals
// (nothing it reports changes meanwhile; PD's operators for it wait that
// long at most), so 10,000 idle regions do not cost thousands of RPCs a
// second.
const idleReportEvery = 6

// leaders collects every region this store leads (all, or only id if
// nonzero). report: for a region heartbeat round, which skips hibernated
// leaders between their idle reports.
func (s *Store) leaders(ctx context.Context, only uint64, report bool) []leaderInfo {
	ch := make(chan []leaderInfo, 1)
	s.post(func() {
		var out []leaderInfo
		for _, p := range s.peerList() {
			if (only != 0 && p.regionID != only) || !p.isLeader() {
				continue
			}
			if report && only == 0 && p.hib.hibernated {
				if p.hib.reported && p.hib.skipped < idleReportEvery-1 {
					p.hib.skipped++
					continue
				}
				p.hib.reported, p.hib.skipped = true, 0
			}
			li := leaderInfo{region: proto.Clone(p.region()).(*metapb.Region), leader: p.peerByID(p.id), term: p.rn.BasicStatus().Term,
				written: p.writtenBytes, down: p.downPeers(time.Now()), hibernated: p.hib.hibernated}
			truncated := p.storage.truncatedIndex()
			p.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
				if id != p.id && (pr.State == tracker.StateSnapshot || pr.Match < truncated) {
					if m := p.peerByID(id); m != nil {
						li.pending = append(li.pending, m)
					}
				}
			})
			out = append(out, li)
		}
		ch <- out
	})
	select {
	case out := <-ch:
		return out
	case <-ctx.Done():
		return nil
	case <-s.stopc:
		return nil
	}
}

// approximateSize estimates the bytes a region holds: Pebble's estimate
// covers sstables only, so for data still in memtables the bytes the peer
// applied since it started stand in.
func (s *Store) approximateSize(region *metapb.Region, written uint64) uint64 {
	var total uint64
	for _, cf := range keys.CFs {
		lo, hi := keys.DataRange(cf, region.GetStartKey(), region.GetEndKey())
		n, err := s.db.EstimateDiskUsage(lo, hi)
		if err == nil {
			total += n
		}
	}
	return max(total, written)
}

func (s *Store) heartbeatLoop() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopc
		cancel()
	}()
	storeTick := time.NewTicker(s.cfg.StoreHeartbeatInterval)
	defer storeTick.Stop()
	regionTick := time.NewTicker(s.cfg.RegionHeartbeatInterval)
	defer regionTick.Stop()
	s.storeHeartbeat(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-storeTick.C:
			s.storeHeartbeat(ctx)
		case <-regionTick.C:
			for _, li := range s.leaders(ctx, 0, true) {
				s.regionHeartbeat(ctx, li)
			}
		case id := <-s.heartbeatNow:
			for _, li := range s.leaders(ctx, id, true) {
				s.regionHeartbeat(ctx, li)
			}
		}
	}
}

func (s *Store) storeHeartbeat(ctx context.Context) {
	regions := s.Regions()
	leaders := 0
	for _, p := range s.peerList() {
		if p.leaderID.Load() == p.id {
			leaders++
		}
	}
	used := s.db.Metrics().DiskSpaceUsage()
	req := &pdpb.StoreHeartbeatRequest{Stats: &pdpb.StoreStats{
		StoreId: s.cfg.StoreID, Address: s.addr, UsedSize: used,
		RegionCount: uint32(len(regions)), LeaderCount: uint32(leaders),
	}, Nonce: s.ident.GetNonce()}
	hctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	if _, err := s.pd.StoreHeartbeat(hctx, req); err != nil && ctx.Err() == nil {
		if errors.Is(err, pdclient.ErrClusterIDMismatch) || errors.Is(err, pdclient.ErrStoreClaimed) {
			// Not a passing failure: this PD will never take this store.
			s.log.Error("PD refuses this store's heartbeats", "cluster_id", s.ClusterID(), "err", err)
			return
		}
		s.log.Warn("store heartbeat", "err", err)
	}
}

func (s *Store) regionHeartbeat(ctx context.Context, li leaderInfo) {
	req := &pdpb.RegionHeartbeatRequest{
		Region: li.region, Leader: li.leader, Term: li.term, PendingPeers: li.pending, DownPeers: li.down,
		ApproximateSize: s.approximateSize(li.region, li.written),
	}
	hctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	resp, err := s.pd.RegionHeartbeat(hctx, req)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("region heartbeat", "region", li.region.GetId(), "err", err)
		}
		return
	}
	if resp.GetOperation() == nil {
		return
	}
	// An operation may wait for raft up to the proposal timeout (a split
	// or membership change of a region without a quorum at the moment):
	// run on this loop, it would hold back every other heartbeat, and PD
	// would take a busy, healthy store for down. One at a time per region.
	id := li.region.GetId()
	s.opMu.Lock()
	if s.opsRunning[id] {
		s.opMu.Unlock()
		return
	}
	s.opsRunning[id] = true
	s.opMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.opMu.Lock()
			delete(s.opsRunning, id)
			s.opMu.Unlock()
		}()
		s.runOperation(ctx, li.region, resp)
	}()
}

// runOperation executes what PD asked for in a heartbeat response, unless
// the region moved on since PD computed it.
func (s *Store) runOperation(ctx context.Context, region *metapb.Region, resp *pdpb.RegionHeartbeatResponse) {
	if resp.GetOperation() == nil {
		return
	}
	cur := s.Region(region.GetId())
	if cur == nil || !proto.Equal(cur.GetRegionEpoch(), resp.GetRegionEpoch()) {
		return
	}
	var err error
	switch op := resp.GetOperation().(type) {
	case *pdpb.RegionHeartbeatResponse_TransferLeader:
		err = s.TransferLeader(ctx, region.GetId(), op.TransferLeader.GetPeer())
	case *pdpb.RegionHeartbeatResponse_ChangePeer:
		_, err = s.ChangePeer(ctx, region.GetId(), op.ChangePeer.GetChangeType(), op.ChangePeer.GetPeer())
	case *pdpb.RegionHeartbeatResponse_ChangePeerV2:
		_, err = s.ChangePeerV2(ctx, region.GetId(), op.ChangePeerV2.GetChanges())
	case *pdpb.RegionHeartbeatResponse_SplitRegion:
		_, err = s.SplitRegion(ctx, region.GetId(), op.SplitRegion.GetSplitKey())
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("run PD operation", "region", region.GetId(), "op", fmt.Sprintf("%T", resp.GetOperation()), "err", err)
	}
}

// ChangePeer replicates a single-step membership change of the region
// (through its leader here) and returns the region after it. An ADD_LEARNER
// peer with no id gets one from PD.
func (s *Store) ChangePeer(ctx context.Context, regionID uint64, typ pdpb.ConfChangeType, target *metapb.Peer) (*metapb.Region, error) {
	region, err := s.PeerFor(regionID, nil)
	if err != nil {
		return nil, err
	}
	target = proto.Clone(target).(*metapb.Peer)
	if typ == pdpb.ConfChangeType_ADD_LEARNER && target.GetId() == 0 {
		id, err := s.pd.AllocID(ctx, 1)
		if err != nil {
			return nil, fmt.Errorf("raftstore: allocate peer id: %w", err)
		}
		target.Id = id
	}
	if err := s.checkConfChange(region, []*raftserverpb.ChangePeerRequest{{ChangeType: typ, Peer: target}}); err != nil {
		return nil, err
	}
	cmd := &raftserverpb.RaftCmdRequest{
		Header: &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch(), CheckConfVer: true},
		Admin:  &raftserverpb.AdminRequest{ChangePeer: &raftserverpb.ChangePeerRequest{ChangeType: typ, Peer: target}},
	}
	regions, err := s.Propose(ctx, regionID, cmd)
	if err != nil {
		return nil, err
	}
	return regions[0], nil
}

// ChangePeerV2 makes several membership changes at once through joint
// consensus (PROMOTE_LEARNER and DEMOTE_VOTER: a replacement swaps a
// caught-up learner for a voter without a moment of four voters). It
// returns the region in the joint configuration; the leader leaves it by
// itself right after (see maybeLeaveJoint).
func (s *Store) ChangePeerV2(ctx context.Context, regionID uint64, changes []*pdpb.ChangePeer) (*metapb.Region, error) {
	region, err := s.PeerFor(regionID, nil)
	if err != nil {
		return nil, err
	}
	if len(changes) == 0 {
		return nil, fmt.Errorf("%w: region %d: a joint change needs changes", ErrConfChangeRejected, regionID)
	}
	req := &raftserverpb.ChangePeerV2Request{}
	for _, c := range changes {
		req.Changes = append(req.Changes, &raftserverpb.ChangePeerRequest{ChangeType: c.GetChangeType(), Peer: proto.Clone(c.GetPeer()).(*metapb.Peer)})
	}
	if err := s.checkConfChange(region, req.Changes); err != nil {
		return nil, err
	}
	cmd := &raftserverpb.RaftCmdRequest{
		Header: &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch(), CheckConfVer: true},
		Admin:  &raftserverpb.AdminRequest{ChangePeerV2: req},
	}
	regions, err := s.Propose(ctx, regionID, cmd)
	if err != nil {
		return nil, err
	}
	return regions[0], nil
}

// checkConfChange refuses early what apply would refuse anyway: a change
// while the region is in a joint configuration, and removing or demoting
// the leader (PD transfers leadership first). Apply checks again, against
// the log, since leadership and the region can change in between.
func (s *Store) checkConfChange(region *metapb.Region, changes []*raftserverpb.ChangePeerRequest) error {
	if isJoint(region) {
		return fmt.Errorf("%w: region %d is in a joint configuration; retry once it left it", ErrConfChangeRejected, region.GetId())
	}
	if s.cfg.Knobs.AllowLeaderConfChange {
		return nil
	}
	leader := s.leaderPeerID(region.GetId())
	for _, c := range changes {
		typ := c.GetChangeType()
		if (typ == pdpb.ConfChangeType_REMOVE_PEER || typ == pdpb.ConfChangeType_DEMOTE_VOTER) && c.GetPeer().GetId() == leader {
			return fmt.Errorf("%w: region %d: transfer leadership away before %v of the leader", ErrConfChangeRejected, region.GetId(), typ)
		}
	}
	return nil
}

func (s *Store) leaderPeerID(regionID uint64) uint64 {
	if p := s.getPeer(regionID); p != nil {
		return p.leaderID.Load()
	}
	return 0
}

// SplitRegion splits the region (led here) at key, or at its middle key if
// key is empty, with new ids from PD. It returns the two halves.
func (s *Store) SplitRegion(ctx context.Context, regionID uint64, key []byte) ([]*metapb.Region, error) {
	region, err := s.PeerFor(regionID, nil)
	if err != nil {
		return nil, err
	}
	if len(key) == 0 {
		if key, err = s.middleKey(region); err != nil {
			return nil, err
		}
		if key == nil {
			return nil, fmt.Errorf("raftstore: region %d: too few keys to split", regionID)
		}
	}
	if string(key) == string(region.GetStartKey()) || !keys.InRange(key, region.GetStartKey(), region.GetEndKey()) {
		return nil, &KeyNotInRegionError{Key: key, Region: region}
	}
	resp, err := s.pd.AskSplit(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("raftstore: ask PD for split ids: %w", err)
	}
	cmd := &raftserverpb.RaftCmdRequest{
		Header: &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch()},
		Admin: &raftserverpb.AdminRequest{Split: &raftserverpb.SplitRequest{
			SplitKey: key, NewRegionId: resp.GetNewRegionId(), NewPeerIds: resp.GetNewPeerIds(),
		}},
	}
	return s.Propose(ctx, regionID, cmd)
}

// middleKey scans the region's committed versions and returns the raw key
// at about half of their bytes, or nil if the region has fewer than two keys.
func (s *Store) middleKey(region *metapb.Region) ([]byte, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	lo, hi := keys.DataRange(keys.CFWrite, region.GetStartKey(), region.GetEndKey())
	scan := func(visit func(raw []byte, size uint64) bool) error {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			raw, _, err := keys.DecodeVersionKey(it.Key())
			if err != nil {
				return err
			}
			if !visit(raw, uint64(len(it.Key())+len(it.Value()))) {
				break
			}
		}
		return it.Error()
	}
	var total uint64
	if err := scan(func(_ []byte, n uint64) bool { total += n; return true }); err != nil {
		return nil, fmt.Errorf("raftstore: size region %d: %w", region.GetId(), err)
	}
	var (
		acc   uint64
		first []byte
		mid   []byte
	)
	err := scan(func(raw []byte, n uint64) bool {
		if first == nil {
			first = append([]byte{}, raw...)
		}
		acc += n
		if acc >= total/2 && string(raw) != string(first) {
			mid = append([]byte(nil), raw...)
			return false
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: find middle key of region %d: %w", region.GetId(), err)
	}
	return mid, nil
}

// splitCheckLoop splits regions led here once they pass the split size.
func (s *Store) splitCheckLoop() {
	defer s.wg.Done()
	if s.cfg.RegionSplitSize == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stopc
		cancel()
	}()
	t := time.NewTicker(s.cfg.SplitCheckInterval)
	defer t.Stop()
	// checked: what a hibernated region had written when it was last
	// found below the split size; it cannot have grown since.
	checked := map[uint64]uint64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		leaders := s.leaders(ctx, 0, false)
		seen := make(map[uint64]bool, len(leaders))
		for _, li := range leaders {
			id := li.region.GetId()
			seen[id] = true
			if w, ok := checked[id]; ok && li.hibernated && w == li.written {
				continue
			}
			delete(checked, id)
			if s.approximateSize(li.region, li.written) < s.cfg.RegionSplitSize {
				if li.hibernated {
					checked[id] = li.written
				}
				continue
			}
			if _, err := s.SplitRegion(ctx, li.region.GetId(), nil); err != nil && ctx.Err() == nil {
				s.log.Warn("size split", "region", li.region.GetId(), "err", err)
			}
		}
		for id := range checked {
			if !seen[id] {
				delete(checked, id)
			}
		}
	}
}
