package raftstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// PD is what the store needs from the placement driver; *pdclient.Client
// implements it.
type PD interface {
	GetStore(ctx context.Context, id uint64) (*metapb.Store, error)
	InvalidateStore(id uint64)
	AllocID(ctx context.Context, count uint32) (uint64, error)
	GetTS(ctx context.Context) (uint64, error)
	AskSplit(ctx context.Context, region *metapb.Region) (*pdpb.AskSplitResponse, error)
	ReportSplit(ctx context.Context, left, right *metapb.Region) error
	StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error)
	RegionHeartbeat(ctx context.Context, req *pdpb.RegionHeartbeatRequest) (*pdpb.RegionHeartbeatResponse, error)
	GetGCSafePoint(ctx context.Context) (uint64, error)
	// ClaimStore claims a store id for this data directory (see
	// pdpb.ClaimStoreRequest) and returns it and the cluster id.
	ClaimStore(ctx context.Context, storeID uint64, address string, nonce uint64) (id, clusterID uint64, err error)
}

// Store runs every region peer this store holds: one raft loop drives all
// of them, so each round writes every peer's log entries and hard state in
// one Pebble batch with one fsync.
type Store struct {
	cfg         Config
	db          *pebble.DB
	pd          PD
	log         *slog.Logger
	trans       *Transport
	snaps       *snapRegistry
	incarnation uint32
	addr        string
	// gcTokens hands out the tokens of GC watches (WatchGC): never reused
	// by any peer of this store, past or present.
	gcTokens atomic.Uint64
	// bootstrapped is set when this start created the store's state.
	bootstrapped bool
	// ident is this data directory's identity: store id, cluster id and
	// the nonce of its claim.
	ident *raftserverpb.StoreIdent
	// peerLog rate-limits the log of raft traffic refused from another
	// cluster.
	peerLog rateLog

	mu    sync.RWMutex
	peers map[uint64]*peer // by region id

	// awake are the peers that tick and whose Ready the loop checks: all
	// but the hibernated ones (loop only).
	awake map[uint64]*peer
	// liveness records when each other store was last heard from;
	// storeDown, the stores taken for down and since when (loop only).
	liveness  storeLiveness
	storeDown map[uint64]time.Time

	taskMu sync.Mutex
	tasks  []func()
	notify chan struct{}

	heartbeatNow chan uint64
	// opsRunning are the regions with a PD operation being run.
	opMu       sync.Mutex
	opsRunning map[uint64]bool
	// snapHolders are peers given snapshot data this round (loop only).
	snapHolders []*peer
	// holdingApps are the peers with held empty appends (loop only).
	holdingApps map[*peer]struct{}
	// inbound counts received raft messages not yet stepped.
	inbound  atomic.Int64
	stopc    chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	// fatal is set when the loop stops on an engine error.
	stats   Stats
	fatalMu sync.Mutex
	fatal   error
	// fatalc closes when the loop stops on an engine failure.
	fatalc chan struct{}

	// gcSafePoint is the highest GC safe point this store knows: from PD
	// (RaiseGCSafePoint), from GC commands and snapshots it applied, and
	// persisted by those (keys.GCSafePointKey). Data here may have been
	// collected up to it, so reads below it are refused.
	gcSafePoint atomic.Uint64
	// persistedGCSafePoint is the value at keys.GCSafePointKey (loop only).
	persistedGCSafePoint uint64
}

// Open opens the store's state in db. On the first start of an empty
// engine it claims its store id from PD (see claimIdentity), then
// bootstraps: it records its identity and creates a peer for every region
// of bootstrap that has one on this store, in one synced batch. Later
// starts ignore bootstrap and load everything from disk.
func Open(cfg Config, db *pebble.DB, pd PD, addr string, bootstrap []*metapb.Region, log *slog.Logger) (*Store, error) {
	cfg = cfg.WithDefaults()
	if cfg.Knobs.ProposalTimeout != 0 {
		cfg.ProposalTimeout = cfg.Knobs.ProposalTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Store{
		cfg:          cfg,
		db:           db,
		pd:           pd,
		log:          log,
		incarnation:  uint32(time.Now().Unix()),
		addr:         addr,
		peers:        map[uint64]*peer{},
		awake:        map[uint64]*peer{},
		storeDown:    map[uint64]time.Time{},
		liveness:     storeLiveness{seen: map[uint64]time.Time{}},
		notify:       make(chan struct{}, 1),
		heartbeatNow: make(chan uint64, 64),
		opsRunning:   map[uint64]bool{},
		stopc:        make(chan struct{}),
		fatalc:       make(chan struct{}),
	}
	s.snaps = newSnapRegistry()
	fresh, err := s.claimIdentity()
	if err != nil {
		return nil, err
	}
	s.log = log.With("store", s.cfg.StoreID)
	if err := s.loadOrBootstrap(fresh, bootstrap); err != nil {
		return nil, err
	}
	if cfg.SnapshotDir != "" {
		// An interrupted apply was completed from its files above; files
		// of snapshots received but not applied before the stop are of no
		// use (the leader sends a new one).
		if err := os.RemoveAll(cfg.SnapshotDir); err != nil {
			return nil, fmt.Errorf("raftstore: clear snapshot directory: %w", err)
		}
		if err := os.MkdirAll(cfg.SnapshotDir, 0o755); err != nil {
			return nil, fmt.Errorf("raftstore: create snapshot directory: %w", err)
		}
	}
	if err := s.loadGCSafePoint(); err != nil {
		return nil, err
	}
	s.trans = newTransport(s)
	return s, nil
}

func (s *Store) loadOrBootstrap(fresh bool, bootstrap []*metapb.Region) error {
	if fresh {
		b := s.db.NewBatch()
		defer b.Close()
		n := 0
		for _, r := range bootstrap {
			for _, m := range r.GetPeers() {
				if m.GetStoreId() == s.cfg.StoreID {
					if err := writeInitialState(b, r); err != nil {
						return err
					}
					n++
				}
			}
		}
		if err := putProto(b, keys.StoreIdentKey, s.ident); err != nil {
			return err
		}
		if err := b.Delete(keys.StoreIdentPendingKey, nil); err != nil {
			return fmt.Errorf("raftstore: write bootstrap state: %w", err)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("raftstore: write bootstrap state: %w", err)
		}
		s.log.Info("bootstrapped store", "regions", n, "cluster_id", s.ident.GetClusterId())
		s.bootstrapped = true
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keys.RegionMetaMin, UpperBound: keys.RegionMetaMax})
	if err != nil {
		return fmt.Errorf("raftstore: scan region states: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		id, err := keys.RegionIDFromStateKey(it.Key())
		if err != nil {
			return err
		}
		st := &raftserverpb.RegionLocalState{}
		if err := proto.Unmarshal(it.Value(), st); err != nil {
			return fmt.Errorf("%w: region %d state: %v", errCorruptState, id, err)
		}
		if st.GetState() == raftserverpb.PeerState_TOMBSTONE {
			continue
		}
		if st.GetState() == raftserverpb.PeerState_APPLYING {
			if st, err = s.finishInterruptedApply(st); err != nil {
				return err
			}
			if st == nil {
				continue
			}
		}
		var self *metapb.Peer
		for _, m := range st.GetRegion().GetPeers() {
			if m.GetStoreId() == s.cfg.StoreID {
				self = m
			}
		}
		if self == nil {
			return fmt.Errorf("%w: region %d has no peer on this store", errCorruptState, id)
		}
		if _, err := s.createPeer(st.GetRegion(), self.GetId()); err != nil {
			return err
		}
	}
	return it.Error()
}

// createPeer loads a peer's storage and registers it. Loop (or Open) only.
func (s *Store) createPeer(region *metapb.Region, peerID uint64) (*peer, error) {
	ps, err := loadPeerStorage(s.db, region)
	if err != nil {
		return nil, err
	}
	p, err := newPeer(s, region, peerID, ps)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.peers[region.GetId()] = p
	s.mu.Unlock()
	s.awake[region.GetId()] = p
	return p, nil
}

// ClusterID is the cluster this store's data belongs to.
func (s *Store) ClusterID() uint64 { return s.ident.GetClusterId() }

// StoreID returns the store's id.
func (s *Store) StoreID() uint64 { return s.cfg.StoreID }

// GCSafePoint returns the highest GC safe point this store knows: its data
// may have been collected up to it.
func (s *Store) GCSafePoint() uint64 { return s.gcSafePoint.Load() }

// RaiseGCSafePoint raises the store's known GC safe point to sp (a safe
// point read from PD), in memory; GC commands and snapshots persist theirs.
func (s *Store) RaiseGCSafePoint(sp uint64) {
	for old := s.gcSafePoint.Load(); sp > old && !s.gcSafePoint.CompareAndSwap(old, sp); old = s.gcSafePoint.Load() {
	}
}

// recordGCSafePoint raises the known GC safe point to sp, the safe point of
// data applied into b (a GC command's or a snapshot's), and persists it in
// b. It raises the value in memory before b commits, so a read that checks
// it after reading (see kvsvc) cannot have seen the collected data unnoticed.
// Loop only.
func (s *Store) recordGCSafePoint(b *pebble.Batch, sp uint64) error {
	s.RaiseGCSafePoint(sp)
	if sp <= s.persistedGCSafePoint {
		return nil
	}
	if err := b.Set(keys.GCSafePointKey, binary.BigEndian.AppendUint64(nil, sp), nil); err != nil {
		return fmt.Errorf("raftstore: record GC safe point: %w", err)
	}
	s.persistedGCSafePoint = sp
	return nil
}

func (s *Store) loadGCSafePoint() error {
	v, closer, err := s.db.Get(keys.GCSafePointKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftstore: read GC safe point: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("%w: GC safe point of %d bytes", errCorruptState, len(v))
	}
	s.persistedGCSafePoint = binary.BigEndian.Uint64(v)
	s.RaiseGCSafePoint(s.persistedGCSafePoint)
	return nil
}

// Knobs returns the store's testing knobs.
func (s *Store) Knobs() TestingKnobs { return s.cfg.Knobs }

// DB returns the store's engine for readers.
func (s *Store) DB() *pebble.DB { return s.db }

// Start runs the raft loop and the background workers.
func (s *Store) Start() {
	s.wg.Add(4)
	go s.loop()
	go s.heartbeatLoop()
	go s.splitCheckLoop()
	go s.storeHeartbeatLoop()
	// Regions that have a single voter need no election round trip, and
	// after a full restart an immediate campaign speeds recovery.
	s.post(func() {
		for _, p := range s.peerList() {
			if len(p.region().GetPeers()) == 1 || (s.bootstrapped && slices.Contains(s.cfg.CampaignOnBootstrap, p.regionID)) {
				_ = p.rn.Campaign()
			}
		}
	})
}

// Stop stops the loop and the workers and waits for them. Requests in
// flight fail with ErrStopped.
func (s *Store) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.wg.Wait()
	s.trans.close()
	s.snaps.closeAll()
	for _, p := range s.peerList() {
		p.failProposals(ErrStopped)
		p.failReads(ErrStopped)
	}
}

// Failed is closed when the raft loop stopped on an engine failure; the
// store then serves nothing and the process should exit (Err says why).
func (s *Store) Failed() <-chan struct{} { return s.fatalc }

// Err reports why the loop stopped on its own, if it did.
func (s *Store) Err() error {
	s.fatalMu.Lock()
	defer s.fatalMu.Unlock()
	return s.fatal
}

func (s *Store) peerList() []*peer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ps := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].regionID < ps[j].regionID })
	return ps
}

func (s *Store) getPeer(regionID uint64) *peer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.peers[regionID]
}

// post queues fn to run on the raft loop.
func (s *Store) post(fn func()) {
	s.taskMu.Lock()
	s.tasks = append(s.tasks, fn)
	s.taskMu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Store) loop() {
	defer s.wg.Done()
	ticker := time.NewTicker(s.cfg.TickInterval)
	defer ticker.Stop()
	var tasks []func()
	tick := 0
	for {
		select {
		case <-s.stopc:
			return
		case <-ticker.C:
			now := time.Now()
			ticks := 0
			for id, p := range s.awake {
				if p.hib.hibernated {
					// Asleep once its last Ready went out.
					if !p.rn.HasReady() {
						delete(s.awake, id)
					}
					continue
				}
				p.rn.Tick()
				ticks++
				p.maybeLeaveJoint()
				s.checkHibernate(p)
			}
			s.stats.PeerTicks.Add(int64(ticks))
			s.sendHeldApps()
			s.checkStoreLiveness(now)
			if tick++; tick%sweepTicks == 0 {
				s.sweepHibernated()
			}
			s.snaps.expire(now)
		case <-s.notify:
		}
		start := time.Now()
		s.taskMu.Lock()
		tasks, s.tasks = s.tasks, tasks[:0]
		s.taskMu.Unlock()
		for i, fn := range tasks {
			fn()
			tasks[i] = nil
		}
		taskTime := time.Since(start)
		err := s.handleReadies()
		d := time.Since(start)
		s.stats.observeRound(d)
		if d >= slowRound {
			// Every region of the store waited this long: leaders whose
			// quorum needs this store may have stepped down meanwhile.
			s.log.Warn("slow raft loop round", "took", d, "tasks", len(tasks), "tasks_took", taskTime)
		}
		if err != nil {
			s.fatalMu.Lock()
			s.fatal = err
			s.fatalMu.Unlock()
			close(s.fatalc)
			s.log.Error("raft loop stopped: engine failure", "err", err)
			for _, p := range s.peerList() {
				p.failProposals(err)
				p.failReads(err)
			}
			return
		}
	}
}

// slowRound is the raft loop round duration past which the store logs a
// warning.
const slowRound = time.Second

// sweepTicks is how often (in ticks) the loop checks hibernated peers for
// work a missed wake-up left them with.
const sweepTicks = 100

type peerReady struct {
	p  *peer
	rd raft.Ready
}

// handleReadies runs one round: persist every peer's ready state in one
// synced batch, send messages, apply committed entries in a second batch,
// then advance.
func (s *Store) handleReadies() error {
	var readies []peerReady
	for _, p := range s.awake {
		p.issueReads()
		if p.rn.HasReady() {
			readies = append(readies, peerReady{p: p, rd: p.rn.Ready()})
		}
	}
	if len(readies) == 0 {
		return nil
	}
	s.stats.ReadyRounds.Add(1)

	// A leader's messages may go out before its own log write (raft thesis
	// §10.2.1): its fsync then overlaps the followers'. Only a leader that
	// was one before this Ready qualifies; a new leader's term and vote must
	// be on disk first, as must any follower's state before it answers.
	sentEarly := make([]bool, len(readies))
	for i, r := range readies {
		if r.rd.SoftState == nil && r.p.isLeader() && raft.IsEmptySnap(r.rd.Snapshot) {
			s.send(r.p, r.rd.Messages)
			sentEarly[i] = true
		}
	}

	wb := s.db.NewBatch()
	defer wb.Close()
	sync := false
	var snapshotted []*peer
	for _, r := range readies {
		if !raft.IsEmptySnap(r.rd.Snapshot) {
			if err := r.p.applySnapshot(wb, r.rd.Snapshot); err != nil {
				return err
			}
			snapshotted = append(snapshotted, r.p)
		}
		if err := r.p.storage.appendEntries(wb, r.rd.Entries); err != nil {
			return err
		}
		if !raft.IsEmptyHardState(r.rd.HardState) {
			if err := r.p.storage.setHardState(wb, r.rd.HardState); err != nil {
				return err
			}
		}
		// etcd raft's MustSync ignores snapshots, but answering for one
		// that a crash could take back would let the leader believe in a
		// log this peer no longer has.
		sync = sync || r.rd.MustSync || !raft.IsEmptySnap(r.rd.Snapshot)
		s.stats.EntriesPersisted.Add(int64(len(r.rd.Entries)))
	}
	if !wb.Empty() {
		opts := pebble.NoSync
		if sync {
			opts = pebble.Sync
		}
		if err := wb.Commit(opts); err != nil {
			return fmt.Errorf("raftstore: persist raft state: %w", err)
		}
		if sync {
			s.stats.RaftSyncs.Add(1)
		}
	}
	for _, p := range snapshotted {
		p.afterSnapshotApplied()
	}
	// A snapshot raft did not take this round (stale term, duplicate) will
	// never be asked for: drop its files.
	for _, p := range s.snapHolders {
		p.dropPendingSnaps()
	}
	s.snapHolders = s.snapHolders[:0]

	for i, r := range readies {
		if !sentEarly[i] {
			s.send(r.p, r.rd.Messages)
		}
		if r.rd.SoftState != nil || !raft.IsEmptyHardState(r.rd.HardState) {
			r.p.onRoleOrTerm()
		}
		if len(r.rd.ReadStates) > 0 {
			r.p.onReadStates(r.rd.ReadStates)
		}
	}

	ab := s.db.NewBatch()
	defer ab.Close()
	var after []func()
	for _, r := range readies {
		if len(r.rd.CommittedEntries) == 0 {
			continue
		}
		if err := r.p.applyEntries(ab, r.rd.CommittedEntries, &after); err != nil {
			return err
		}
		s.stats.EntriesApplied.Add(int64(len(r.rd.CommittedEntries)))
	}
	if !ab.Empty() {
		// The log is the durable record of a committed command; the apply
		// batch rides on the next synced raft batch's WAL fsync, and a
		// crash before it only means re-applying from the log.
		if err := ab.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("raftstore: apply: %w", err)
		}
	}
	for _, fn := range after {
		fn()
	}
	for _, r := range readies {
		if r.p.destroyed {
			continue
		}
		r.p.rn.Advance(r.rd)
		r.p.serveReads()
		if err := r.p.maybeTruncateLog(); err != nil {
			return err
		}
	}
	return nil
}

// send hands a Ready's raft messages to the transport, filtering msgs in
// place: the Ready owns the slice and nothing reads it afterwards.
//
// A leader's empty appends are held back until the next tick unless a later
// append to the same follower supersedes them. etcd raft broadcasts one to
// every follower each time its commit index moves, so that they learn it;
// under load, with the next transaction's entries already on their way or
// about to be, each such broadcast cost a message batch each way and a
// follower loop round per entry, for news the next append carries anyway
// (its Commit is at least as high). An append of the same term (the held
// one's term or later) to the same follower replaces a held one; a held
// one goes out at the next tick, so a follower learns the last commit of a
// burst within a tick interval, well inside the heartbeat interval after
// which raft's own recovery appends (also empty) would repeat. Raft allows
// any message to be lost, delayed or reordered, so this changes no outcome,
// only when followers apply: the leader's replies do not wait for them.
//
// A held append is addressed when it is held, as it would have been sent:
// a peer being removed learns that its removal committed only from this
// broadcast, and once the leader has applied the removal the region no
// longer names the removed peer (peerByID finds nothing), so addressing it
// at the tick would drop it and leave the removed replica behind.
func (s *Store) send(p *peer, msgs []raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	n := 0
	for i := range msgs {
		m := &msgs[i]
		if m.Type == raftpb.MsgApp {
			if len(m.Entries) == 0 {
				s.holdApp(p, m)
				continue
			}
			if h, ok := p.heldApps[m.To]; ok && h.m.Term <= m.Term {
				delete(p.heldApps, m.To)
				s.stats.EmptyAppendsSkipped.Add(1)
			}
		}
		msgs[n] = *m
		n++
	}
	msgs = msgs[:n]
	if len(msgs) == 0 {
		return
	}
	region := p.region()
	from := p.peerByID(p.id)
	for i := range msgs {
		s.sendAddressed(p.regionID, region, from, p.peerByID(msgs[i].To), &msgs[i])
	}
}

// heldApp is an empty append held back by send, with the addressing it
// was held under.
type heldApp struct {
	m        raftpb.Message
	from, to *metapb.Peer
	region   *metapb.Region
}

// holdApp holds an empty append back (see send), replacing one held for
// the same follower.
func (s *Store) holdApp(p *peer, m *raftpb.Message) {
	from, to := p.peerByID(p.id), p.peerByID(m.To)
	if from == nil || to == nil {
		return // not addressable now, and sending it now would drop it too
	}
	if p.heldApps == nil {
		p.heldApps = make(map[uint64]heldApp)
	}
	if _, ok := p.heldApps[m.To]; ok {
		s.stats.EmptyAppendsSkipped.Add(1)
	}
	p.heldApps[m.To] = heldApp{m: *m, from: from, to: to, region: p.region()}
	if s.holdingApps == nil {
		s.holdingApps = make(map[*peer]struct{})
	}
	s.holdingApps[p] = struct{}{}
}

// sendHeldApps sends the empty appends send held back (loop only), to the
// peers they were addressed to when held, even where the region no longer
// names them or the sender is gone: sent at once, they would have gone out
// too, and raft ignores the stale ones.
func (s *Store) sendHeldApps() {
	for p := range s.holdingApps {
		delete(s.holdingApps, p)
		for to, h := range p.heldApps {
			delete(p.heldApps, to)
			s.sendAddressed(p.regionID, h.region, h.from, h.to, &h.m)
		}
	}
}

// sendAddressed wraps one raft message of region regionID (whose state
// the receiver checks it against is region) from one peer to another and
// hands it to the transport; a nil from or to drops it.
func (s *Store) sendAddressed(regionID uint64, region *metapb.Region, from, to *metapb.Peer, m *raftpb.Message) {
	if to == nil || from == nil {
		return
	}
	data, err := m.Marshal()
	if err != nil {
		s.log.Error("marshal raft message", "err", err)
		return
	}
	rm := &raftserverpb.RaftMessage{
		RegionId:    regionID,
		FromPeer:    from,
		ToPeer:      to,
		RegionEpoch: region.GetRegionEpoch(),
		Message:     data,
		StartKey:    region.GetStartKey(),
		EndKey:      region.GetEndKey(),
	}
	if m.Type == raftpb.MsgSnap {
		s.trans.sendSnapshot(rm, m.Snapshot)
		return
	}
	s.trans.send(rm)
}

// onRaftMessage steps a message from another store into its peer, creating
// an empty peer for a region this store has never held when that is safe.
// A received snapshot's files (snap) are removed unless its peer takes them.
func (s *Store) onRaftMessage(rm *raftserverpb.RaftMessage, snap *incomingSnap) {
	taken := false
	defer func() {
		if !taken {
			snap.remove()
		}
	}()
	if rm.GetToPeer().GetStoreId() != s.cfg.StoreID {
		return
	}
	if rm.GetIsTombstone() {
		s.onTombstoneMessage(rm)
		return
	}
	if ex := rm.GetExtra(); ex.GetType() != raftserverpb.ExtraMessageType_EXTRA_NONE {
		if p := s.getPeer(rm.GetRegionId()); p != nil && p.id == rm.GetToPeer().GetId() {
			s.onExtraMessage(p, rm)
		}
		return
	}
	var m raftpb.Message
	if err := m.Unmarshal(rm.GetMessage()); err != nil {
		s.log.Warn("dropping undecodable raft message", "region", rm.GetRegionId(), "err", err)
		return
	}
	p := s.getPeer(rm.GetRegionId())
	if p == nil {
		var ok bool
		if p, ok = s.maybeCreatePeer(rm, &m); !ok {
			return
		}
	}
	if p.id != rm.GetToPeer().GetId() {
		// A message for an older or newer incarnation of our peer.
		return
	}
	if s.answerRemovedPeer(p, rm) {
		return
	}
	if from := rm.GetFromPeer(); from.GetId() != 0 {
		p.lastHeard[from.GetId()] = time.Now()
	}
	if from := rm.GetFromPeer(); from.GetId() != 0 && p.peerCache[from.GetId()] == nil && len(p.peerCache) < 64 {
		p.peerCache[from.GetId()] = from
		p.peerCache[p.id] = rm.GetToPeer()
	}
	if m.Type == raftpb.MsgSnap && m.Snapshot != nil {
		if snap == nil {
			return // snapshots arrive only through the snapshot stream
		}
		if !s.snapshotFits(p, m.Snapshot) {
			return
		}
		p.dropPendingSnaps()
		p.pendingSnap[snapKey{m.Snapshot.Metadata.Index, m.Snapshot.Metadata.Term}] = snap
		s.snapHolders = append(s.snapHolders, p)
		taken = true
	}
	if err := p.rn.Step(m); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
		s.log.Debug("step raft message", "region", p.regionID, "err", err)
	}
	if p.hib.hibernated {
		if !stepWakes(&m) {
			// Its answer still goes out, without a tick.
			if p.rn.HasReady() {
				s.touch(p)
			}
			return
		}
		s.wake(p)
		// Woken by someone other than its leader (a campaign, a restarted
		// peer): the leader's heartbeats must resume before this peer's
		// election timer runs out.
		if lead := p.leaderID.Load(); lead != 0 && lead != p.id && lead != m.From {
			s.sendExtra(p, p.peerByID(lead), raftserverpb.ExtraMessageType_WAKE_UP, 0, 0)
		}
	}
}

// maybeCreatePeer creates an uninitialized peer for a region first heard of
// through a message, unless the region's range overlaps a region this store
// holds: then the message is stale or the store will create the peer itself
// when it applies a split.
func (s *Store) maybeCreatePeer(rm *raftserverpb.RaftMessage, m *raftpb.Message) (*peer, bool) {
	switch m.Type {
	case raftpb.MsgVote, raftpb.MsgPreVote, raftpb.MsgHeartbeat, raftpb.MsgApp, raftpb.MsgSnap:
	default:
		return nil, false
	}
	// A peer removed from here stays removed: only a membership newer than
	// the one that removed it may bring the region back.
	st := &raftserverpb.RegionLocalState{}
	if ok, err := getProto(s.db, keys.RegionStateKey(rm.GetRegionId()), st); err != nil || (ok && st.GetState() == raftserverpb.PeerState_TOMBSTONE &&
		rm.GetRegionEpoch().GetConfVer() <= st.GetRegion().GetRegionEpoch().GetConfVer()) {
		return nil, false
	}
	for _, other := range s.peerList() {
		r := other.region()
		if len(r.GetPeers()) == 0 {
			continue
		}
		if rangesOverlap(r.GetStartKey(), r.GetEndKey(), rm.GetStartKey(), rm.GetEndKey()) {
			return nil, false
		}
	}
	region := &metapb.Region{Id: rm.GetRegionId()}
	p, err := s.createPeer(region, rm.GetToPeer().GetId())
	if err != nil {
		s.log.Error("create peer", "region", rm.GetRegionId(), "err", err)
		return nil, false
	}
	s.log.Info("created uninitialized peer", "region", rm.GetRegionId(), "peer", p.id)
	return p, true
}

func rangesOverlap(s1, e1, s2, e2 []byte) bool {
	// [s1,e1) and [s2,e2) overlap iff s1 < e2 and s2 < e1 (empty end = +inf).
	lt := func(a, end []byte) bool { return len(end) == 0 || bytes.Compare(a, end) < 0 }
	return lt(s1, e2) && lt(s2, e1)
}

// onBecameLeader asks for an early region heartbeat so PD learns the new
// leader fast.
func (s *Store) onBecameLeader(p *peer) {
	select {
	case s.heartbeatNow <- p.regionID:
	default:
	}
}

// --- Request-side API ---

// PeerFor checks that this store can serve a request for the region: the
// region exists here, this store's peer leads it, and epoch (if not nil)
// has the region's version. It returns the region as of the check.
func (s *Store) PeerFor(regionID uint64, epoch *metapb.RegionEpoch) (*metapb.Region, error) {
	select {
	case <-s.fatalc:
		return nil, ErrStopped
	default:
	}
	p := s.getPeer(regionID)
	if p == nil || len(p.region().GetPeers()) == 0 {
		return nil, &RegionNotFoundError{RegionID: regionID}
	}
	region := p.region()
	if p.leaderID.Load() != p.id {
		return nil, p.notLeader()
	}
	if epoch != nil && epoch.GetVersion() != region.GetRegionEpoch().GetVersion() {
		return nil, s.epochNotMatch(region, fmt.Sprintf("request epoch version %d, region %d has %d", epoch.GetVersion(), regionID, region.GetRegionEpoch().GetVersion()))
	}
	return region, nil
}

func (s *Store) epochNotMatch(region *metapb.Region, msg string) error {
	regions := []*metapb.Region{proto.Clone(region).(*metapb.Region)}
	// After a split the sibling is often here too; handing it over saves
	// the client a PD round trip.
	for _, p := range s.peerList() {
		r := p.region()
		if r.GetId() != region.GetId() && len(r.GetPeers()) > 0 && len(region.GetEndKey()) > 0 && bytes.Equal(r.GetStartKey(), region.GetEndKey()) {
			regions = append(regions, proto.Clone(r).(*metapb.Region))
		}
	}
	return &EpochNotMatchError{Message: msg, Regions: regions}
}

// WaitLeaderReady waits until the region's leader here has applied an entry
// of its own term, so its applied state holds every committed write.
func (s *Store) WaitLeaderReady(ctx context.Context, regionID uint64) error {
	p := s.getPeer(regionID)
	if p == nil {
		return &RegionNotFoundError{RegionID: regionID}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProposalTimeout)
	defer cancel()
	for !p.leaderReady.Load() {
		if s.getPeer(regionID) != p {
			return &RegionNotFoundError{RegionID: regionID}
		}
		if p.leaderID.Load() != p.id {
			return p.notLeader()
		}
		ch := *p.readyCh.Load()
		t := time.NewTimer(s.cfg.TickInterval)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &ServerBusyError{Reason: "leader not ready: " + ctx.Err().Error()}
		case <-s.stopc:
			t.Stop()
			return ErrStopped
		}
		t.Stop()
	}
	return nil
}

// Propose replicates cmd through the region's raft group and waits until it
// applies. The command's header must carry the epoch it was computed
// against.
func (s *Store) Propose(ctx context.Context, regionID uint64, cmd *raftserverpb.RaftCmdRequest) ([]*metapb.Region, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProposalTimeout)
	defer cancel()
	prop := s.ProposeAsync(ctx, regionID, 0, cmd)
	select {
	case r := <-prop.C:
		if errors.Is(r.Err, ErrStaleCommand) {
			return nil, &UndeterminedError{Reason: "leadership changed before the command applied"}
		}
		return r.Regions, r.Err
	case <-ctx.Done():
		return nil, prop.Abandon(ctx.Err())
	}
}

// Result is the fate of a proposed command.
type Result struct {
	// Regions: for a split the two halves, for a conf change the new region.
	Regions []*metapb.Region
	// Err is nil when the command applied. ErrStaleCommand means the fate
	// is unknown (the command was proposed, and leadership changed or the
	// store stopped first); other errors mean it did not and will not
	// apply.
	Err error
}

// Proposal is a command handed to ProposeAsync.
type Proposal struct {
	// C receives the command's fate exactly once.
	C <-chan Result
	// state: proposalQueued until the raft loop takes the command
	// (proposalTaken) or its proposer withdraws it first
	// (proposalWithdrawn).
	state *atomic.Int32
}

const (
	proposalQueued int32 = iota
	proposalTaken
	proposalWithdrawn
)

// Abandon is for a proposer that stops waiting for C (its context ended
// with cause). If the raft loop has not taken the command yet, it never
// will: the command is not proposed, and Abandon returns a ServerBusyError.
// Otherwise the command may apply, and Abandon returns an
// UndeterminedError (also, conservatively, when the loop refused the
// command just as the proposer gave up). Either way C still receives a fate
// exactly once; unless the command was withdrawn, whatever protects it
// (latches) must be kept until then.
func (p *Proposal) Abandon(cause error) error {
	if p.state.CompareAndSwap(proposalQueued, proposalWithdrawn) || p.state.Load() == proposalWithdrawn {
		return &ServerBusyError{Reason: "request ended before its command was proposed: " + cause.Error()}
	}
	return &UndeterminedError{Reason: "command proposed but not applied in time: " + cause.Error()}
}

// Withdrawn reports whether the command was withdrawn before the raft loop
// took it, i.e. it was not proposed and never will be.
func (p *Proposal) Withdrawn() bool { return p.state.Load() == proposalWithdrawn }

// ProposeAsync proposes cmd and returns the Proposal whose channel receives
// the command's fate exactly once. A caller that stops waiting calls
// Abandon and must keep whatever protects the command (latches) until the
// fate arrives, unless the command was withdrawn. A ctx already done when
// the loop gets to the proposal means it is not proposed. expectTerm, if
// nonzero, refuses the proposal unless this peer still leads in that term,
// so a command computed under one leadership never commits under a later
// one.
func (s *Store) ProposeAsync(ctx context.Context, regionID, expectTerm uint64, cmd *raftserverpb.RaftCmdRequest) *Proposal {
	ch := make(chan Result, 1)
	state := &atomic.Int32{}
	done := func(r applyResult) { ch <- Result{Regions: r.regions, Err: r.err} }
	s.post(func() {
		if err := ctx.Err(); err != nil {
			state.CompareAndSwap(proposalQueued, proposalWithdrawn)
			done(applyResult{err: &ServerBusyError{Reason: "request ended before it was proposed: " + err.Error()}})
			return
		}
		if !state.CompareAndSwap(proposalQueued, proposalTaken) {
			done(applyResult{err: &ServerBusyError{Reason: "request ended before it was proposed"}})
			return
		}
		p := s.getPeer(regionID)
		if p == nil {
			done(applyResult{err: &RegionNotFoundError{RegionID: regionID}})
			return
		}
		if expectTerm != 0 && p.rn.BasicStatus().Term != expectTerm {
			done(applyResult{err: p.notLeader()})
			return
		}
		s.wake(p)
		p.propose(cmd, done)
	})
	// Tasks posted after the loop stopped never run: answer for them. A
	// command the loop took may still apply (through another leader): its
	// fate is then unknown, not "stopped".
	stopped := func() Result {
		if state.CompareAndSwap(proposalQueued, proposalWithdrawn) {
			return Result{Err: ErrStopped}
		}
		return Result{Err: ErrStaleCommand}
	}
	out := make(chan Result, 1)
	go func() {
		select {
		case r := <-ch:
			out <- r
		case <-s.stopc:
			select {
			case r := <-ch:
				out <- r
			default:
				out <- stopped()
			}
		case <-s.fatalc:
			out <- stopped()
		}
	}()
	return &Proposal{C: out, state: state}
}

// ReadIndex confirms this peer still leads the region and waits until its
// applied state covers everything committed when the read arrived:
// afterwards, reading the engine is linearizable.
func (s *Store) ReadIndex(ctx context.Context, regionID uint64) error {
	ch := make(chan error, 1)
	s.post(func() {
		p := s.getPeer(regionID)
		if p == nil {
			ch <- &RegionNotFoundError{RegionID: regionID}
			return
		}
		// A read does not wake a hibernated leader: its read index round
		// (heartbeats and their answers) needs no ticks.
		s.touch(p)
		p.newReads = append(p.newReads, &readRequest{done: func(err error) { ch <- err }})
	})
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProposalTimeout)
	defer cancel()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return &ServerBusyError{Reason: "read index not confirmed in time: " + ctx.Err().Error()}
	case <-s.stopc:
		return ErrStopped
	}
}

// Region returns the store's view of a region, or nil.
func (s *Store) Region(regionID uint64) *metapb.Region {
	p := s.getPeer(regionID)
	if p == nil {
		return nil
	}
	return p.region()
}

// RegionStatus is a snapshot of a peer's raft state for admin and tests.
type RegionStatus struct {
	Region                                      *metapb.Region
	Leader                                      *metapb.Peer
	PeerID                                      uint64
	Term, Applied, Commit, Truncated, LastIndex uint64
	// Hibernated: the peer does not tick (see hibernate.go).
	Hibernated bool
}

// Status reports a region peer's state, read on the raft loop.
func (s *Store) Status(ctx context.Context, regionID uint64) (RegionStatus, error) {
	ch := make(chan RegionStatus, 1)
	s.post(func() {
		p := s.getPeer(regionID)
		if p == nil {
			ch <- RegionStatus{}
			return
		}
		st := p.rn.BasicStatus()
		ch <- RegionStatus{
			Region: p.region(), Leader: p.leader(), PeerID: p.id, Term: st.Term,
			Applied: p.storage.appliedIndex(), Commit: st.Commit,
			Truncated: p.storage.truncatedIndex(), LastIndex: p.storage.lastIndex,
			Hibernated: p.hib.hibernated,
		}
	})
	select {
	case st := <-ch:
		if st.Region == nil {
			return st, &RegionNotFoundError{RegionID: regionID}
		}
		return st, nil
	case <-ctx.Done():
		return RegionStatus{}, ctx.Err()
	case <-s.stopc:
		return RegionStatus{}, ErrStopped
	}
}

// Regions returns the store's initialized regions, ordered by id.
func (s *Store) Regions() []*metapb.Region {
	var out []*metapb.Region
	for _, p := range s.peerList() {
		if r := p.region(); len(r.GetPeers()) > 0 {
			out = append(out, r)
		}
	}
	return out
}

// TransferLeader asks the region's leader here to hand leadership to peer.
func (s *Store) TransferLeader(ctx context.Context, regionID uint64, to *metapb.Peer) error {
	ch := make(chan error, 1)
	s.post(func() {
		p := s.getPeer(regionID)
		if p == nil {
			ch <- &RegionNotFoundError{RegionID: regionID}
			return
		}
		if !p.isLeader() {
			ch <- p.notLeader()
			return
		}
		if p.peerByID(to.GetId()) == nil {
			ch <- fmt.Errorf("raftstore: region %d has no peer %d", regionID, to.GetId())
			return
		}
		s.wake(p)
		p.rn.TransferLeader(to.GetId())
		ch <- nil
	})
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopc:
		return ErrStopped
	}
}

// ProposalTimeout bounds how long requests wait for raft.
func (s *Store) ProposalTimeout() time.Duration { return s.cfg.ProposalTimeout }

// LeaderTerm returns the raft term of the region's peer here (meaningful
// while it leads), or 0.
func (s *Store) LeaderTerm(regionID uint64) uint64 {
	if p := s.getPeer(regionID); p != nil {
		return p.term.Load()
	}
	return 0
}

// snapshotFits reports whether a snapshot's range leaves every other
// initialized region here alone. One that overlaps comes from before a
// split or merge this store has not caught up with; applying it would wipe
// a sibling's data. The leader retries later.
func (s *Store) snapshotFits(p *peer, snap *raftpb.Snapshot) bool {
	meta := &raftserverpb.SnapshotMeta{}
	if err := proto.Unmarshal(snap.Data, meta); err != nil || meta.GetRegion() == nil {
		return false
	}
	r := meta.GetRegion()
	for _, other := range s.peerList() {
		o := other.region()
		if other == p || len(o.GetPeers()) == 0 {
			continue
		}
		if rangesOverlap(o.GetStartKey(), o.GetEndKey(), r.GetStartKey(), r.GetEndKey()) {
			s.log.Info("dropping snapshot that overlaps another region", "region", p.regionID, "other", o.GetId())
			return false
		}
	}
	return true
}

// answerRemovedPeer tells a peer that is no longer a member of the region
// (it missed its own removal, e.g. while its store was down) that it is
// gone, so its store can destroy it instead of campaigning forever. It
// reports whether the message came from such a peer.
func (s *Store) answerRemovedPeer(p *peer, rm *raftserverpb.RaftMessage) bool {
	region := p.region()
	from := rm.GetFromPeer()
	if len(region.GetPeers()) == 0 || from.GetId() == 0 {
		return false
	}
	for _, m := range region.GetPeers() {
		if m.GetId() == from.GetId() {
			return false
		}
	}
	if c := rm.GetRegionEpoch().GetConfVer(); c == 0 || c >= region.GetRegionEpoch().GetConfVer() {
		// An empty new peer knows no membership yet; a sender with a newer
		// one may know more than we do.
		return false
	}
	s.trans.send(&raftserverpb.RaftMessage{
		RegionId: p.regionID, FromPeer: p.peerByID(p.id), ToPeer: from,
		RegionEpoch: region.GetRegionEpoch(), IsTombstone: true,
	})
	return true
}

// onTombstoneMessage destroys this store's peer that a region member says
// was removed, if the member's membership is newer.
func (s *Store) onTombstoneMessage(rm *raftserverpb.RaftMessage) {
	p := s.getPeer(rm.GetRegionId())
	if p == nil || p.id != rm.GetToPeer().GetId() {
		return
	}
	region := p.region()
	if rm.GetRegionEpoch().GetConfVer() <= region.GetRegionEpoch().GetConfVer() {
		return
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := putProto(b, keys.RegionStateKey(p.regionID), &raftserverpb.RegionLocalState{Region: region, State: raftserverpb.PeerState_TOMBSTONE}); err != nil {
		s.log.Error("tombstone peer", "region", p.regionID, "err", err)
		return
	}
	if err := p.destroy(b); err != nil {
		s.log.Error("destroy removed peer", "region", p.regionID, "err", err)
		return
	}
	if err := b.Commit(pebble.Sync); err != nil {
		s.log.Error("destroy removed peer", "region", p.regionID, "err", err)
		return
	}
	s.log.Info("destroyed a peer removed while it was away", "region", p.regionID, "peer", p.id)
}
