package raftstore

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
)

// peer is this store's replica of one region. Its raft state is touched only
// by the raft loop; the atomics publish a consistent-enough view to request
// goroutines, which re-check everything that matters at apply time.
type peer struct {
	store    *Store
	id       uint64
	regionID uint64
	storage  *peerStorage
	rn       *raft.RawNode

	// Published for request goroutines.
	regionPtr   atomic.Pointer[metapb.Region]
	leaderID    atomic.Uint64
	term        atomic.Uint64
	leaderReady atomic.Bool // leader that has applied an entry of its term
	readyCh     atomic.Pointer[chan struct{}]

	// Loop-only state.
	proposals      map[uint64]*proposal
	nextProposalID uint64
	newReads       []*readRequest
	readBatches    map[uint64][]*readRequest
	waitingReads   []pendingRead
	nextReadCtx    uint64
	lastTerm       uint64
	// pendingSnap holds received snapshot files stepped into raft this
	// round; appliedSnaps, files ingested this round (removed once the
	// apply is durable).
	pendingSnap  map[snapKey]*incomingSnap
	appliedSnaps []*incomingSnap
	destroyed    bool
	// peerCache remembers peers learned from messages, so that a peer
	// created empty (its region not yet known) can still answer them.
	peerCache map[uint64]*metapb.Peer
	// confProposals are this leader's conf change proposals in order; raft
	// turns one it refuses (another change pending) into an empty entry.
	confProposals []uint64
	// appliedTerm is the term of the last applied entry.
	appliedTerm uint64
	// writtenBytes counts data bytes applied since the peer started; it
	// feeds the size estimate for split checks.
	writtenBytes uint64
	// lastHeard is when this peer last got a message from each other peer
	// of the region (reset when it becomes leader): a leader reports a peer
	// it has heard nothing from for MaxPeerDownDuration as down to PD.
	lastHeard map[uint64]time.Time
	// leaveProposal is the pending proposal leaving a joint configuration
	// (0: none), and leaveWait the ticks until the next attempt.
	leaveProposal uint64
	leaveWait     int
	// hib is the peer's hibernation state (see hibernate.go).
	hib hibernateState
	// heldApps are this leader's empty appends not sent yet, at most one
	// per follower (see Store.send).
	heldApps map[uint64]heldApp
	// gcWatch sums up, for MVCC GC, what applied commands did to the
	// region's write records (see Store.WatchGC).
	gcWatch gcWatch
	// applyNote is the gcNote of the apply round in progress.
	applyNote gcNote
}

type snapKey struct{ index, term uint64 }

// proposal is a command waiting to apply.
type proposal struct {
	term uint64
	done func(applyResult)
}

// applyResult is what applying a command produced.
type applyResult struct {
	err error
	// For splits: the two halves; for conf changes: the new region.
	regions []*metapb.Region
}

type readRequest struct {
	done func(error)
}

type pendingRead struct {
	index uint64
	reqs  []*readRequest
}

func newPeer(s *Store, region *metapb.Region, peerID uint64, ps *peerStorage) (*peer, error) {
	p := &peer{
		store:       s,
		id:          peerID,
		regionID:    region.GetId(),
		storage:     ps,
		proposals:   map[uint64]*proposal{},
		readBatches: map[uint64][]*readRequest{},
		pendingSnap: map[snapKey]*incomingSnap{},
		peerCache:   map[uint64]*metapb.Peer{},
		lastHeard:   map[uint64]time.Time{},
		// Proposal ids start past any this region's peer ids could have
		// used in an earlier incarnation of this process.
		nextProposalID: uint64(s.incarnation) << 32,
		applyNote:      newGCNote(),
	}
	ch := make(chan struct{})
	p.readyCh.Store(&ch)
	p.regionPtr.Store(region)
	ps.snapGen = p.generateSnapshot
	rc := &raft.Config{
		ID:                        peerID,
		ElectionTick:              s.cfg.ElectionTicks,
		HeartbeatTick:             s.cfg.HeartbeatTicks,
		Storage:                   ps,
		Applied:                   ps.appliedIndex(),
		MaxSizePerMsg:             s.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           s.cfg.MaxInflightMsgs,
		MaxInflightBytes:          limits.RaftMaxInflightBytes,
		MaxUncommittedEntriesSize: limits.RaftMaxUncommittedSize,
		CheckQuorum:               true,
		PreVote:                   true,
		ReadOnlyOption:            raft.ReadOnlySafe,
		// A leader that applies its own removal or demotion (it could only
		// have been proposed by an earlier leader) stops leading at once
		// instead of leading a group it is no voter of.
		StepDownOnRemoval: true,
		Logger:            raftLogger{log: s.log.With("region", region.GetId(), "peer", peerID)},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return nil, fmt.Errorf("raftstore: region %d: start raft: %w", region.GetId(), err)
	}
	p.rn = rn
	p.lastTerm = ps.hardState.Term
	return p, nil
}

func (p *peer) region() *metapb.Region { return p.regionPtr.Load() }

func (p *peer) setRegion(r *metapb.Region) {
	p.regionPtr.Store(r)
	p.storage.region = r
}

func (p *peer) isLeader() bool { return p.rn.BasicStatus().RaftState == raft.StateLeader }

// peerByID finds a peer of the region.
func (p *peer) peerByID(id uint64) *metapb.Peer {
	for _, m := range p.region().GetPeers() {
		if m.GetId() == id {
			return m
		}
	}
	return p.peerCache[id]
}

// leader returns the leader this peer believes in, or nil.
func (p *peer) leader() *metapb.Peer {
	id := p.leaderID.Load()
	if id == 0 {
		return nil
	}
	for _, m := range p.region().GetPeers() {
		if m.GetId() == id {
			return proto.Clone(m).(*metapb.Peer)
		}
	}
	return nil
}

func (p *peer) notLeader() error {
	return &NotLeaderError{RegionID: p.regionID, Leader: p.leader()}
}

// propose appends a command to the log; done runs on the loop once it
// applies or fails.
func (p *peer) propose(cmd *raftserverpb.RaftCmdRequest, done func(applyResult)) {
	if !p.isLeader() {
		done(applyResult{err: p.notLeader()})
		return
	}
	p.nextProposalID++
	id := p.nextProposalID
	if cmd.Header == nil {
		cmd.Header = &raftserverpb.CmdHeader{}
	}
	cmd.Header.RegionId, cmd.Header.PeerId, cmd.Header.ProposalId = p.regionID, p.id, id
	data, err := proto.Marshal(cmd)
	if err != nil {
		done(applyResult{err: fmt.Errorf("raftstore: marshal command: %w", err)})
		return
	}
	if len(data) > limits.RaftEntryMaxSize {
		// One oversized entry would travel in every append message, log
		// read and snapshot of the region: refuse it here, once.
		done(applyResult{err: &RaftEntryTooLargeError{RegionID: p.regionID, EntrySize: uint64(len(data)), Limit: limits.RaftEntryMaxSize}})
		return
	}
	isConf := cmd.GetAdmin().GetChangePeer() != nil || cmd.GetAdmin().GetChangePeerV2() != nil
	if isConf {
		change, err := raftConfChange(cmd.GetAdmin(), data)
		if err != nil {
			done(applyResult{err: err})
			return
		}
		err = p.rn.ProposeConfChange(change)
	} else {
		err = p.rn.Propose(data)
	}
	if err != nil {
		if err == raft.ErrProposalDropped {
			// A leader transfer in progress or too much uncommitted log.
			done(applyResult{err: &ServerBusyError{Reason: "proposal dropped: leader transfer or uncommitted log limit"}})
			return
		}
		done(applyResult{err: fmt.Errorf("raftstore: propose: %w", err)})
		return
	}
	p.store.stats.Proposals.Add(1)
	p.proposals[id] = &proposal{term: p.rn.BasicStatus().Term, done: done}
	if isConf {
		p.confProposals = append(p.confProposals, id)
	}
}

// failProposals ends every pending proposal with err.
func (p *peer) failProposals(err error) {
	for id, prop := range p.proposals {
		delete(p.proposals, id)
		prop.done(applyResult{err: err})
	}
	p.confProposals = p.confProposals[:0]
}

// failReads ends every pending read with err.
func (p *peer) failReads(err error) {
	for _, r := range p.newReads {
		r.done(err)
	}
	p.newReads = nil
	for ctx, batch := range p.readBatches {
		for _, r := range batch {
			r.done(err)
		}
		delete(p.readBatches, ctx)
	}
	for _, pr := range p.waitingReads {
		for _, r := range pr.reqs {
			r.done(err)
		}
	}
	p.waitingReads = nil
}

// issueReads starts one ReadIndex round for every read queued since the
// last round.
func (p *peer) issueReads() {
	if len(p.newReads) == 0 {
		return
	}
	if !p.isLeader() {
		err := p.notLeader()
		for _, r := range p.newReads {
			r.done(err)
		}
		p.newReads = nil
		return
	}
	p.nextReadCtx++
	ctx := binary.BigEndian.AppendUint64(nil, p.nextReadCtx)
	p.readBatches[p.nextReadCtx] = p.newReads
	p.newReads = nil
	p.rn.ReadIndex(ctx)
	p.store.stats.ReadIndexRounds.Add(1)
}

// onReadStates moves confirmed read batches to wait for apply.
func (p *peer) onReadStates(states []raft.ReadState) {
	for _, rs := range states {
		if len(rs.RequestCtx) != 8 {
			continue
		}
		ctx := binary.BigEndian.Uint64(rs.RequestCtx)
		reqs, ok := p.readBatches[ctx]
		if !ok {
			continue
		}
		delete(p.readBatches, ctx)
		p.waitingReads = append(p.waitingReads, pendingRead{index: rs.Index, reqs: reqs})
	}
	p.serveReads()
}

// serveReads completes the reads whose read index has applied.
func (p *peer) serveReads() {
	applied := p.storage.appliedIndex()
	n := 0
	for _, pr := range p.waitingReads {
		if pr.index <= applied {
			for _, r := range pr.reqs {
				r.done(nil)
			}
			continue
		}
		p.waitingReads[n] = pr
		n++
	}
	p.waitingReads = p.waitingReads[:n]
}

// onSoftState publishes leadership changes and fails work a lost leadership
// can no longer finish.
func (p *peer) onRoleOrTerm() {
	st := p.rn.BasicStatus()
	// Readiness is reset before the new term is published: a request that
	// reads the term, sees the peer ready, and reads the same term again
	// knows the readiness belongs to that term.
	if st.Term != p.lastTerm {
		p.lastTerm = st.Term
		p.setReady(false)
		p.failProposals(ErrStaleCommand)
	}
	oldLeader := p.leaderID.Swap(st.Lead)
	p.term.Store(st.Term)
	if st.RaftState != raft.StateLeader {
		p.setReady(false)
		if len(p.proposals) > 0 {
			p.failProposals(ErrStaleCommand)
		}
		if len(p.readBatches) > 0 || len(p.waitingReads) > 0 || len(p.newReads) > 0 {
			p.failReads(p.notLeader())
		}
	}
	if oldLeader != st.Lead && st.Lead == p.id {
		clear(p.lastHeard)
		p.store.log.Info("became leader", "region", p.regionID, "peer", p.id, "term", st.Term)
		p.store.onBecameLeader(p)
	}
}

// setReady publishes whether the peer is a leader that has applied an
// entry of its own term, i.e. whose applied state includes every write
// committed by earlier leaders, so writes may be computed against it.
func (p *peer) setReady(ready bool) {
	if p.leaderReady.Load() == ready {
		return
	}
	p.leaderReady.Store(ready)
	if ready {
		close(*p.readyCh.Load())
	} else {
		ch := make(chan struct{})
		p.readyCh.Store(&ch)
	}
}

type raftLogger struct{ log *slog.Logger }

func (l raftLogger) Debug(v ...any)                 {}
func (l raftLogger) Debugf(format string, v ...any) {}
func (l raftLogger) Error(v ...any)                 { l.log.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...any)                  {}
func (l raftLogger) Infof(format string, v ...any)  {}
func (l raftLogger) Warning(v ...any)               { l.log.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Fatal(v ...any) { l.log.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (l raftLogger) Fatalf(format string, v ...any) {
	l.log.Error(fmt.Sprintf(format, v...))
	panic(fmt.Sprintf(format, v...))
}
func (l raftLogger) Panic(v ...any) { panic(fmt.Sprint(v...)) }
func (l raftLogger) Panicf(format string, v ...any) {
	panic(fmt.Sprintf(format, v...))
}

// raftConfChange builds the raft conf change for a membership change command
// whose marshalled form is ctx. A single-step ChangePeer is a ConfChangeV2
// with one change and the simple transition; a ChangePeerV2 enters a joint
// configuration with an explicit transition (the leader proposes the leave,
// see maybeLeaveJoint), or, without changes, is that leave.
func raftConfChange(admin *raftserverpb.AdminRequest, ctx []byte) (raftpb.ConfChangeV2, error) {
	cc := raftpb.ConfChangeV2{Context: ctx}
	if v2 := admin.GetChangePeerV2(); v2 != nil {
		if len(v2.GetChanges()) == 0 {
			return cc, nil
		}
		cc.Transition = raftpb.ConfChangeTransitionJointExplicit
		for _, c := range v2.GetChanges() {
			single := raftpb.ConfChangeSingle{NodeID: c.GetPeer().GetId()}
			switch c.GetChangeType() {
			case pdpb.ConfChangeType_PROMOTE_LEARNER:
				single.Type = raftpb.ConfChangeAddNode
			case pdpb.ConfChangeType_DEMOTE_VOTER:
				single.Type = raftpb.ConfChangeAddLearnerNode
			default:
				return cc, fmt.Errorf("%w: %v is not allowed in a joint change", ErrConfChangeRejected, c.GetChangeType())
			}
			if single.NodeID == 0 || c.GetPeer().GetStoreId() == 0 {
				return cc, fmt.Errorf("%w: a change needs a peer id and store id, have %v", ErrConfChangeRejected, c.GetPeer())
			}
			cc.Changes = append(cc.Changes, single)
		}
		return cc, nil
	}
	c := admin.GetChangePeer()
	single := raftpb.ConfChangeSingle{NodeID: c.GetPeer().GetId()}
	switch c.GetChangeType() {
	case pdpb.ConfChangeType_ADD_LEARNER:
		single.Type = raftpb.ConfChangeAddLearnerNode
	case pdpb.ConfChangeType_PROMOTE_LEARNER:
		single.Type = raftpb.ConfChangeAddNode
	case pdpb.ConfChangeType_REMOVE_PEER:
		single.Type = raftpb.ConfChangeRemoveNode
	default:
		return cc, fmt.Errorf("%w: %v is only allowed in a joint change", ErrConfChangeRejected, c.GetChangeType())
	}
	if single.NodeID == 0 || c.GetPeer().GetStoreId() == 0 {
		return cc, fmt.Errorf("%w: a change needs a peer id and store id, have %v", ErrConfChangeRejected, c.GetPeer())
	}
	cc.Changes = []raftpb.ConfChangeSingle{single}
	return cc, nil
}

// maybeLeaveJoint runs on every tick. A leader whose region is in a joint
// configuration (applied: its leadership is ready) proposes to leave it; if
// it is itself a DEMOTING_VOTER it first hands leadership to a voter of the
// new configuration, whose leader then leaves, so a leader is never demoted
// by the leave. Attempts are an election timeout apart; raft itself refuses
// a second leave while one is pending.
func (p *peer) maybeLeaveJoint() {
	if p.leaveWait > 0 {
		p.leaveWait--
		return
	}
	region := p.region()
	if !isJoint(region) || !p.isLeader() || !p.leaderReady.Load() {
		return
	}
	if _, pending := p.proposals[p.leaveProposal]; pending && p.leaveProposal != 0 {
		return
	}
	if k := p.store.cfg.Knobs.HoldJoint; k != nil && k(p.regionID) {
		return
	}
	p.leaveWait = p.store.cfg.ElectionTicks
	if roleOf(region, p.id) == metapb.PeerRole_DEMOTING_VOTER {
		var to, match uint64
		progress := p.rn.Status().Progress
		for _, m := range region.GetPeers() {
			if r := m.GetRole(); r != metapb.PeerRole_VOTER && r != metapb.PeerRole_INCOMING_VOTER {
				continue
			}
			if pr, ok := progress[m.GetId()]; ok && (to == 0 || pr.Match > match) {
				to, match = m.GetId(), pr.Match
			}
		}
		if to != 0 {
			p.store.log.Info("leader is being demoted: transferring leadership before leaving the joint configuration", "region", p.regionID, "to", to)
			p.rn.TransferLeader(to)
		}
		return
	}
	cmd := &raftserverpb.RaftCmdRequest{
		Header: &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch(), CheckConfVer: true},
		Admin:  &raftserverpb.AdminRequest{ChangePeerV2: &raftserverpb.ChangePeerV2Request{}},
	}
	regionID, log := p.regionID, p.store.log
	p.propose(cmd, func(res applyResult) {
		if res.err != nil {
			log.Info("leave joint configuration", "region", regionID, "err", res.err)
		}
	})
	p.leaveProposal = p.nextProposalID
}

// downPeers returns the region's peers this leader has heard nothing from
// for the down threshold: max(MaxPeerDownDuration, two election timeouts).
// A peer's clock starts when the leader first looks at it (it just became
// leader, or the peer was just added), so neither shows up as down at once.
func (p *peer) downPeers(now time.Time) []*pdpb.PeerStats {
	cfg := p.store.cfg
	threshold := max(cfg.MaxPeerDownDuration, 2*time.Duration(cfg.ElectionTicks)*cfg.TickInterval)
	var out []*pdpb.PeerStats
	region := p.region()
	if p.hib.hibernated {
		// Every peer agreed to hibernate in step with this leader, and no
		// message flows while it lasts: silence is not a sign of trouble.
		// The clocks start again when the region wakes.
		clear(p.lastHeard)
		return nil
	}
	for id := range p.lastHeard {
		if !slices.ContainsFunc(region.GetPeers(), func(m *metapb.Peer) bool { return m.GetId() == id }) {
			delete(p.lastHeard, id) // removed from the region
		}
	}
	for _, m := range region.GetPeers() {
		if m.GetId() == p.id {
			continue
		}
		since, ok := p.lastHeard[m.GetId()]
		if !ok {
			p.lastHeard[m.GetId()] = now
			continue
		}
		if d := now.Sub(since); d >= threshold {
			out = append(out, &pdpb.PeerStats{Peer: proto.Clone(m).(*metapb.Peer), DownSeconds: uint64(d / time.Second)})
		}
	}
	return out
}
