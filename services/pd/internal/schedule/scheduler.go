package schedule

import (
	"cmp"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"google.golang.org/protobuf/proto"
)

// Cluster is what the scheduler reads of PD's store registry;
// *cluster.Cluster implements it. Implementations must be safe for concurrent
// use and return copies the scheduler may keep. The scheduler calls them while
// holding its own lock, so they must not call back into the Scheduler.
type Cluster interface {
	// GetAllStores returns every store, tombstones included unless
	// excludeTombstones.
	GetAllStores(excludeTombstones bool) []*metapb.Store
	// GetStoreStats returns the statistics of the store's last heartbeat, or
	// nil if none arrived since PD started.
	GetStoreStats(storeID uint64) *pdpb.StoreStats
	// StoreDownSince returns when the store was marked DOWN, and false if it
	// is not DOWN.
	StoreDownSince(storeID uint64) (time.Time, bool)
}

// Scheduler computes and tracks the operations of region heartbeats. Safe for
// concurrent use.
type Scheduler struct {
	cluster Cluster
	opts    Options

	mu  sync.Mutex
	ops map[uint64]*operator // by region id
	// transfers are finished leader transfers the stores' leader counts may
	// not show yet.
	transfers []transfer
	lastSweep time.Time
}

// transferMemory bounds, in operator timeouts, how long a finished transfer
// may correct leader counts.
const transferMemory = 10

type transfer struct {
	from, to uint64
	at       time.Time
}

// New returns a Scheduler reading stores from c.
func New(c Cluster, opts Options) (*Scheduler, error) {
	if c == nil {
		return nil, errors.New("schedule: nil Cluster")
	}
	if opts.AllocID == nil {
		return nil, ErrNoAllocID
	}
	return &Scheduler{cluster: c, opts: opts.withDefaults(), ops: make(map[uint64]*operator)}, nil
}

// Dispatch handles a region heartbeat received at now, which the catalog has
// accepted, and returns the operation to send back, or nil for none. While an
// operation for the region is in flight it returns nil; the operation ends
// when a heartbeat shows its effect, when the region's epoch moves on without
// it, or after OperatorTimeout.
func (s *Scheduler) Dispatch(req *pdpb.RegionHeartbeatRequest, now time.Time) *pdpb.RegionHeartbeatResponse {
	region := req.GetRegion()
	if region.GetId() == 0 || req.GetLeader() == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	if op := s.ops[region.GetId()]; op != nil {
		switch {
		case op.done(req):
			if op.kind == KindTransferLeader {
				s.transfers = append(s.transfers, transfer{from: op.from, to: op.peer.GetStoreId(), at: now})
			}
			delete(s.ops, region.GetId())
		case op.obsolete(region) || now.Sub(op.created) >= s.opts.OperatorTimeout:
			delete(s.ops, region.GetId())
		default:
			return nil
		}
	}
	s.sweep(now)

	v := s.view(now)
	var op *operator
	if !s.opts.DisableReplicaRepair {
		op = s.repair(req, v, now)
	}
	if op == nil && !s.opts.DisableSplit && req.GetApproximateSize() > s.opts.RegionMaxSize {
		op = newOperator(KindSplit, region, nil, now)
	}
	if op == nil && !s.opts.DisableLeaderBalance {
		op = s.balanceLeader(req, v, now)
	}
	if op == nil {
		return nil
	}
	s.ops[region.GetId()] = op
	return proto.Clone(op.resp).(*pdpb.RegionHeartbeatResponse)
}

// Pending returns the number of operations in flight per kind.
func (s *Scheduler) Pending() map[Kind]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Kind]int)
	for _, op := range s.ops {
		out[op.kind]++
	}
	return out
}

// sweep drops timed-out operations of regions that stopped sending
// heartbeats (merged away or removed), at most once per OperatorTimeout.
func (s *Scheduler) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < s.opts.OperatorTimeout {
		return
	}
	s.lastSweep = now
	for id, op := range s.ops {
		if now.Sub(op.created) >= s.opts.OperatorTimeout {
			delete(s.ops, id)
		}
	}
}

// storeView is one store as the rules see it.
type storeView struct {
	meta  *metapb.Store
	stats *pdpb.StoreStats // nil: no heartbeat since PD started
	// dead: a tombstone, or DOWN for ReplaceDownAfter; its peers get replaced.
	dead bool
}

type view map[uint64]*storeView

func (v view) up(id uint64) bool {
	s := v[id]
	return s != nil && s.meta.GetState() == metapb.StoreState_UP
}

func (v view) dead(id uint64) bool {
	s := v[id]
	return s != nil && s.dead
}

func (s *Scheduler) view(now time.Time) view {
	v := make(view)
	for _, st := range s.cluster.GetAllStores(false) {
		sv := &storeView{meta: st, stats: s.cluster.GetStoreStats(st.GetId())}
		switch st.GetState() {
		case metapb.StoreState_TOMBSTONE:
			sv.dead = true
		case metapb.StoreState_DOWN:
			since, ok := s.cluster.StoreDownSince(st.GetId())
			sv.dead = ok && now.Sub(since) >= s.opts.ReplaceDownAfter
		}
		v[st.GetId()] = sv
	}
	return v
}

// repair returns the next step of replacing the region's dead peers: those
// on stores DOWN for ReplaceDownAfter or tombstoned, and those its leader
// reports down (silent for the store's max-peer-down-duration) while their
// store is UP, i.e. stuck replicas on live stores. A dead voter is replaced
// by adding a learner elsewhere, then, once it caught up, one joint change
// that promotes it and demotes the dead voter (never more voters than
// before), then removing the demoted learner. A caught-up learner is also
// promoted whenever the region has fewer voters than MaxReplicas. A region in
// a joint configuration gets nothing: its leader leaves it by itself.
func (s *Scheduler) repair(req *pdpb.RegionHeartbeatRequest, v view, now time.Time) *operator {
	region := req.GetRegion()
	if isJoint(region) {
		return nil
	}
	unhealthy := unhealthyPeers(req)
	reportedDown := make(map[uint64]bool)
	for _, d := range req.GetDownPeers() {
		reportedDown[d.GetPeer().GetId()] = true
	}
	var liveVoters int
	var deadVoters, deadLearners, learners []*metapb.Peer
	for _, p := range sortedPeers(region) {
		// The leader sent this heartbeat: whatever PD thinks of its store, it
		// is not dead. A down peer of a DOWN store waits for the store rule.
		dead := p.GetId() != req.GetLeader().GetId() &&
			(v.dead(p.GetStoreId()) || (reportedDown[p.GetId()] && v.up(p.GetStoreId())))
		switch {
		case p.GetRole() == metapb.PeerRole_VOTER && dead:
			deadVoters = append(deadVoters, p)
		case p.GetRole() == metapb.PeerRole_VOTER:
			liveVoters++
		case dead:
			deadLearners = append(deadLearners, p)
		default:
			learners = append(learners, p)
		}
	}

	var caughtUp *metapb.Peer
	for _, l := range learners {
		if v.up(l.GetStoreId()) && !unhealthy[l.GetId()] {
			caughtUp = l
			break
		}
	}
	if len(deadVoters) == 0 {
		if len(deadLearners) > 0 {
			return newOperator(KindRemovePeer, region, deadLearners[0], now)
		}
		if liveVoters < s.opts.MaxReplicas && caughtUp != nil {
			return newOperator(KindPromoteLearner, region, caughtUp, now)
		}
		return nil
	}
	if liveVoters >= s.opts.MaxReplicas {
		// More voters than wanted: dropping one leaves enough.
		return newOperator(KindRemovePeer, region, deadVoters[0], now)
	}
	if caughtUp != nil {
		return newReplaceOperator(region, caughtUp, deadVoters[0], now)
	}
	if len(deadLearners) > 0 {
		return newOperator(KindRemovePeer, region, deadLearners[0], now)
	}
	if len(learners) > 0 {
		return nil // a replacement is on its way: wait for it to catch up
	}
	target := s.pickStore(region, v)
	if target == 0 {
		return nil
	}
	id, err := s.opts.AllocID()
	if err != nil {
		s.opts.Logger.Warn("schedule: cannot allocate a peer id to replace a dead peer; retrying on the next heartbeat",
			"region", region.GetId(), "dead_peer", deadVoters[0].GetId(), "err", err)
		return nil
	}
	return newOperator(KindAddLearner, region, &metapb.Peer{Id: id, StoreId: target, Role: metapb.PeerRole_LEARNER}, now)
}

// pickStore returns the UP store without a peer of the region that holds the
// fewest regions, counting learners PD is adding; 0 if there is none.
func (s *Scheduler) pickStore(region *metapb.Region, v view) uint64 {
	adding := make(map[uint64]uint64)
	for _, op := range s.ops {
		if op.kind == KindAddLearner {
			adding[op.peer.GetStoreId()]++
		}
	}
	var best uint64
	bestScore := uint64(math.MaxUint64)
	for id, sv := range v {
		if !v.up(id) || hasStore(region, id) {
			continue
		}
		score := uint64(math.MaxUint32) // unknown load: last resort
		if sv.stats != nil {
			score = uint64(sv.stats.GetRegionCount())
		}
		score += adding[id]
		if score < bestScore || (score == bestScore && id < best) {
			best, bestScore = id, score
		}
	}
	return best
}

// balanceLeader moves the leader to the healthy voter on the UP store with
// the fewest leaders if the leader's store has clearly more.
func (s *Scheduler) balanceLeader(req *pdpb.RegionHeartbeatRequest, v view, now time.Time) *operator {
	leader := req.GetLeader()
	src := v[leader.GetStoreId()]
	if !v.up(leader.GetStoreId()) || src.stats == nil {
		return nil
	}
	delta := s.leaderDelta(v, now)
	srcCount := int(src.stats.GetLeaderCount()) + delta[leader.GetStoreId()]

	unhealthy := unhealthyPeers(req)
	var target *metapb.Peer
	targetCount := 0
	for _, p := range sortedPeers(req.GetRegion()) {
		sv := v[p.GetStoreId()]
		if p.GetId() == leader.GetId() || p.GetRole() != metapb.PeerRole_VOTER || unhealthy[p.GetId()] ||
			!v.up(p.GetStoreId()) || sv.stats == nil {
			continue
		}
		n := int(sv.stats.GetLeaderCount()) + delta[p.GetStoreId()]
		if target == nil || n < targetCount || (n == targetCount && p.GetStoreId() < target.GetStoreId()) {
			target, targetCount = p, n
		}
	}
	if target == nil {
		return nil
	}
	diff := srcCount - targetCount
	if diff <= s.opts.LeaderTolerance || float64(diff) <= s.opts.LeaderToleranceRatio*float64(srcCount) {
		return nil
	}
	op := newOperator(KindTransferLeader, req.GetRegion(), target, now)
	op.from = leader.GetStoreId()
	return op
}

// leaderDelta corrects the stores' reported leader counts for the transfers
// in flight and those finished after the store's last heartbeat. It forgets
// finished transfers both stores have reported since, and any older than
// transferMemory (a store that stopped sending heartbeats is DOWN by then).
func (s *Scheduler) leaderDelta(v view, now time.Time) map[uint64]int {
	delta := make(map[uint64]int)
	for _, op := range s.ops {
		if op.kind == KindTransferLeader {
			delta[op.from]--
			delta[op.peer.GetStoreId()]++
		}
	}
	stale := func(store uint64, at time.Time) bool {
		sv := v[store]
		return sv != nil && sv.meta.GetState() != metapb.StoreState_TOMBSTONE &&
			sv.meta.GetLastHeartbeatMs() < at.UnixMilli()
	}
	kept := s.transfers[:0]
	for _, t := range s.transfers {
		if now.Sub(t.at) >= transferMemory*s.opts.OperatorTimeout {
			continue
		}
		fromStale, toStale := stale(t.from, t.at), stale(t.to, t.at)
		if fromStale {
			delta[t.from]--
		}
		if toStale {
			delta[t.to]++
		}
		if fromStale || toStale {
			kept = append(kept, t)
		}
	}
	clear(s.transfers[len(kept):])
	s.transfers = kept
	return delta
}

func unhealthyPeers(req *pdpb.RegionHeartbeatRequest) map[uint64]bool {
	out := make(map[uint64]bool)
	for _, p := range req.GetPendingPeers() {
		out[p.GetId()] = true
	}
	for _, d := range req.GetDownPeers() {
		out[d.GetPeer().GetId()] = true
	}
	return out
}

// sortedPeers orders peers by id, so decisions do not depend on the order a
// store lists them in.
func sortedPeers(r *metapb.Region) []*metapb.Peer {
	ps := slices.Clone(r.GetPeers())
	slices.SortFunc(ps, func(a, b *metapb.Peer) int { return cmp.Compare(a.GetId(), b.GetId()) })
	return ps
}

// isJoint reports whether the region is in a joint configuration.
func isJoint(r *metapb.Region) bool {
	for _, p := range r.GetPeers() {
		if p.GetRole() == metapb.PeerRole_INCOMING_VOTER || p.GetRole() == metapb.PeerRole_DEMOTING_VOTER {
			return true
		}
	}
	return false
}

func hasStore(r *metapb.Region, store uint64) bool {
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == store {
			return true
		}
	}
	return false
}
