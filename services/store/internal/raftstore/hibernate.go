package raftstore

import (
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
)

// Hibernation, after TiKV's hibernate regions: a region with nothing to do
// stops ticking, so an idle store's raft loop costs next to nothing however
// many regions it holds.
//
// A leader that has been quiet for an election timeout (every peer's log
// matches its own, all of it committed and applied, no proposal, read,
// leader transfer, snapshot or joint configuration pending) asks its peers
// to hibernate at (term, last index). A follower agrees only at the same
// term, under the same leader, with its log, commit and apply at that
// index; it answers and stops ticking. The leader stops ticking once every
// peer of the region has agreed. Anything that needs raft wakes a peer: a
// raft message, a proposal, a leader transfer. Heartbeats do not (see
// stepWakes), nor do reads: a read index round is heartbeats and their
// answers, which need no ticks. A follower woken by a message not
// from its leader tells the leader to wake as well, so the leader's
// heartbeats resume before the follower's election timer runs out.
//
// A hibernated follower does not notice its leader's silence through raft.
// Stores therefore send each other a store heartbeat every raft heartbeat
// interval, independent of regions and of the raft loop. A store whose link
// to another broke (the process died or restarted), or that has not heard
// from it for StoreLivenessTimeout, takes it for down and wakes every
// follower here whose leader is there (see onStoreDown). After a broken
// link the region's first surviving voter (lowest peer id, the same choice
// on every store) campaigns at once the way a leadership transfer does, so
// the others vote for it within their leader lease and no two survivors
// split the vote; the others keep raft's timers as a fallback. After mere
// silence, which may be a stalled machine, the followers only tell their
// leader they woke, so a live leader's heartbeats reset their clocks
// before they run out.

// hibernateState is a peer's hibernation bookkeeping (loop only).
type hibernateState struct {
	hibernated bool
	// quietTicks counts consecutive ticks a leader found its region quiet.
	quietTicks int
	// reqTerm, reqIndex: the point this leader asked its peers to hibernate
	// at; acks, the peers that agreed to it.
	reqTerm, reqIndex uint64
	acks              map[uint64]bool
	// reported: a leader reported to PD since it hibernated; skipped, the
	// region heartbeat rounds it sat out since (see idleReportEvery).
	reported bool
	skipped  int
}

// storeLiveness tracks when this store last heard from each other store.
// Written by gRPC handlers, read by the raft loop.
type storeLiveness struct {
	mu   sync.Mutex
	seen map[uint64]time.Time
}

func (l *storeLiveness) heard(storeID uint64, now time.Time) {
	l.mu.Lock()
	l.seen[storeID] = now
	l.mu.Unlock()
}

func (l *storeLiveness) snapshot() map[uint64]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[uint64]time.Time, len(l.seen))
	for id, t := range l.seen {
		out[id] = t
	}
	return out
}

// wake makes a hibernated peer tick again. Loop only.
func (s *Store) wake(p *peer) {
	p.hib.quietTicks = 0
	if !p.hib.hibernated || p.destroyed {
		return
	}
	p.hib.hibernated = false
	s.awake[p.regionID] = p
	s.stats.HibernatedPeers.Add(-1)
	s.stats.Wakes.Add(1)
}

// touch has the loop look at a peer's Ready this round without waking it
// (it keeps not ticking). Loop only.
func (s *Store) touch(p *peer) {
	if !p.destroyed {
		s.awake[p.regionID] = p
	}
}

// hibernate stops the peer's ticks. It stays in the awake set (its last
// Ready, e.g. the agreement's heartbeat response, still goes out) until a
// tick finds it without one. Loop only.
func (s *Store) hibernate(p *peer) {
	if p.hib.hibernated || p.destroyed {
		return
	}
	p.hib.hibernated = true
	p.hib.reported = false
	p.hib.quietTicks = 0
	p.hib.reqTerm, p.hib.reqIndex = 0, 0
	clear(p.hib.acks)
	s.stats.HibernatedPeers.Add(1)
}

// forgetPeer drops an unregistered peer from the loop's sets. Loop only.
func (s *Store) forgetPeer(p *peer) {
	if s.awake[p.regionID] == p {
		delete(s.awake, p.regionID)
	}
	if p.hib.hibernated {
		p.hib.hibernated = false
		s.stats.HibernatedPeers.Add(-1)
	}
}

// idle reports whether the peer has no work of its own in flight.
func (p *peer) idle() bool {
	return len(p.proposals) == 0 && len(p.newReads) == 0 && len(p.readBatches) == 0 &&
		len(p.waitingReads) == 0 && len(p.pendingSnap) == 0
}

// leaderQuiet reports whether this leader's region may hibernate: every
// peer's log matches the leader's, all of it committed and applied.
func (p *peer) leaderQuiet() bool {
	if !p.idle() || !p.leaderReady.Load() || isJoint(p.region()) {
		return false
	}
	st := p.rn.BasicStatus()
	last := p.storage.lastIndex
	if st.RaftState != raft.StateLeader || st.LeadTransferee != 0 || st.Commit != last || st.Applied != last || p.storage.appliedIndex() != last {
		return false
	}
	peers := p.region().GetPeers()
	matched := 0
	ok := true
	p.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == p.id {
			return
		}
		if pr.Match != last || pr.State != tracker.StateReplicate {
			ok = false
		}
		matched++
	})
	return ok && matched == len(peers)-1
}

// checkHibernate runs on every tick of an awake peer.
func (s *Store) checkHibernate(p *peer) {
	if s.cfg.DisableHibernation || !p.isLeader() {
		return
	}
	if !p.leaderQuiet() {
		p.hib.quietTicks = 0
		return
	}
	p.hib.quietTicks++
	if p.hib.quietTicks < s.cfg.ElectionTicks {
		return
	}
	term, last := p.rn.BasicStatus().Term, p.storage.lastIndex
	if p.hib.reqTerm != term || p.hib.reqIndex != last {
		p.hib.reqTerm, p.hib.reqIndex = term, last
		if p.hib.acks == nil {
			p.hib.acks = map[uint64]bool{}
		}
		clear(p.hib.acks)
	} else if s.allAcked(p) {
		s.hibernate(p)
		return
	} else if (p.hib.quietTicks-s.cfg.ElectionTicks)%s.cfg.HeartbeatTicks != 0 {
		return
	}
	for _, m := range p.region().GetPeers() {
		if m.GetId() != p.id && !p.hib.acks[m.GetId()] {
			s.sendExtra(p, m, raftserverpb.ExtraMessageType_HIBERNATE_REQUEST, term, last)
		}
	}
	s.stats.HibernateRequests.Add(1)
}

func (s *Store) allAcked(p *peer) bool {
	for _, m := range p.region().GetPeers() {
		if m.GetId() != p.id && !p.hib.acks[m.GetId()] {
			return false
		}
	}
	return true
}

// sendExtra sends a hibernation signal to a peer of p's region.
func (s *Store) sendExtra(p *peer, to *metapb.Peer, typ raftserverpb.ExtraMessageType, term, index uint64) {
	from := p.peerByID(p.id)
	if from == nil || to == nil {
		return
	}
	region := p.region()
	s.trans.send(&raftserverpb.RaftMessage{
		RegionId: p.regionID, FromPeer: from, ToPeer: to, RegionEpoch: region.GetRegionEpoch(),
		StartKey: region.GetStartKey(), EndKey: region.GetEndKey(),
		Extra: &raftserverpb.ExtraMessage{Type: typ, Term: term, Index: index},
	})
}

// onExtraMessage handles a hibernation signal for p. Loop only.
func (s *Store) onExtraMessage(p *peer, rm *raftserverpb.RaftMessage) {
	ex := rm.GetExtra()
	from := rm.GetFromPeer()
	switch ex.GetType() {
	case raftserverpb.ExtraMessageType_HIBERNATE_REQUEST:
		st := p.rn.BasicStatus()
		if s.cfg.DisableHibernation || st.RaftState != raft.StateFollower || st.Term != ex.GetTerm() || st.Lead != from.GetId() ||
			p.storage.lastIndex != ex.GetIndex() || st.Commit != ex.GetIndex() || p.storage.appliedIndex() != ex.GetIndex() || !p.idle() {
			return
		}
		s.sendExtra(p, from, raftserverpb.ExtraMessageType_HIBERNATE_RESPONSE, ex.GetTerm(), ex.GetIndex())
		s.hibernate(p)
	case raftserverpb.ExtraMessageType_HIBERNATE_RESPONSE:
		if p.hib.hibernated || !p.isLeader() || p.hib.reqTerm != ex.GetTerm() || p.hib.reqIndex != ex.GetIndex() || p.hib.acks == nil {
			return
		}
		p.hib.acks[from.GetId()] = true
		if s.allAcked(p) && p.leaderQuiet() && p.rn.BasicStatus().Term == ex.GetTerm() && p.storage.lastIndex == ex.GetIndex() {
			s.hibernate(p)
		}
	case raftserverpb.ExtraMessageType_WAKE_UP:
		s.wake(p)
	}
}

// stepWakes decides whether a raft message wakes the hibernated peer it
// is stepped into. Heartbeats and their answers do not: a follower's
// acknowledgement leaves a quiet leader nothing to do, and a follower that
// hears a leader's heartbeats needs no election timer (if the leader's
// store goes down, store liveness wakes it). Waking on a heartbeat would
// wake a follower that just agreed to hibernate with the heartbeat its
// leader sent before it heard the agreement, and leave it ticking, and
// finally campaigning, beside a hibernated leader.
func stepWakes(m *raftpb.Message) bool {
	return m.Type != raftpb.MsgHeartbeat && m.Type != raftpb.MsgHeartbeatResp && m.Type != raftpb.MsgAppResp
}

// sendStoreHeartbeats tells every store this one talks to that it is
// alive. It runs on its own goroutine, not the raft loop: a busy loop is
// not a dead store, and raft's own timers cover awake regions.
func (s *Store) storeHeartbeatLoop() {
	defer s.wg.Done()
	t := time.NewTicker(time.Duration(s.cfg.HeartbeatTicks) * s.cfg.TickInterval)
	defer t.Stop()
	self := &metapb.Peer{StoreId: s.cfg.StoreID}
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
		}
		for _, id := range s.trans.storeIDs() {
			s.trans.send(&raftserverpb.RaftMessage{
				FromPeer: self, ToPeer: &metapb.Peer{StoreId: id},
				Extra: &raftserverpb.ExtraMessage{Type: raftserverpb.ExtraMessageType_STORE_HEARTBEAT},
			})
		}
	}
}

// checkStoreLiveness runs on every tick: a store silent for
// StoreLivenessTimeout is taken for down.
func (s *Store) checkStoreLiveness(now time.Time) {
	for id, last := range s.liveness.snapshot() {
		if since, down := s.storeDown[id]; down {
			if last.After(since) {
				delete(s.storeDown, id)
			}
			continue
		}
		if now.Sub(last) > s.cfg.StoreLivenessTimeout {
			s.onStoreDown(id, now, false)
		}
	}
}

// onStoreDown wakes every follower here whose leader is on the store, so
// those regions elect a new leader if it is gone. broke: the link to the
// store broke (its process died or restarted; it is not merely slow): the
// region's first surviving voter campaigns at once. Otherwise (silence may
// be a stalled machine) each follower tells its leader it woke: a leader
// that is alive wakes and heartbeats before the followers' timers run out,
// so a stall does not turn into thousands of elections. Loop only.
func (s *Store) onStoreDown(storeID uint64, now time.Time, broke bool) {
	if _, down := s.storeDown[storeID]; down {
		return
	}
	s.storeDown[storeID] = now
	s.stats.StoreDownEvents.Add(1)
	n, forced := 0, 0
	for _, p := range s.peerList() {
		lead := p.leaderID.Load()
		if lead == 0 || p.destroyed {
			continue
		}
		if lead == p.id {
			// A leader with a peer there ticks again: if that cost it its
			// quorum, check-quorum steps it down and its clients learn.
			if p.hib.hibernated && slices.ContainsFunc(p.region().GetPeers(), func(m *metapb.Peer) bool { return m.GetStoreId() == storeID }) {
				s.wake(p)
			}
			continue
		}
		m := p.peerByID(lead)
		if m == nil || m.GetStoreId() != storeID {
			continue
		}
		s.wake(p)
		if !broke {
			s.sendExtra(p, m, raftserverpb.ExtraMessageType_WAKE_UP, 0, 0)
		} else if firstSurvivor(p.region(), storeID) == p.id {
			// One survivor, the same on every store, campaigns at once as a
			// leadership transfer would: the others grant it their votes
			// though their leader lease has not run out, and no two
			// followers campaigning in the same tick split the vote. The
			// others keep their clocks: if this one cannot win (its log is
			// behind), they elect after their own timeouts.
			st := p.rn.BasicStatus()
			_ = p.rn.Step(raftpb.Message{Type: raftpb.MsgTimeoutNow, From: lead, To: p.id, Term: st.Term})
			forced++
		}
		n++
	}
	s.log.Info("store taken for down: woke the followers of its leaders", "down_store", storeID, "link_broke", broke, "followers", n, "campaigned", forced)
}

// firstSurvivor is the voter with the lowest peer id of the region's
// voters not on the down store, or 0.
func firstSurvivor(region *metapb.Region, down uint64) uint64 {
	var first uint64
	for _, m := range region.GetPeers() {
		if m.GetStoreId() == down || m.GetRole() != metapb.PeerRole_VOTER {
			continue
		}
		if first == 0 || m.GetId() < first {
			first = m.GetId()
		}
	}
	return first
}

// sweepHibernated wakes a hibernated peer that has work after all: a
// safety net for a wake-up missed by the paths above. Loop only.
func (s *Store) sweepHibernated() {
	for _, p := range s.peerList() {
		if p.hib.hibernated && s.awake[p.regionID] != p && (!p.idle() || p.rn.HasReady()) {
			s.log.Warn("hibernated peer had work: waking it", "region", p.regionID)
			s.wake(p)
		}
	}
}
