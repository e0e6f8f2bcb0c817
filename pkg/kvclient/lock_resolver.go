package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/storepb"
)

// physicalShift is the number of logical bits below the physical
// milliseconds in a TSO timestamp.
const physicalShift = 18

// PhysicalMs returns the physical part of a TSO timestamp: Unix
// milliseconds on PD's clock.
func PhysicalMs(ts uint64) int64 { return int64(ts >> physicalShift) }

// lockLeft is how long a lock with ttl (milliseconds after its start
// timestamp's physical time) still lives at currentTS; <= 0 once expired.
// A zero TTL is always expired, as on the store.
func lockLeft(lockTS, ttl, currentTS uint64) time.Duration {
	if ttl == 0 {
		return 0
	}
	deadline := PhysicalMs(lockTS) + int64(min(ttl, 1<<40))
	return time.Duration(deadline-PhysicalMs(currentTS)) * time.Millisecond
}

// resolvedCacheCap bounds the remembered transaction outcomes.
const resolvedCacheCap = 8192

// lockResolver settles locks left by other transactions, as TiKV's
// LockResolver does: it asks the transaction's primary key for its fate and
// then commits or rolls back the locks met. It remembers decided fates for
// Options.ResolvedCacheTTL (they never change, so the cache only saves
// round trips).
type lockResolver struct {
	c *Client

	mu       sync.Mutex
	resolved map[uint64]resolvedTxn // by start_ts
	order    []uint64               // insertion order, for eviction
}

type resolvedTxn struct {
	commitTS uint64 // 0: rolled back
	at       time.Time
}

func newLockResolver(c *Client) *lockResolver {
	return &lockResolver{c: c, resolved: make(map[uint64]resolvedTxn)}
}

func (r *lockResolver) lookup(startTS uint64) (commitTS uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.resolved[startTS]
	if !ok || time.Since(e.at) > r.c.opts.ResolvedCacheTTL {
		return 0, false
	}
	return e.commitTS, true
}

func (r *lockResolver) remember(startTS, commitTS uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.resolved[startTS]; !ok {
		r.order = append(r.order, startTS)
	}
	r.resolved[startTS] = resolvedTxn{commitTS: commitTS, at: time.Now()}
	if len(r.order) > resolvedCacheCap {
		drop := r.order[:len(r.order)-resolvedCacheCap]
		for _, ts := range drop {
			delete(r.resolved, ts)
		}
		r.order = append(r.order[:0], r.order[len(drop):]...)
	}
}

// txnFate is what CheckTxnStatus said about a transaction.
type txnFate struct {
	decided  bool
	commitTS uint64        // when decided: 0 means rolled back
	left     time.Duration // when not decided: how long its lock still lives
}

// resolve settles locks of other transactions. For each transaction it
// learns the fate from the primary (or the cache) and then commits or
// rolls back the given locks in their regions. It returns how long the
// first of the still-live transactions keeps its lock (0: none is live);
// the caller waits and tries again.
func (r *lockResolver) resolve(ctx context.Context, bo *backoffer, locks []*kvrpcpb.LockInfo) (time.Duration, error) {
	var (
		currentTS uint64
		minLeft   time.Duration
		byTxn     = map[uint64][]*kvrpcpb.LockInfo{}
		order     []uint64
	)
	for _, l := range locks {
		ts := l.GetLockVersion()
		if _, ok := byTxn[ts]; !ok {
			order = append(order, ts)
		}
		byTxn[ts] = append(byTxn[ts], l)
	}
	for _, ts := range order {
		txnLocks := byTxn[ts]
		commitTS, decided := r.lookup(ts)
		if !decided {
			if currentTS == 0 {
				var err error
				if currentTS, err = r.c.getTS(ctx, bo); err != nil {
					return 0, err
				}
			}
			fate, err := r.checkTxnStatus(ctx, bo, txnLocks[0], currentTS, false)
			if err != nil {
				return 0, err
			}
			if !fate.decided {
				if minLeft == 0 || fate.left < minLeft {
					minLeft = fate.left
				}
				continue
			}
			commitTS = fate.commitTS
			r.remember(ts, commitTS)
		}
		keys := make([][]byte, len(txnLocks))
		for i, l := range txnLocks {
			keys[i] = l.GetKey()
		}
		if err := r.resolveKeys(ctx, bo, ts, commitTS, keys); err != nil {
			return 0, err
		}
		r.c.stats.locksResolved.Add(uint64(len(keys)))
	}
	return minLeft, nil
}

// checkTxnStatus asks the primary of lock's transaction for its fate. Once
// the lock's TTL has run out by currentTS it asks the store to roll the
// transaction back if its primary is not locked and has no record (the
// primary's prewrite may still be on its way; the rollback record makes it
// fail). Before that, a missing primary means "still alive". With force
// (GC), a transaction that has not committed is rolled back whatever its
// TTL: the store is sent current_ts = MaxUint64 and rollback_if_not_exist,
// as TiKV's GC worker does, and an answer other than committed or rolled
// back is an error.
func (r *lockResolver) checkTxnStatus(ctx context.Context, bo *backoffer, lock *kvrpcpb.LockInfo, currentTS uint64, force bool) (txnFate, error) {
	primary, lockTS := lock.GetPrimaryLock(), lock.GetLockVersion()
	if force {
		currentTS = math.MaxUint64
	}
	left := lockLeft(lockTS, lock.GetLockTtl(), currentTS)
	req := &kvrpcpb.CheckTxnStatusRequest{
		PrimaryKey: primary, LockTs: lockTS, CurrentTs: currentTS, RollbackIfNotExist: force || left <= 0,
	}
	for {
		loc, err := r.c.locate(ctx, bo, primary)
		if err != nil {
			return txnFate{}, err
		}
		resp, err := send(ctx, r.c, bo, loc, "CheckTxnStatus",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.CheckTxnStatusResponse, error) {
				req.Context = rc
				return sc.KvCheckTxnStatus(ctx, req)
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return txnFate{}, err
		}
		if ke := resp.GetError(); ke != nil {
			if ke.GetTxnNotFound() != nil && !req.GetRollbackIfNotExist() {
				// The primary is not prewritten yet: the transaction is alive
				// until the lock we met expires.
				return txnFate{left: max(left, time.Millisecond)}, nil
			}
			return txnFate{}, fmt.Errorf("kvclient: check status of transaction %d at primary %q: %w", lockTS, primary, &KeyError{Err: ke})
		}
		switch {
		case resp.GetCommitVersion() != 0:
			return txnFate{decided: true, commitTS: resp.GetCommitVersion()}, nil
		case resp.GetLockTtl() != 0 && force:
			return txnFate{}, fmt.Errorf("kvclient: transaction %d at primary %q is still alive after a forced rollback", lockTS, primary)
		case resp.GetLockTtl() != 0:
			return txnFate{left: max(lockLeft(lockTS, resp.GetLockTtl(), currentTS), time.Millisecond)}, nil
		}
		return txnFate{decided: true}, nil
	}
}

// resolveKeys commits (commitTS > 0) or rolls back the transaction startTS
// on keys, region by region.
func (r *lockResolver) resolveKeys(ctx context.Context, bo *backoffer, startTS, commitTS uint64, keys [][]byte) error {
	return onRegions(ctx, r.c, bo, keys, identity, keyCost,
		func(ctx context.Context, bo *backoffer, loc *location, keys [][]byte) error {
			resp, err := send(ctx, r.c, bo, loc, "ResolveLock",
				func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.ResolveLockResponse, error) {
					return sc.KvResolveLock(ctx, &kvrpcpb.ResolveLockRequest{
						Context: rc, StartVersion: startTS, CommitVersion: commitTS, Keys: keys,
					})
				})
			if err != nil {
				return err
			}
			if ke := resp.GetError(); ke != nil {
				return fmt.Errorf("kvclient: resolve locks of transaction %d (commit %d): %w", startTS, commitTS, &KeyError{Err: ke})
			}
			return nil
		})
}

func identity(k []byte) []byte { return k }

// gcScanLockLimit is the page size of ResolveLocksForGC's lock scans. A
// lock names its key and its primary (at most limits.MaxKeySize each), so
// a page stays far below the gRPC message limit.
const gcScanLockLimit = 128

// ResolveLocksForGC settles every lock of a transaction started at or below
// safePoint, over the whole key space, as TiKV's GC worker does before it
// advances the GC safe point: once it returns nil, no transaction that
// committed at or below safePoint has a lock left anywhere, so collecting
// versions below safePoint cannot lose its commit record while a lock still
// needs it (see services/store/README.md, "GC").
//
// It walks the regions in key order, asks each region's leader for its locks
// with start_ts <= safePoint (KvScanLock, gcScanLockLimit at a time) and
// resolves them: each transaction's primary decides its fate
// (CheckTxnStatus), and a transaction that has not committed is rolled back
// whatever its locks' TTL, since it is older than the GC life time and
// could not commit below the safe point anyway; then the locks are
// committed or rolled back (ResolveLock). Routing failures are retried for
// each page within Options.MaxRetries; any failure ends the walk with an
// error, and the caller must not collect below safePoint. It returns the
// number of locks resolved.
func (c *Client) ResolveLocksForGC(ctx context.Context, safePoint uint64) (int, error) {
	// The key space is cut at the region boundaries the walk finds (from
	// the region cache, PD on a miss) into consecutive ranges, and up to
	// gcScanLockParallel ranges are scanned at once: a store's raft loop
	// then confirms several regions' read index in one round and sends
	// their heartbeats in one batch per store, instead of a round and a
	// batch for every region. Each range is scanned as a whole walk of its
	// own (resolveRangeForGC re-locates inside it after a split or a move),
	// and the ranges cover the key space end to end, so every lock at or
	// below safePoint is seen exactly as by one walk.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		resolved int
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	sem := make(chan struct{}, gcScanLockParallel)
	key := []byte{}
	for {
		loc, err := c.locate(ctx, c.newBackoffer(), key)
		if err != nil {
			fail(err)
			break
		}
		end := loc.region.GetEndKey()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			fail(ctx.Err())
			break
		}
		wg.Add(1)
		go func(start, end []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			n, err := c.resolveRangeForGC(ctx, safePoint, start, end)
			mu.Lock()
			resolved += n
			mu.Unlock()
			if err != nil {
				fail(err)
			}
		}(key, end)
		if len(end) == 0 {
			break
		}
		key = end
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return resolved, firstErr
}

// gcScanLockParallel bounds the ranges ResolveLocksForGC scans at once.
const gcScanLockParallel = 16

// resolveRangeForGC is ResolveLocksForGC over [start, end) (empty end: to
// the end of the key space).
func (c *Client) resolveRangeForGC(ctx context.Context, safePoint uint64, start, end []byte) (int, error) {
	resolved := 0
	key := start
	bo := c.newBackoffer()
	for {
		loc, err := c.locate(ctx, bo, key)
		if err != nil {
			return resolved, err
		}
		resp, err := send(ctx, c, bo, loc, "ScanLock",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.ScanLockResponse, error) {
				return sc.KvScanLock(ctx, &kvrpcpb.ScanLockRequest{
					Context: rc, MaxVersion: safePoint, StartKey: key, Limit: gcScanLockLimit,
				})
			})
		if errors.Is(err, errRegionMoved) {
			continue // split or moved: locate key again
		}
		if err != nil {
			return resolved, err
		}
		if ke := resp.GetError(); ke != nil {
			return resolved, fmt.Errorf("kvclient: scan locks of region %d from %q: %w", loc.region.GetId(), key, &KeyError{Err: ke})
		}
		locks := resp.GetLocks()
		// A region that grew past end (a merge) may answer locks of the
		// next range: those are that range's to resolve.
		for len(end) > 0 && len(locks) > 0 && bytes.Compare(locks[len(locks)-1].GetKey(), end) >= 0 {
			locks = locks[:len(locks)-1]
		}
		if len(locks) > 0 {
			if err := c.resolver.resolveForGC(ctx, c.newBackoffer(), locks); err != nil {
				return resolved, err
			}
			resolved += len(locks)
		}
		switch regionEnd := loc.region.GetEndKey(); {
		case len(resp.GetLocks()) >= gcScanLockLimit:
			// The page is full: the region may hold more after its last.
			key = append(bytes.Clone(resp.GetLocks()[len(resp.GetLocks())-1].GetKey()), 0)
		case len(regionEnd) == 0:
			return resolved, nil
		default:
			key = regionEnd
		}
		if len(end) > 0 && bytes.Compare(key, end) >= 0 {
			return resolved, nil
		}
		bo = c.newBackoffer()
	}
}

// resolveForGC settles locks for GC: every transaction is committed or
// rolled back (checkTxnStatus with force), then its locks are resolved.
func (r *lockResolver) resolveForGC(ctx context.Context, bo *backoffer, locks []*kvrpcpb.LockInfo) error {
	byTxn := map[uint64][]*kvrpcpb.LockInfo{}
	var order []uint64
	for _, l := range locks {
		ts := l.GetLockVersion()
		if _, ok := byTxn[ts]; !ok {
			order = append(order, ts)
		}
		byTxn[ts] = append(byTxn[ts], l)
	}
	for _, ts := range order {
		txnLocks := byTxn[ts]
		commitTS, decided := r.lookup(ts)
		if !decided {
			fate, err := r.checkTxnStatus(ctx, bo, txnLocks[0], 0, true)
			if err != nil {
				return err
			}
			commitTS = fate.commitTS
			r.remember(ts, commitTS)
		}
		keys := make([][]byte, len(txnLocks))
		for i, l := range txnLocks {
			keys[i] = l.GetKey()
		}
		if err := r.resolveKeys(ctx, bo, ts, commitTS, keys); err != nil {
			return err
		}
		r.c.stats.locksResolved.Add(uint64(len(keys)))
	}
	return nil
}
