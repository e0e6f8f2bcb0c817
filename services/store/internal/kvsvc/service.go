package kvsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/latch"
	"github.com/nokv/nokv/services/store/internal/keys"
	"github.com/nokv/nokv/services/store/internal/mvcc"
	"github.com/nokv/nokv/services/store/internal/raftstore"
)

// TSO hands out timestamps; *pdclient.Client implements it.
type TSO interface {
	GetTS(ctx context.Context) (uint64, error)
}

// Service implements storepb.StoreServer over a raft store.
type Service struct {
	storepb.UnimplementedStoreServer
	store   *raftstore.Store
	tso     TSO
	latches *latch.Latches
	// guards order writes against range deletions, per region: a write
	// holds its region's guard shared from before it computes until its
	// fate is known, a range deletion holds it exclusively.
	guards   regionGuards
	cc       *concurrency
	now      func() time.Time
	stopping chan struct{}
	// snapSlots bounds snapshots received at once: each takes disk
	// bandwidth and space until its peer ingests it.
	snapSlots chan struct{}
	stopOnce  sync.Once
	gcRounds  atomic.Int64
	gcDeleted atomic.Int64
	// gcLocksResolved counts the locks this store resolved while it drove
	// GC.
	gcLocksResolved atomic.Int64
	// gcIdle remembers, per region, the last GC pass that found nothing
	// (see gcRegion); gcSkipped counts the passes it saved.
	gcIdleMu  sync.Mutex
	gcIdle    map[uint64]gcIdleMark
	gcSkipped atomic.Int64
}

// GCStats reports garbage collection rounds run and engine keys deleted.
func (s *Service) GCStats() (rounds, deleted int64) { return s.gcRounds.Load(), s.gcDeleted.Load() }

// GCLocksResolved reports the locks resolved while this store drove GC.
func (s *Service) GCLocksResolved() int64 { return s.gcLocksResolved.Load() }

// GCRegionsSkipped reports the region passes GC skipped because the region
// provably held nothing to collect (see gcRegion).
func (s *Service) GCRegionsSkipped() int64 { return s.gcSkipped.Load() }

// New returns the service for store.
func New(store *raftstore.Store, tso TSO) *Service {
	now := time.Now
	if k := store.Knobs().Now; k != nil {
		now = k
	}
	return &Service{
		store: store, tso: tso, latches: latch.New(), cc: newConcurrency(), now: now,
		stopping: make(chan struct{}), snapSlots: make(chan struct{}, 2),
		gcIdle: map[uint64]gcIdleMark{},
	}
}

// Shutdown ends the raft streams other stores hold open, which would
// otherwise keep a graceful server stop waiting forever.
func (s *Service) Shutdown() { s.stopOnce.Do(func() { close(s.stopping) }) }

// nowMs is the instant by which a read at version judges expiry: the
// reader's own (reqNow), or else the physical time of the read's TSO
// timestamp, so that every store agrees whatever its clock. Only a read
// without a timestamp falls back to this store's clock.
func (s *Service) nowMs(reqNow int64, version uint64) int64 {
	switch {
	case reqNow != 0:
		return reqNow
	case version != 0 && version != math.MaxUint64:
		return int64(version >> mvcc.PhysicalShift)
	}
	return s.now().UnixMilli()
}

// route checks that the request may be served here and that every key is
// in the region; it returns the region.
func (s *Service) route(rc *kvrpcpb.Context, ks ...[]byte) (*metapb.Region, error) {
	if rc == nil {
		return nil, fmt.Errorf("%w: context: missing", errBadRequest)
	}
	if sid := rc.GetPeer().GetStoreId(); sid != 0 && sid != s.store.StoreID() {
		return nil, &raftstore.StoreNotMatchError{Requested: sid, Actual: s.store.StoreID()}
	}
	region, err := s.store.PeerFor(rc.GetRegionId(), rc.GetRegionEpoch())
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		if !keys.InRange(k, region.GetStartKey(), region.GetEndKey()) {
			return nil, &raftstore.KeyNotInRegionError{Key: k, Region: region}
		}
	}
	return region, nil
}

// read runs fn against the engine once a read at ts may be served
// linearizably: leader confirmed, applied state caught up, and no one-phase
// commit in flight that could land at or below ts on the keys (nil keys: the
// whole region).
func (s *Service) read(ctx context.Context, rc *kvrpcpb.Context, ts uint64, ks [][]byte, fn func(r pebble.Reader, region *metapb.Region) error) error {
	if _, err := s.route(rc, ks...); err != nil {
		return err
	}
	if err := waitAll(ctx, s.cc.observeRead(rc.GetRegionId(), ts, ks)); err != nil {
		return err
	}
	if err := s.store.ReadIndex(ctx, rc.GetRegionId()); err != nil {
		return err
	}
	// The region may have split while the read waited.
	region, err := s.route(rc, ks...)
	if err != nil {
		return err
	}
	return fn(s.store.DB(), region)
}

// snapshotRead is read for a snapshot read at ts (get, batch get, scan),
// refused with a DataNotAvailable key error when ts is below the GC safe
// point this store knows: GC may have collected versions the read would
// see. The safe point is checked once the read may be served and again
// after fn read the engine, since a GC command may apply meanwhile (it
// raises the store's safe point before its deletions become visible), so a
// read that returns nil saw nothing collected above ts. On a key error, the
// caller answers with it alone, whatever fn set.
func (s *Service) snapshotRead(ctx context.Context, rc *kvrpcpb.Context, ts uint64, ks [][]byte, fn func(r pebble.Reader, region *metapb.Region) error) (*kvrpcpb.KeyError, error) {
	var kerr *kvrpcpb.KeyError
	check := func() bool {
		if sp := s.store.GCSafePoint(); ts < sp {
			kerr = &kvrpcpb.KeyError{DataNotAvailable: &kvrpcpb.DataNotAvailable{ReadTs: ts, SafePoint: sp}}
			return false
		}
		return true
	}
	err := s.read(ctx, rc, ts, ks, func(r pebble.Reader, region *metapb.Region) error {
		if !check() {
			return nil
		}
		if err := fn(r, region); err != nil {
			return err
		}
		check()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return kerr, nil
}

// write runs the write pipeline (see the package documentation): compute
// returns the modifications to replicate, if any.
func (s *Service) write(ctx context.Context, rc *kvrpcpb.Context, ks [][]byte, compute func(r pebble.Reader, region *metapb.Region, term uint64, onDone *[]func()) ([]*raftserverpb.Modify, error)) error {
	return s.writeCmd(ctx, rc, ks, false, func(r pebble.Reader, region *metapb.Region, term uint64, onDone *[]func()) (*raftserverpb.RaftCmdRequest, error) {
		mods, err := compute(r, region, term, onDone)
		if err != nil || len(mods) == 0 {
			return nil, err
		}
		return &raftserverpb.RaftCmdRequest{Writes: mods}, nil
	})
}

// writeCmd runs the write pipeline for a command compute builds (nil: none
// to propose). The command is computed under the latches of ks and the
// region's guard held shared or, with exclusive, under the guard alone held
// exclusively: then no other write of the region is between its compute and
// its apply, so none computed against the state before this command applies
// after it.
//
// Whatever protects the command (the guard, the latches, and hooks compute
// adds to onDone) is released only once the command's fate is known: if the
// caller gives up earlier, a goroutine keeps them until then. Releasing them
// at the caller's timeout would let a conflicting request compute against a
// state the still-pending command is about to change.
//
// The command is computed and proposed within one leader term, in which the
// leader was ready; a proposal in a later term is refused.
//
// Failures are reported so that a client can tell "not done" from
// "unknown": ServerBusyError (and the other region errors) only when the
// command was not proposed or was refused at apply; an UndeterminedError
// once it was handed to raft and its result is not known (the request
// timed out waiting, or leadership changed before it applied).
func (s *Service) writeCmd(ctx context.Context, rc *kvrpcpb.Context, ks [][]byte, exclusive bool, compute func(r pebble.Reader, region *metapb.Region, term uint64, onDone *[]func()) (*raftserverpb.RaftCmdRequest, error)) error {
	if _, err := s.route(rc, ks...); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.store.ProposalTimeout())
	defer cancel()
	regionID := rc.GetRegionId()
	guard := s.guards.get(regionID)
	var onDone []func()
	if exclusive {
		guard.Lock()
		onDone = append(onDone, guard.Unlock)
	} else {
		// The guard before the latches: a write waiting for a range
		// deletion holds no latch another write could wait for.
		guard.RLock()
		onDone = append(onDone, guard.RUnlock)
		slots := s.latches.Acquire(ks, nil)
		onDone = append(onDone, func() { s.latches.Release(slots) })
	}
	handedOff := false
	defer func() {
		if !handedOff {
			runAll(onDone)
		}
	}()
	term := s.store.LeaderTerm(regionID)
	if err := s.store.WaitLeaderReady(ctx, regionID); err != nil {
		return err
	}
	if s.store.LeaderTerm(regionID) != term {
		return &raftstore.ServerBusyError{Reason: "leadership changed while the request waited"}
	}
	region, err := s.route(rc, ks...)
	if err != nil {
		return err
	}
	cmd, err := compute(s.store.DB(), region, term, &onDone)
	if err != nil || cmd == nil {
		return err
	}
	cmd.Header = &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch()}
	prop := s.store.ProposeAsync(ctx, regionID, term, cmd)
	select {
	case r := <-prop.C:
		if errors.Is(r.Err, raftstore.ErrStaleCommand) {
			// Proposed, then leadership changed (or the store stopped)
			// before it applied: a later leader may still commit it.
			return &raftstore.UndeterminedError{Reason: "leadership changed before the command applied"}
		}
		return r.Err
	case <-ctx.Done():
		// Not proposed yet: it never will be (busy). Proposed: its fate
		// is unknown (undetermined), never reported as a failure.
		err := prop.Abandon(ctx.Err())
		if prop.Withdrawn() {
			return err
		}
		handedOff = true
		hooks := onDone
		go func() {
			<-prop.C
			runAll(hooks)
		}()
		return err
	}
}

// regionGuards hands out one guard per region id.
type regionGuards struct {
	mu sync.Mutex
	m  map[uint64]*sync.RWMutex
}

func (g *regionGuards) get(regionID uint64) *sync.RWMutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[uint64]*sync.RWMutex{}
	}
	l, ok := g.m[regionID]
	if !ok {
		l = &sync.RWMutex{}
		g.m[regionID] = l
	}
	return l
}

func runAll(fns []func()) {
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

// outcome sorts err into a region error for the response or a gRPC error.
func outcome(err error, setRegionError func(*kvrpcpb.RegionError)) error {
	if err == nil {
		return nil
	}
	if re, ok := regionError(err); ok {
		setRegionError(re)
		return nil
	}
	return grpcError(err)
}

// KvGet reads one key at a timestamp.
func (s *Service) KvGet(ctx context.Context, req *kvrpcpb.GetRequest) (*kvrpcpb.GetResponse, error) {
	resp := &kvrpcpb.GetResponse{}
	kerr, err := s.snapshotRead(ctx, req.GetContext(), req.GetVersion(), [][]byte{req.GetKey()}, func(r pebble.Reader, _ *metapb.Region) error {
		if req.GetHeadOnly() {
			// The same read, answered with the value's length and first
			// bytes only.
			h, found, kerr, err := mvcc.GetHead(r, req.GetKey(), req.GetVersion(), s.nowMs(req.GetNowMs(), req.GetVersion()), int(req.GetValuePrefixLen()))
			if err != nil {
				return err
			}
			resp.Error, resp.Value, resp.ValueLen, resp.ExpiresAt, resp.NotFound = kerr, h.Prefix, uint64(h.Len), h.ExpiresAt, !found && kerr == nil
			return nil
		}
		v, exp, found, kerr, err := mvcc.Get(r, req.GetKey(), req.GetVersion(), s.nowMs(req.GetNowMs(), req.GetVersion()))
		if err != nil {
			return err
		}
		resp.Error, resp.Value, resp.ExpiresAt, resp.NotFound = kerr, v, exp, !found && kerr == nil
		return nil
	})
	if kerr != nil {
		resp = &kvrpcpb.GetResponse{Error: kerr}
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvBatchGet reads several keys of one region at a timestamp.
func (s *Service) KvBatchGet(ctx context.Context, req *kvrpcpb.BatchGetRequest) (*kvrpcpb.BatchGetResponse, error) {
	resp := &kvrpcpb.BatchGetResponse{}
	kerr, err := s.snapshotRead(ctx, req.GetContext(), req.GetVersion(), req.GetKeys(), func(r pebble.Reader, _ *metapb.Region) error {
		// Values are large at times: the response stops at its budget and
		// the client asks for the rest. A head read counts what it sends.
		pairs, next, err := mvcc.BatchGetPage(r, req.GetKeys(), req.GetVersion(), s.nowMs(req.GetNowMs(), req.GetVersion()), mvcc.ReadOptions{
			MaxBytes: limits.ResponsePageBytes, HeadOnly: req.GetHeadOnly(), PrefixLen: int(req.GetValuePrefixLen()),
		})
		resp.Pairs, resp.NextIndex = pairs, uint32(next)
		return err
	})
	if kerr != nil {
		resp = &kvrpcpb.BatchGetResponse{Error: kerr}
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvScan reads a key range of one region at a timestamp.
func (s *Service) KvScan(ctx context.Context, req *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
	resp := &kvrpcpb.ScanResponse{}
	kerr, err := s.snapshotRead(ctx, req.GetContext(), req.GetVersion(), nil, func(r pebble.Reader, region *metapb.Region) error {
		start, end := clampRange(req.GetStartKey(), req.GetEndKey(), region)
		if !keys.InRange(start, region.GetStartKey(), region.GetEndKey()) {
			return &raftstore.KeyNotInRegionError{Key: req.GetStartKey(), Region: region}
		}
		res, err := mvcc.ScanWith(r, start, end, req.GetVersion(), s.nowMs(req.GetNowMs(), req.GetVersion()), mvcc.ScanOptions{
			Limit: int(req.GetLimit()), MaxVisit: int(req.GetVisitLimit()), KeyOnly: req.GetKeyOnly(),
			// One response stays far below the gRPC message limit
			// whatever the values' sizes.
			MaxBytes: limits.ResponsePageBytes,
		})
		resp.Pairs, resp.ResumeKey, resp.Visited = res.Pairs, res.Resume, uint32(res.Visited)
		return err
	})
	if kerr != nil {
		resp = &kvrpcpb.ScanResponse{Error: kerr}
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// clampRange limits [start, end) to the region.
func clampRange(start, end []byte, region *metapb.Region) ([]byte, []byte) {
	if string(start) < string(region.GetStartKey()) {
		start = region.GetStartKey()
	}
	if re := region.GetEndKey(); len(re) > 0 && (len(end) == 0 || string(end) > string(re)) {
		end = re
	}
	return start, end
}

func mutationKeys(ms []*kvrpcpb.Mutation) [][]byte {
	ks := make([][]byte, len(ms))
	for i, m := range ms {
		ks[i] = m.GetKey()
	}
	return ks
}

// KvPrewrite locks the mutations of a transaction, or commits them at once
// when try_one_pc is set and the transaction fits this region.
func (s *Service) KvPrewrite(ctx context.Context, req *kvrpcpb.PrewriteRequest) (*kvrpcpb.PrewriteResponse, error) {
	resp := &kvrpcpb.PrewriteResponse{}
	// A transaction at or below the GC safe point could find its rollback
	// records collected: it must not write. But this may be the retry of a
	// one-phase commit that applied (its leader stalled past the GC life
	// time): say so if its commit is still on record, and otherwise refuse
	// with an error that does not claim nothing was written.
	if sp := s.store.GCSafePoint(); req.GetStartVersion() <= sp {
		if req.GetTryOnePc() && len(req.GetMutations()) > 0 {
			commitTS, ok, err := s.committedAt(ctx, req.GetContext(), req.GetMutations()[0].GetKey(), req.GetStartVersion())
			if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil || resp.RegionError != nil {
				return resp, err
			}
			if ok {
				resp.OnePcCommitTs = commitTS
				return resp, nil
			}
		}
		resp.Errors = []*kvrpcpb.KeyError{belowSafePoint("start_version", req.GetStartVersion(), sp)}
		return resp, nil
	}
	ks := mutationKeys(req.GetMutations())
	regionID := req.GetContext().GetRegionId()
	var commitTS uint64
	err := s.write(ctx, req.GetContext(), ks, func(r pebble.Reader, _ *metapb.Region, term uint64, onDone *[]func()) ([]*raftserverpb.Modify, error) {
		if req.GetTryOnePc() {
			if err := s.sync1PC(ctx, regionID, term); err != nil {
				return nil, err
			}
			var end func()
			commitTS, end = s.cc.begin1PC(regionID, ks, req.GetStartVersion(), req.GetOnePcCommitTs())
			// Readers of these keys wait until the commit's fate is known.
			*onDone = append(*onDone, end)
		}
		mods, kerrs, err := mvcc.Prewrite(r, req, commitTS)
		if err != nil {
			return nil, err
		}
		resp.Errors = kerrs
		if len(kerrs) == 0 && commitTS != 0 {
			resp.OnePcCommitTs = commitTS
		}
		return mods, nil
	})
	if err != nil {
		resp.OnePcCommitTs = 0
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// belowSafePoint refuses a prewrite or commit whose timestamp is at or
// below the GC safe point. It is an abort (a fresh request of a transaction
// that outlived the GC life time wrote nothing) that also carries
// data_not_available: a retry of a request whose first attempt may have
// applied cannot learn from it what happened, so the client must not take
// it as "nothing was written" then (kvclient: undetermined).
func belowSafePoint(what string, ts, safePoint uint64) *kvrpcpb.KeyError {
	return &kvrpcpb.KeyError{
		Abort:            fmt.Sprintf("%s %d is at or below the GC safe point %d: the transaction outlived gc_life_time", what, ts, safePoint),
		DataNotAvailable: &kvrpcpb.DataNotAvailable{ReadTs: ts, SafePoint: safePoint},
	}
}

// committedAt reads, at the region's leader, whether the transaction
// started at startTS committed key.
func (s *Service) committedAt(ctx context.Context, rc *kvrpcpb.Context, key []byte, startTS uint64) (commitTS uint64, ok bool, err error) {
	err = s.read(ctx, rc, startTS, [][]byte{key}, func(r pebble.Reader, _ *metapb.Region) error {
		var rerr error
		commitTS, ok, rerr = mvcc.CommittedAt(r, key, startTS)
		return rerr
	})
	return commitTS, ok, err
}

// sync1PC raises maxTS from the TSO the first time this store's leader of
// the region in its current term takes a one-phase commit.
func (s *Service) sync1PC(ctx context.Context, regionID, term uint64) error {
	if !s.cc.needsSync(regionID, term) {
		return nil
	}
	ts, err := s.tso.GetTS(ctx)
	if err != nil {
		return &raftstore.ServerBusyError{Reason: "fetch a timestamp for one-phase commit: " + err.Error()}
	}
	s.cc.sync(regionID, term, ts)
	return nil
}

// KvCommit commits the locks of a transaction.
func (s *Service) KvCommit(ctx context.Context, req *kvrpcpb.CommitRequest) (*kvrpcpb.CommitResponse, error) {
	resp := &kvrpcpb.CommitResponse{}
	if sp := s.store.GCSafePoint(); req.GetCommitVersion() <= sp {
		// As for a prewrite: a retry of a commit that applied is told so
		// while the record lasts.
		if len(req.GetKeys()) > 0 {
			commitTS, ok, err := s.committedAt(ctx, req.GetContext(), req.GetKeys()[0], req.GetStartVersion())
			if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil || resp.RegionError != nil {
				return resp, err
			}
			if ok && commitTS == req.GetCommitVersion() {
				resp.CommitVersion = commitTS
				return resp, nil
			}
		}
		resp.Error = belowSafePoint("commit_version", req.GetCommitVersion(), sp)
		return resp, nil
	}
	err := s.write(ctx, req.GetContext(), req.GetKeys(), func(r pebble.Reader, _ *metapb.Region, _ uint64, _ *[]func()) ([]*raftserverpb.Modify, error) {
		mods, kerr, err := mvcc.Commit(r, req.GetStartVersion(), req.GetKeys(), req.GetCommitVersion())
		resp.Error = kerr
		if kerr == nil {
			resp.CommitVersion = req.GetCommitVersion()
		}
		return mods, err
	})
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	if resp.RegionError != nil {
		resp.CommitVersion = 0
	}
	return resp, nil
}

// KvBatchRollback rolls back the locks of a transaction.
func (s *Service) KvBatchRollback(ctx context.Context, req *kvrpcpb.BatchRollbackRequest) (*kvrpcpb.BatchRollbackResponse, error) {
	resp := &kvrpcpb.BatchRollbackResponse{}
	err := s.write(ctx, req.GetContext(), req.GetKeys(), func(r pebble.Reader, _ *metapb.Region, _ uint64, _ *[]func()) ([]*raftserverpb.Modify, error) {
		mods, kerr, err := mvcc.BatchRollback(r, req.GetStartVersion(), req.GetKeys())
		resp.Error = kerr
		return mods, err
	})
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvCheckTxnStatus decides a transaction's fate from its primary lock.
func (s *Service) KvCheckTxnStatus(ctx context.Context, req *kvrpcpb.CheckTxnStatusRequest) (*kvrpcpb.CheckTxnStatusResponse, error) {
	var st mvcc.TxnStatus
	err := s.write(ctx, req.GetContext(), [][]byte{req.GetPrimaryKey()}, func(r pebble.Reader, _ *metapb.Region, _ uint64, _ *[]func()) ([]*raftserverpb.Modify, error) {
		var err error
		st, err = mvcc.CheckTxnStatus(r, req.GetPrimaryKey(), req.GetLockTs(), req.GetCurrentTs(), req.GetRollbackIfNotExist())
		return st.Modifies, err
	})
	resp := st.Response()
	if err != nil {
		resp = &kvrpcpb.CheckTxnStatusResponse{}
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvResolveLock commits or rolls back a transaction's locks in the region.
func (s *Service) KvResolveLock(ctx context.Context, req *kvrpcpb.ResolveLockRequest) (*kvrpcpb.ResolveLockResponse, error) {
	resp := &kvrpcpb.ResolveLockResponse{}
	err := s.resolveLock(ctx, req, resp)
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

const resolveBatch = 256

// keyWriteCost bounds what one key adds to a raft command that commits or
// rolls back its lock: a lock deletion, a value deletion and a write record,
// each under the key encoded (9/8 of its length and a timestamp), plus a
// short value inline.
func keyWriteCost(k []byte) int { return 3*(len(k)+len(k)/8+32) + 384 }

// chunkKeys cuts ks into runs whose commands stay near maxBytes (a key
// larger than that alone).
func chunkKeys(ks [][]byte, maxBytes int) [][][]byte {
	var out [][][]byte
	start, size := 0, 0
	for i, k := range ks {
		c := keyWriteCost(k)
		if i > start && size+c > maxBytes {
			out = append(out, ks[start:i])
			start, size = i, 0
		}
		size += c
	}
	if start < len(ks) {
		out = append(out, ks[start:])
	}
	return out
}

func (s *Service) resolveLock(ctx context.Context, req *kvrpcpb.ResolveLockRequest, resp *kvrpcpb.ResolveLockResponse) error {
	resolve := func(all [][]byte) error {
		// Resolving is per key, so a long list may take several commands.
		for _, ks := range chunkKeys(all, limits.WriteBatchBytes) {
			err := s.write(ctx, req.GetContext(), ks, func(r pebble.Reader, _ *metapb.Region, _ uint64, _ *[]func()) ([]*raftserverpb.Modify, error) {
				mods, _, kerr, err := mvcc.ResolveLock(r, req.GetStartVersion(), req.GetCommitVersion(), ks, nil, nil, 0)
				resp.Error = kerr
				return mods, err
			})
			if err != nil || resp.Error != nil {
				return err
			}
		}
		return nil
	}
	if len(req.GetKeys()) > 0 {
		return resolve(req.GetKeys())
	}
	// Find the transaction's locks without latches, then resolve them by
	// key under latches, a batch at a time.
	region, err := s.route(req.GetContext())
	if err != nil {
		return err
	}
	start := region.GetStartKey()
	for {
		mods, next, kerr, err := mvcc.ResolveLock(s.store.DB(), req.GetStartVersion(), req.GetCommitVersion(), nil, start, region.GetEndKey(), resolveBatch)
		if err != nil || kerr != nil {
			resp.Error = kerr
			return err
		}
		ks := lockedKeys(mods)
		if len(ks) > 0 {
			if err := resolve(ks); err != nil || resp.Error != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// lockedKeys returns the raw keys whose locks mods delete.
func lockedKeys(mods []*raftserverpb.Modify) [][]byte {
	var out [][]byte
	for _, m := range mods {
		if m.GetOp() != raftserverpb.ModifyOp_MODIFY_DELETE || len(m.GetKey()) == 0 || m.GetKey()[0] != keys.CFLock {
			continue
		}
		if k, err := keys.DecodeLockKey(m.GetKey()); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// KvCleanup rolls back one key's expired lock.
func (s *Service) KvCleanup(ctx context.Context, req *kvrpcpb.CleanupRequest) (*kvrpcpb.CleanupResponse, error) {
	resp := &kvrpcpb.CleanupResponse{}
	err := s.write(ctx, req.GetContext(), [][]byte{req.GetKey()}, func(r pebble.Reader, _ *metapb.Region, _ uint64, _ *[]func()) ([]*raftserverpb.Modify, error) {
		mods, commitTS, kerr, err := mvcc.Cleanup(r, req.GetKey(), req.GetStartVersion(), req.GetCurrentTs())
		resp.Error, resp.CommitVersion = kerr, commitTS
		return mods, err
	})
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvTxnHeartBeat raises the TTL of a running transaction's primary lock
// (see mvcc.TxnHeartBeat). It is a write like any other: computed under the
// primary's latch, so it orders against the commit, rollback or status
// check of the same lock, and replicated through raft, so a new leader
// knows the TTL the old one granted.
func (s *Service) KvTxnHeartBeat(ctx context.Context, req *kvrpcpb.TxnHeartBeatRequest) (*kvrpcpb.TxnHeartBeatResponse, error) {
	resp := &kvrpcpb.TxnHeartBeatResponse{}
	err := s.write(ctx, req.GetContext(), [][]byte{req.GetPrimaryLock()}, func(r pebble.Reader, _ *metapb.Region, _ uint64, _ *[]func()) ([]*raftserverpb.Modify, error) {
		mods, ttl, kerr, err := mvcc.TxnHeartBeat(r, req.GetPrimaryLock(), req.GetStartVersion(), req.GetAdviseLockTtl())
		resp.Error, resp.LockTtl = kerr, ttl
		return mods, err
	})
	if err != nil {
		resp = &kvrpcpb.TxnHeartBeatResponse{}
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvScanLock lists locks in the region older than max_version.
func (s *Service) KvScanLock(ctx context.Context, req *kvrpcpb.ScanLockRequest) (*kvrpcpb.ScanLockResponse, error) {
	resp := &kvrpcpb.ScanLockResponse{}
	err := s.read(ctx, req.GetContext(), 0, nil, func(r pebble.Reader, region *metapb.Region) error {
		start, end := clampRange(req.GetStartKey(), nil, region)
		limit := int(req.GetLimit())
		if limit == 0 {
			limit = 1 << 20
		}
		locks, err := mvcc.ScanLock(r, req.GetMaxVersion(), start, end, limit)
		resp.Locks = locks
		return err
	})
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// KvDeleteRange removes a key range of one region, every version, lock and
// value, in one raft command. It takes the region's guard exclusively, so
// every write computed before it applies before it, and every write after
// it is computed against the emptied range: a commit never lands on a value
// the deletion removed.
func (s *Service) KvDeleteRange(ctx context.Context, req *kvrpcpb.DeleteRangeRequest) (*kvrpcpb.DeleteRangeResponse, error) {
	resp := &kvrpcpb.DeleteRangeResponse{}
	start, end := req.GetStartKey(), req.GetEndKey()
	err := s.writeCmd(ctx, req.GetContext(), [][]byte{start}, true, func(_ pebble.Reader, region *metapb.Region, _ uint64, _ *[]func()) (*raftserverpb.RaftCmdRequest, error) {
		if re := region.GetEndKey(); len(re) > 0 && (len(end) == 0 || string(end) > string(re)) {
			return nil, &raftstore.KeyNotInRegionError{Key: end, Region: region}
		}
		if len(end) > 0 && string(start) >= string(end) {
			return nil, nil
		}
		return &raftserverpb.RaftCmdRequest{DeleteRange: &raftserverpb.DeleteRange{StartKey: start, EndKey: end}}, nil
	})
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// Raft receives a stream of raft message batches from another store.
func (s *Service) Raft(stream storepb.Store_RaftServer) error {
	errc := make(chan error, 1)
	go func() {
		for {
			batch, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			s.store.HandleRaftBatch(batch)
		}
	}()
	select {
	case err := <-errc:
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&raftserverpb.Done{})
		}
		return err
	case <-s.stopping:
		// Returning cancels the stream, which ends the receiver.
		return grpcError(raftstore.ErrStopped)
	}
}

// Snapshot receives one region snapshot and hands it to its peer.
func (s *Service) Snapshot(stream storepb.Store_SnapshotServer) error {
	select {
	case s.snapSlots <- struct{}{}:
		defer func() { <-s.snapSlots }()
	default:
		// The sender reports the snapshot failed and raft tries again later.
		return status.Error(codes.ResourceExhausted, "kvsvc: too many snapshots being received; retry later")
	}
	if err := s.store.ReceiveSnapshot(stream.Recv); err != nil {
		return grpcError(err)
	}
	return stream.SendAndClose(&raftserverpb.Done{})
}

// TransferLeader moves a region's leadership (admin).
func (s *Service) TransferLeader(ctx context.Context, req *raftserverpb.TransferLeaderRequest) (*raftserverpb.TransferLeaderResponse, error) {
	resp := &raftserverpb.TransferLeaderResponse{}
	err := s.store.TransferLeader(ctx, req.GetRegionId(), req.GetPeer())
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// ChangePeer changes a region's membership (admin).
func (s *Service) ChangePeer(ctx context.Context, req *raftserverpb.ChangePeerAdminRequest) (*raftserverpb.ChangePeerAdminResponse, error) {
	resp := &raftserverpb.ChangePeerAdminResponse{}
	var (
		region *metapb.Region
		err    error
	)
	if len(req.GetChanges()) > 0 {
		region, err = s.store.ChangePeerV2(ctx, req.GetRegionId(), req.GetChanges())
	} else {
		region, err = s.store.ChangePeer(ctx, req.GetRegionId(), req.GetChangeType(), req.GetPeer())
	}
	resp.Region = region
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// SplitRegion splits a region (admin).
func (s *Service) SplitRegion(ctx context.Context, req *raftserverpb.SplitRegionRequest) (*raftserverpb.SplitRegionResponse, error) {
	resp := &raftserverpb.SplitRegionResponse{}
	regions, err := s.store.SplitRegion(ctx, req.GetRegionId(), req.GetSplitKey())
	if len(regions) == 2 {
		resp.Left, resp.Right = regions[0], regions[1]
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}

// RegionInfo reports a region peer's raft state (admin, tests).
func (s *Service) RegionInfo(ctx context.Context, req *raftserverpb.RegionInfoRequest) (*raftserverpb.RegionInfoResponse, error) {
	resp := &raftserverpb.RegionInfoResponse{}
	st, err := s.store.Status(ctx, req.GetRegionId())
	if err == nil {
		resp.Region, resp.Leader, resp.Term = st.Region, st.Leader, st.Term
		resp.AppliedIndex, resp.CommitIndex, resp.TruncatedIndex = st.Applied, st.Commit, st.Truncated
		resp.Hibernated = st.Hibernated
	}
	if err := outcome(err, func(re *kvrpcpb.RegionError) { resp.RegionError = re }); err != nil {
		return nil, err
	}
	return resp, nil
}
