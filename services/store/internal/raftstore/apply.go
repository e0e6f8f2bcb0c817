package raftstore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
	"github.com/nokv/nokv/services/store/internal/mvcc"
)

// applyEntries applies committed entries into b and records the apply
// state there too, so data and applied index move together. Work that must
// wait for b to commit (waking callers, creating split peers) goes to after.
// Apply is deterministic: every replica makes the same decisions from the
// same log.
func (p *peer) applyEntries(b *pebble.Batch, ents []raftpb.Entry, after *[]func()) error {
	var last uint64
	changed := false
	for i := range ents {
		e := &ents[i]
		if e.Index <= p.storage.appliedIndex() {
			continue
		}
		var err error
		switch e.Type {
		case raftpb.EntryNormal:
			if !changed && len(e.Data) > 0 {
				// What the commands did to write records goes to GC once
				// the batch is in the engine (see Store.WatchGC).
				changed = true
				*after = append(*after, p.foldApplyNote)
			}
			err = p.applyNormal(b, e, after)
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			err = p.applyConfChange(b, e, after)
		default:
			err = fmt.Errorf("raftstore: region %d: unsupported entry type %v at %d", p.regionID, e.Type, e.Index)
		}
		if err != nil {
			return err
		}
		last = e.Index
		p.appliedTerm = e.Term
		if p.destroyed {
			return nil
		}
	}
	if last == 0 {
		return nil
	}
	as := proto.Clone(p.storage.applyState).(*raftserverpb.RaftApplyState)
	as.AppliedIndex = last
	if err := putProto(b, keys.ApplyStateKey(p.regionID), as); err != nil {
		return err
	}
	p.storage.applyState = as
	if !p.leaderReady.Load() && p.isLeader() && ents[len(ents)-1].Term == p.rn.BasicStatus().Term {
		*after = append(*after, func() { p.setReady(p.isLeader()) })
	}
	return nil
}

// finish hands a command's result to its proposer, if it was proposed here.
// The entry's term must match the proposal's: an entry of an older
// incarnation of this peer that happens to carry the same id is not it.
func (p *peer) finish(h *raftserverpb.CmdHeader, term uint64, res applyResult, after *[]func()) {
	p.finishHeld(h, term, res, after, 0)
}

// finishHeld is finish with the result handed over hold later (a test
// knob: see TestingKnobs.HoldResult).
func (p *peer) finishHeld(h *raftserverpb.CmdHeader, term uint64, res applyResult, after *[]func(), hold time.Duration) {
	if h.GetPeerId() != p.id {
		return
	}
	prop, ok := p.proposals[h.GetProposalId()]
	if !ok || prop.term != term {
		return
	}
	delete(p.proposals, h.GetProposalId())
	if i := slices.Index(p.confProposals, h.GetProposalId()); i >= 0 {
		p.confProposals = slices.Delete(p.confProposals, i, i+1)
	}
	if hold > 0 {
		*after = append(*after, func() { time.AfterFunc(hold, func() { prop.done(res) }) })
		return
	}
	*after = append(*after, func() { prop.done(res) })
}

func (p *peer) applyNormal(b *pebble.Batch, e *raftpb.Entry, after *[]func()) error {
	if len(e.Data) == 0 {
		// A new leader's first entry, or a conf change raft refused because
		// another was pending: fail the oldest of ours, which it replaced.
		if e.Term == p.appliedTerm && len(p.confProposals) > 0 {
			id := p.confProposals[0]
			p.confProposals = p.confProposals[1:]
			if prop, ok := p.proposals[id]; ok && prop.term == e.Term {
				delete(p.proposals, id)
				*after = append(*after, func() {
					prop.done(applyResult{err: &ServerBusyError{Reason: "another membership change is in progress"}})
				})
			}
		}
		return nil
	}
	if p.store.cfg.Knobs.HoldResult == nil {
		if h, ok := plainWrites(e.Data); ok {
			return p.applyPlain(b, e, h, after)
		}
	}
	// Whatever else a command does (split, delete a range, GC's deletions,
	// the test knob), GC does not reason about it: see Store.WatchGC.
	p.applyNote.dirty = true
	cmd := &raftserverpb.RaftCmdRequest{}
	if err := proto.Unmarshal(e.Data, cmd); err != nil {
		// Every replica sees the same bytes and skips them alike.
		p.store.log.Error("skipping undecodable command", "region", p.regionID, "index", e.Index, "err", err)
		return nil
	}
	h := cmd.GetHeader()
	region := p.region()
	if h.GetRegionEpoch().GetVersion() != region.GetRegionEpoch().GetVersion() {
		p.finish(h, e.Term, applyResult{err: p.store.epochNotMatch(region, fmt.Sprintf("command epoch version %d, region has %d", h.GetRegionEpoch().GetVersion(), region.GetRegionEpoch().GetVersion()))}, after)
		return nil
	}
	if split := cmd.GetAdmin().GetSplit(); split != nil {
		res, err := p.execSplit(b, split, after)
		if err != nil {
			return err
		}
		p.finish(h, e.Term, res, after)
		return nil
	}
	if sp := cmd.GetGcSafePoint(); sp != 0 {
		// GC deletions computed at sp: reads below it are refused from now
		// on, on every replica.
		if err := p.store.recordGCSafePoint(b, sp); err != nil {
			return err
		}
	}
	if dr := cmd.GetDeleteRange(); dr != nil {
		if err := p.applyDeleteRange(b, dr, region); err != nil {
			return err
		}
	}
	if err := mvcc.ApplyModifies(b, cmd.GetWrites()); err != nil {
		return fmt.Errorf("raftstore: region %d: apply index %d: %w", p.regionID, e.Index, err)
	}
	for _, m := range cmd.GetWrites() {
		p.writtenBytes += uint64(len(m.GetKey()) + len(m.GetValue()))
	}
	var hold time.Duration
	if k := p.store.cfg.Knobs.HoldResult; k != nil && h.GetPeerId() == p.id {
		if prop, ok := p.proposals[h.GetProposalId()]; ok && prop.term == e.Term {
			hold = k(p.regionID, cmd)
		}
	}
	p.finishHeld(h, e.Term, applyResult{}, after, hold)
	return nil
}

// applyPlain is applyNormal for a command of a header and PUT and DELETE
// modifies only (see plainWrites), applied from its encoded bytes: the same
// epoch check, the same writes in the same order, the same result.
func (p *peer) applyPlain(b *pebble.Batch, e *raftpb.Entry, h *raftserverpb.CmdHeader, after *[]func()) error {
	region := p.region()
	if h.GetRegionEpoch().GetVersion() != region.GetRegionEpoch().GetVersion() {
		p.finish(h, e.Term, applyResult{err: p.store.epochNotMatch(region, fmt.Sprintf("command epoch version %d, region has %d", h.GetRegionEpoch().GetVersion(), region.GetRegionEpoch().GetVersion()))}, after)
		return nil
	}
	written, err := applyPlainWrites(b, e.Data, &p.applyNote)
	if err != nil {
		return fmt.Errorf("raftstore: region %d: apply index %d: %w", p.regionID, e.Index, err)
	}
	p.writtenBytes += written
	p.finish(h, e.Term, applyResult{}, after)
	return nil
}

// applyConfChange applies a membership change entry: a single-step change
// (ADD_LEARNER, PROMOTE_LEARNER, REMOVE_PEER), entering a joint
// configuration (ChangePeerV2: PROMOTE_LEARNER and DEMOTE_VOTER at once), or
// leaving it (a ChangePeerV2 without changes). Everything it checks comes
// from the entry and the replicated region state, so every replica accepts
// or refuses it alike; a refused change leaves the region and raft's
// configuration unchanged.
func (p *peer) applyConfChange(b *pebble.Batch, e *raftpb.Entry, after *[]func()) error {
	var cc raftpb.ConfChangeV2
	if e.Type == raftpb.EntryConfChange {
		// Written by a version that proposed single-step changes only.
		var v1 raftpb.ConfChange
		if err := v1.Unmarshal(e.Data); err != nil {
			return fmt.Errorf("%w: region %d: conf change at %d: %v", errCorruptState, p.regionID, e.Index, err)
		}
		cc = v1.AsV2()
	} else if err := cc.Unmarshal(e.Data); err != nil {
		return fmt.Errorf("%w: region %d: conf change at %d: %v", errCorruptState, p.regionID, e.Index, err)
	}
	cmd := &raftserverpb.RaftCmdRequest{}
	if err := proto.Unmarshal(cc.Context, cmd); err != nil {
		cmd = &raftserverpb.RaftCmdRequest{}
	}
	h := cmd.GetHeader()
	region := p.region()
	reject := func(format string, args ...any) error {
		err := fmt.Errorf("%w: region %d at index %d: %s", ErrConfChangeRejected, p.regionID, e.Index, fmt.Sprintf(format, args...))
		p.store.log.Warn("refused membership change at apply", "region", p.regionID, "index", e.Index, "err", err)
		p.finish(h, e.Term, applyResult{err: err}, after)
		return nil
	}
	if cc.LeaveJoint() {
		// Ours carry a header; one without (raft's own automatic leave,
		// which this store does not ask for) means the same.
		if !isJoint(region) {
			return reject("not in a joint configuration")
		}
		if h != nil && roleOf(region, h.GetPeerId()) == metapb.PeerRole_DEMOTING_VOTER {
			// The leader that proposed it would demote itself: it must
			// hand its leadership over first (see maybeLeaveJoint).
			return reject("leaving would demote peer %d, the leader that proposed it", h.GetPeerId())
		}
		next := proto.Clone(region).(*metapb.Region)
		for _, m := range next.Peers {
			switch m.GetRole() {
			case metapb.PeerRole_INCOMING_VOTER:
				m.Role = metapb.PeerRole_VOTER
			case metapb.PeerRole_DEMOTING_VOTER:
				m.Role = metapb.PeerRole_LEARNER
			}
		}
		return p.commitConfChange(b, e, cc, h, next, "leave-joint", 0, after)
	}
	admin := cmd.GetAdmin()
	if admin.GetChangePeer() == nil && admin.GetChangePeerV2() == nil {
		// Not ours: treat as a no-op on every replica.
		return nil
	}
	epoch := region.GetRegionEpoch()
	if h.GetRegionEpoch().GetConfVer() != epoch.GetConfVer() || h.GetRegionEpoch().GetVersion() != epoch.GetVersion() {
		p.finish(h, e.Term, applyResult{err: p.store.epochNotMatch(region, fmt.Sprintf("conf change epoch %v, region has %v", h.GetRegionEpoch(), epoch))}, after)
		return nil
	}
	if isJoint(region) {
		return reject("region is in a joint configuration")
	}
	joint := admin.GetChangePeerV2() != nil
	changes := admin.GetChangePeerV2().GetChanges()
	if !joint {
		changes = []*raftserverpb.ChangePeerRequest{admin.GetChangePeer()}
	}
	if len(changes) == 0 {
		return reject("no changes")
	}
	next := proto.Clone(region).(*metapb.Region)
	var removedPeer uint64
	for _, change := range changes {
		target := change.GetPeer()
		idx := slices.IndexFunc(next.Peers, func(m *metapb.Peer) bool { return m.GetId() == target.GetId() })
		typ := change.GetChangeType()
		if (typ == pdpb.ConfChangeType_REMOVE_PEER || typ == pdpb.ConfChangeType_DEMOTE_VOTER) && target.GetId() == h.GetPeerId() {
			// The proposer led the region in the entry's term: a leader is
			// never removed or demoted by its own proposal, whoever leads
			// now. It transfers leadership first.
			return reject("%v of peer %d, the leader that proposed it", typ, target.GetId())
		}
		switch {
		case typ == pdpb.ConfChangeType_ADD_LEARNER && !joint:
			if idx >= 0 {
				return reject("peer %d already present", target.GetId())
			}
			for _, m := range next.Peers {
				if m.GetStoreId() == target.GetStoreId() {
					return reject("store %d already holds peer %d", target.GetStoreId(), m.GetId())
				}
			}
			next.Peers = append(next.Peers, &metapb.Peer{Id: target.GetId(), StoreId: target.GetStoreId(), Role: metapb.PeerRole_LEARNER})
		case typ == pdpb.ConfChangeType_PROMOTE_LEARNER:
			if idx < 0 || next.Peers[idx].GetRole() != metapb.PeerRole_LEARNER {
				return reject("no learner %d to promote", target.GetId())
			}
			next.Peers[idx].Role = metapb.PeerRole_VOTER
			if joint {
				next.Peers[idx].Role = metapb.PeerRole_INCOMING_VOTER
			}
		case typ == pdpb.ConfChangeType_DEMOTE_VOTER && joint:
			if idx < 0 || next.Peers[idx].GetRole() != metapb.PeerRole_VOTER {
				return reject("no voter %d to demote", target.GetId())
			}
			next.Peers[idx].Role = metapb.PeerRole_DEMOTING_VOTER
		case typ == pdpb.ConfChangeType_REMOVE_PEER && !joint:
			if idx < 0 {
				return reject("no peer %d to remove", target.GetId())
			}
			next.Peers = slices.Delete(next.Peers, idx, idx+1)
			removedPeer = target.GetId()
		default:
			return reject("%v not allowed in a %s change", typ, map[bool]string{true: "joint", false: "single-step"}[joint])
		}
	}
	if cs := confStateOf(next); len(cs.Voters) == 0 {
		// raft refuses a configuration without voters (and would panic).
		return reject("no voter would remain")
	}
	kind := "change-peer"
	if joint {
		kind = "enter-joint"
	}
	return p.commitConfChange(b, e, cc, h, next, kind, removedPeer, after)
}

// commitConfChange makes an accepted membership change take effect: raft's
// configuration, the region (with a new conf_ver) in b, and the removal of
// this store's peer if it was removed.
func (p *peer) commitConfChange(b *pebble.Batch, e *raftpb.Entry, cc raftpb.ConfChangeV2, h *raftserverpb.CmdHeader, next *metapb.Region, kind string, removedPeer uint64, after *[]func()) error {
	// The region's roles and raft's configuration agree (both come from
	// the same log; restarts and snapshots derive raft's from the roles).
	// If they did not, raft would panic on a leave or enter it cannot make:
	// fail the store with a corruption error instead.
	if _, enter := cc.EnterJoint(); enter || cc.LeaveJoint() {
		if raftJoint := len(p.rn.Status().Config.Voters[1]) > 0; raftJoint != cc.LeaveJoint() {
			return fmt.Errorf("%w: region %d at index %d: region roles %v disagree with raft's configuration %v", errCorruptState, p.regionID, e.Index, p.region().GetPeers(), p.rn.Status().Config)
		}
	}
	epoch := next.GetRegionEpoch()
	next.RegionEpoch = &metapb.RegionEpoch{ConfVer: epoch.GetConfVer() + 1, Version: epoch.GetVersion()}
	cs := p.rn.ApplyConfChange(cc)
	removedSelf := removedPeer == p.id
	state := raftserverpb.PeerState_NORMAL
	if removedSelf {
		state = raftserverpb.PeerState_TOMBSTONE
	}
	if err := putProto(b, keys.RegionStateKey(p.regionID), &raftserverpb.RegionLocalState{Region: next, State: state}); err != nil {
		return err
	}
	p.setRegion(next)
	p.store.log.Info("applied conf change", "region", p.regionID, "kind", kind, "changes", cc.Changes, "peers", next.GetPeers(), "conf_ver", next.GetRegionEpoch().GetConfVer())
	if k := p.store.cfg.Knobs.OnConfChangeApplied; k != nil && cs != nil {
		k(p.store.cfg.StoreID, p.regionID, e.Index, proto.Clone(next).(*metapb.Region), *cs)
	}
	p.finish(h, e.Term, applyResult{regions: []*metapb.Region{next}}, after)
	if removedSelf {
		if err := p.destroy(b); err != nil {
			return err
		}
		return nil
	}
	if p.isLeader() {
		*after = append(*after, func() { p.store.onBecameLeader(p) })
	}
	return nil
}

// isJoint reports whether the region is in a joint configuration.
func isJoint(r *metapb.Region) bool {
	for _, m := range r.GetPeers() {
		if m.GetRole() == metapb.PeerRole_INCOMING_VOTER || m.GetRole() == metapb.PeerRole_DEMOTING_VOTER {
			return true
		}
	}
	return false
}

// roleOf returns the role of the region's peer id; a peer not in the region
// reports LEARNER, which no check treats as a voter.
func roleOf(r *metapb.Region, id uint64) metapb.PeerRole {
	for _, m := range r.GetPeers() {
		if m.GetId() == id {
			return m.GetRole()
		}
	}
	return metapb.PeerRole_LEARNER
}

// destroy removes the peer's raft state and its region's data into b and
// unregisters it. The region state (tombstone) stays so a restart skips it.
func (p *peer) destroy(b *pebble.Batch) error {
	prefix := keys.RaftStatePrefix(p.regionID)
	if err := b.DeleteRange(prefix, keys.PrefixEnd(prefix), nil); err != nil {
		return fmt.Errorf("raftstore: region %d: delete raft state: %w", p.regionID, err)
	}
	if region := p.region(); len(region.GetPeers()) > 0 || region.GetStartKey() != nil || region.GetEndKey() != nil {
		if err := deleteRegionData(b, region.GetStartKey(), region.GetEndKey()); err != nil {
			return err
		}
	}
	p.destroyed = true
	p.leaderID.Store(0)
	p.setReady(false)
	s := p.store
	s.mu.Lock()
	delete(s.peers, p.regionID)
	s.mu.Unlock()
	s.forgetPeer(p)
	p.failProposals(&RegionNotFoundError{RegionID: p.regionID})
	p.failReads(&RegionNotFoundError{RegionID: p.regionID})
	s.log.Info("destroyed peer", "region", p.regionID, "peer", p.id)
	return nil
}

// applyDeleteRange removes the data of a range, clamped to the region, from
// every column family: range tombstones, so the cost does not grow with the
// keys removed.
func (p *peer) applyDeleteRange(b *pebble.Batch, dr *raftserverpb.DeleteRange, region *metapb.Region) error {
	start, end := dr.GetStartKey(), dr.GetEndKey()
	if string(start) < string(region.GetStartKey()) {
		start = region.GetStartKey()
	}
	if re := region.GetEndKey(); len(re) > 0 && (len(end) == 0 || string(end) > string(re)) {
		end = re
	}
	if len(end) > 0 && string(start) >= string(end) {
		return nil
	}
	if err := deleteRegionData(b, start, end); err != nil {
		return fmt.Errorf("raftstore: region %d: %w", p.regionID, err)
	}
	if string(start) == string(region.GetStartKey()) && string(end) == string(region.GetEndKey()) {
		// The region is empty now: the split check should not go by what
		// was written before.
		p.writtenBytes = 0
	}
	p.store.log.Info("deleted range", "region", p.regionID, "start", fmt.Sprintf("%q", start), "end", fmt.Sprintf("%q", end))
	return nil
}

func deleteRegionData(b *pebble.Batch, start, end []byte) error {
	for _, cf := range keys.CFs {
		lo, hi := keys.DataRange(cf, start, end)
		if err := b.DeleteRange(lo, hi, nil); err != nil {
			return fmt.Errorf("raftstore: delete data [%q, %q): %w", start, end, err)
		}
	}
	return nil
}

// execSplit splits the region at the request's key: this region keeps the
// left part, a new region takes the right. Both get a new epoch version.
func (p *peer) execSplit(b *pebble.Batch, req *raftserverpb.SplitRequest, after *[]func()) (applyResult, error) {
	region := p.region()
	key := req.GetSplitKey()
	if len(key) == 0 || string(key) == string(region.GetStartKey()) || !keys.InRange(key, region.GetStartKey(), region.GetEndKey()) {
		return applyResult{err: &KeyNotInRegionError{Key: key, Region: region}}, nil
	}
	if len(req.GetNewPeerIds()) != len(region.GetPeers()) {
		return applyResult{err: fmt.Errorf("raftstore: split of region %d: %d new peer ids for %d peers", p.regionID, len(req.GetNewPeerIds()), len(region.GetPeers()))}, nil
	}
	version := region.GetRegionEpoch().GetVersion() + 1
	left := proto.Clone(region).(*metapb.Region)
	left.EndKey = append([]byte(nil), key...)
	left.RegionEpoch.Version = version
	right := &metapb.Region{
		Id:          req.GetNewRegionId(),
		StartKey:    append([]byte(nil), key...),
		EndKey:      append([]byte(nil), region.GetEndKey()...),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: region.GetRegionEpoch().GetConfVer(), Version: version},
	}
	var selfNew uint64
	for i, m := range region.GetPeers() {
		np := &metapb.Peer{Id: req.GetNewPeerIds()[i], StoreId: m.GetStoreId(), Role: m.GetRole()}
		right.Peers = append(right.Peers, np)
		if m.GetStoreId() == p.store.cfg.StoreID {
			selfNew = np.GetId()
		}
	}
	if err := putProto(b, keys.RegionStateKey(p.regionID), &raftserverpb.RegionLocalState{Region: left}); err != nil {
		return applyResult{}, err
	}
	// What this store already has of the new region is local state: it may
	// change what happens here, never the outcome of the split itself,
	// which every replica applies alike.
	createRight, err := p.prepareSplitPeer(b, right)
	if err != nil {
		return applyResult{}, err
	}
	p.setRegion(left)
	p.writtenBytes /= 2
	wasLeader := p.isLeader()
	s := p.store
	s.log.Info("split region", "region", p.regionID, "key", fmt.Sprintf("%q", key), "new_region", right.GetId())
	*after = append(*after, func() {
		if !createRight {
			return
		}
		if old := s.getPeer(right.GetId()); old != nil {
			// An empty peer created from the new region's messages before
			// this split applied: the split's peer replaces it.
			old.failProposals(ErrStaleCommand)
			old.failReads(ErrStaleCommand)
			s.mu.Lock()
			delete(s.peers, right.GetId())
			s.mu.Unlock()
			s.forgetPeer(old)
		}
		np, err := s.createPeer(right, selfNew)
		if err != nil {
			s.log.Error("create split peer", "region", right.GetId(), "err", err)
			return
		}
		// Half of what the parent saw written moved with the right half.
		np.writtenBytes = p.writtenBytes
		if wasLeader {
			// The parent's leader is the natural leader of the new region;
			// campaigning now saves an election timeout.
			_ = np.rn.Campaign()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := s.pd.ReportSplit(ctx, left, right); err != nil {
					s.log.Warn("report split to PD", "region", left.GetId(), "err", err)
				}
			}()
			s.onBecameLeader(p)
		}
	})
	return applyResult{regions: []*metapb.Region{left, right}}, nil
}

// maybeTruncateLog drops applied log entries the peer no longer needs: it
// keeps RaftLogKeep entries behind the applied index, and a leader also
// keeps what a follower still needs while the log is under RaftLogMax.
func (p *peer) maybeTruncateLog() error {
	cfg := p.store.cfg
	applied, truncated := p.storage.appliedIndex(), p.storage.truncatedIndex()
	if applied <= truncated+cfg.RaftLogKeep+cfg.RaftLogKeep/4 {
		return nil
	}
	upTo := applied - cfg.RaftLogKeep
	if p.isLeader() && applied-truncated < cfg.RaftLogMax {
		minMatch := uint64(math.MaxUint64)
		for id, pr := range p.rn.Status().Progress {
			if id != p.id && pr.Match < minMatch {
				minMatch = pr.Match
			}
		}
		if minMatch < upTo {
			upTo = minMatch
		}
	}
	if upTo <= truncated {
		return nil
	}
	b := p.store.db.NewBatch()
	defer b.Close()
	if err := p.storage.truncate(b, upTo); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("raftstore: region %d: truncate log: %w", p.regionID, err)
	}
	return nil
}

// prepareSplitPeer writes the initial state of a region created by a split
// into b, unless this store already removed its peer of that region (a
// tombstone: the region moved on without this store). A vote an empty peer
// of the region cast before the split applied is kept: forgetting it could
// let this store vote twice in one term. It reports whether to create the
// peer.
func (p *peer) prepareSplitPeer(b *pebble.Batch, right *metapb.Region) (bool, error) {
	st := &raftserverpb.RegionLocalState{}
	ok, err := getProto(p.store.db, keys.RegionStateKey(right.GetId()), st)
	if err != nil {
		return false, err
	}
	if ok && st.GetState() == raftserverpb.PeerState_TOMBSTONE {
		p.store.log.Info("split: not recreating a removed region", "region", right.GetId())
		return false, nil
	}
	if ok && len(st.GetRegion().GetPeers()) > 0 {
		// Initialized already (only a snapshot could have done it, and
		// overlapping snapshots are refused): leave it alone.
		return false, nil
	}
	if err := writeInitialState(b, right); err != nil {
		return false, err
	}
	raw, ok, err := getValue(p.store.db, keys.HardStateKey(right.GetId()))
	if err != nil || !ok {
		return true, err
	}
	var hs raftpb.HardState
	if err := hs.Unmarshal(raw); err != nil {
		return false, fmt.Errorf("%w: region %d hard state: %v", errCorruptState, right.GetId(), err)
	}
	if hs.Term > initLogTerm {
		keep := raftpb.HardState{Term: hs.Term, Vote: hs.Vote, Commit: initLogIndex}
		data, err := keep.Marshal()
		if err != nil {
			return false, err
		}
		if err := b.Set(keys.HardStateKey(right.GetId()), data, nil); err != nil {
			return false, fmt.Errorf("raftstore: region %d: write hard state: %w", right.GetId(), err)
		}
	}
	return true, nil
}
