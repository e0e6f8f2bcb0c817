package kvsvc

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/mvcc"
)

// GCPD is what garbage collection needs from PD; *pdclient.Client
// implements it.
type GCPD interface {
	GetTS(ctx context.Context) (uint64, error)
	GetGCSafePoint(ctx context.Context) (uint64, error)
	UpdateGCSafePoint(ctx context.Context, safePoint uint64) (uint64, error)
}

// LockResolver settles, cluster-wide, every lock of a transaction started
// at or below a safe point; *kvclient.Client implements it
// (ResolveLocksForGC).
type LockResolver interface {
	ResolveLocksForGC(ctx context.Context, safePoint uint64) (int, error)
}

// GCOptions pace garbage collection.
type GCOptions struct {
	// Interval between rounds.
	Interval time.Duration
	// LifeTime is how long old versions stay readable: while this store
	// drives GC, each round tries to advance PD's safe point to
	// now - LifeTime.
	LifeTime time.Duration
	// Locks resolves the cluster's old locks before this store, while it
	// drives GC, advances the safe point.
	Locks LockResolver
	// BatchSize bounds the modifications of one raft command, and
	// BatchBytes their size (0: limits.WriteBatchBytes).
	BatchSize  int
	BatchBytes int
	Log        *slog.Logger
}

// RunGC collects garbage until ctx ends. Each round has two steps:
//
//  1. If this store leads the region that starts the key space (the one
//     holding the empty key), it drives GC for the cluster, as TiKV's GC
//     leader does: it takes a candidate safe point, now - LifeTime by the
//     TSO, settles every lock at or below it in every region
//     (opts.Locks.ResolveLocksForGC) and only then stores it in PD.
//  2. Every store reads PD's safe point and removes, from every region it
//     leads, the MVCC versions no reader at or above it can see, plus
//     expired values, through raft.
//
// PD's safe point therefore never passes a lock that was not resolved, and
// a store collects only below PD's safe point: GC never drops the commit
// record of a transaction's primary while one of its secondaries is still
// locked (see advanceSafePoint). The deletions need no latches: they only
// touch versions at or below the safe point, which no live transaction
// reads or writes (a transaction older than LifeTime may fail).
func (s *Service) RunGC(ctx context.Context, pd GCPD, opts GCOptions) {
	if opts.BatchSize == 0 {
		opts.BatchSize = 1024
	}
	if opts.BatchBytes == 0 {
		opts.BatchBytes = limits.WriteBatchBytes
	}
	// Another store may have collected with a newer safe point than this
	// one last saw (or this one restarted): refuse old transactions from
	// the start.
	if sp, err := pd.GetGCSafePoint(ctx); err == nil {
		s.raiseSafePoint(sp)
	}
	t := time.NewTicker(opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopping:
			return
		case <-t.C:
		}
		if s.drivesGC() {
			resolved, err := advanceSafePoint(ctx, pd, opts.Locks, opts.LifeTime)
			s.gcLocksResolved.Add(int64(resolved))
			switch {
			case err != nil && ctx.Err() == nil:
				// The safe point stays where it was; the next round tries
				// again.
				opts.Log.Warn("gc: safe point not advanced", "err", err)
			case resolved > 0:
				opts.Log.Info("gc: resolved old locks", "locks", resolved)
			}
		}
		safePoint, err := pd.GetGCSafePoint(ctx)
		if err != nil {
			if ctx.Err() == nil {
				opts.Log.Warn("gc: safe point", "err", err)
			}
			continue
		}
		if safePoint == 0 {
			continue
		}
		s.raiseSafePoint(safePoint)
		regions := s.store.Regions()
		here := make(map[uint64]bool, len(regions))
		for _, region := range regions {
			here[region.GetId()] = true
			if err := s.gcRegion(ctx, region.GetId(), safePoint, opts.BatchSize, opts.BatchBytes); err != nil && ctx.Err() == nil {
				opts.Log.Debug("gc: region", "region", region.GetId(), "err", err)
			}
		}
		s.forgetGCIdle(here)
		s.gcRounds.Add(1)
	}
}

// drivesGC reports whether this store drives GC for the cluster: it leads
// the region whose range starts the key space. Leadership picks one store
// without an election of its own; when it moves, two stores may drive for
// a moment, which is safe (each stores only safe points it resolved).
func (s *Service) drivesGC() bool {
	for _, r := range s.store.Regions() {
		if len(r.GetStartKey()) == 0 {
			_, err := s.store.PeerFor(r.GetId(), nil)
			return err == nil
		}
	}
	return false
}

// raiseSafePoint makes the store refuse, from now on, transactions that
// start (or commit) at or below sp and reads below it. It runs before any
// region here is collected at sp.
func (s *Service) raiseSafePoint(sp uint64) { s.store.RaiseGCSafePoint(sp) }

// advanceSafePoint is one round of the GC driver. It takes a timestamp T
// from the TSO and the candidate safe point C = T's physical time -
// lifeTime (so C < T), resolves every lock with start_ts <= C in every
// region, and only then stores C in PD (which keeps the maximum). It
// returns the number of locks resolved; on any failure nothing is stored.
//
// Why C is safe once the walk is done: GC at C can drop a commit record
// only at or below C. A lock that existed when its region was scanned with
// start_ts <= C has been resolved. A lock with start_ts > C belongs to a
// transaction that commits, if ever, above C. A lock written after its
// region was scanned belongs to a transaction that takes its commit_ts from
// the TSO after all its prewrites, so after T: above C too. So no
// transaction committed at or below C keeps a lock whose primary's commit
// record GC at C could drop. Each round stands on its own, so two drivers
// at once are safe as well.
func advanceSafePoint(ctx context.Context, pd GCPD, locks LockResolver, lifeTime time.Duration) (resolved int, err error) {
	ts, err := pd.GetTS(ctx)
	if err != nil {
		return 0, fmt.Errorf("timestamp: %w", err)
	}
	physical := int64(ts>>mvcc.PhysicalShift) - lifeTime.Milliseconds()
	if physical <= 0 {
		return 0, nil
	}
	candidate := uint64(physical) << mvcc.PhysicalShift
	current, err := pd.GetGCSafePoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("current safe point: %w", err)
	}
	if candidate <= current {
		return 0, nil
	}
	if locks == nil {
		return 0, fmt.Errorf("no lock resolver: the safe point cannot advance")
	}
	resolved, err = locks.ResolveLocksForGC(ctx, candidate)
	if err != nil {
		return resolved, fmt.Errorf("resolve locks at or below %d: %w", candidate, err)
	}
	if _, err := pd.UpdateGCSafePoint(ctx, candidate); err != nil {
		return resolved, fmt.Errorf("store safe point %d: %w", candidate, err)
	}
	return resolved, nil
}

// gcNowMs is the instant by which GC at safePoint judges expiry: the
// safe point's physical time, never this store's clock. Every reader that
// GC's removals can affect reads at a timestamp at or above the safe point
// and judges expiry by that timestamp's physical time (kvclient sends it as
// now_ms, and the store uses it when a read sends none), which is no
// earlier: a value expired at the safe point is expired for all of them.
// A store's clock may be anywhere; with it, a store running ahead deleted
// values that readers still saw live.
func gcNowMs(safePoint uint64) int64 { return int64(safePoint >> mvcc.PhysicalShift) }

// gcIdleMark is what a GC pass over a region that found nothing leaves for
// the next: the token of the watch over the region's applied commands it
// started before it read (raftstore.Store.WatchGC), the safe point it
// collected at and what it saw (mvcc.GCSummary).
type gcIdleMark struct {
	token     uint64
	safePoint uint64
	summary   mvcc.GCSummary
}

// gcRegion collects one region if this store leads it.
//
// A region's pass is skipped when it provably finds nothing: an earlier
// pass here found nothing at safe point sp1, and since it started reading,
// the commands applied to the region here only put write records
// (raftstore.Store.GCWritesSince: no deletion, split, snapshot or other
// command; a new peer starts no watch), none committed at or below the new
// safe point, no record that pass walked lies between sp1 and the new safe
// point, and no value it kept expires by the new safe point's time
// (mvcc.GCSummary.Idle). The pass at the new safe point would then see, at
// or below it, the records the earlier pass saw at or below sp1, and take
// the same decisions on them: none. So a region whose writes are all
// younger than the GC life time, the common case of a young cluster, is
// not walked every round however busy it is. A restart or a new peer has
// no mark, so its first pass is a full one. The mark lives in memory only.
func (s *Service) gcRegion(ctx context.Context, regionID, safePoint uint64, batch, batchBytes int) error {
	if _, err := s.store.PeerFor(regionID, nil); err != nil {
		return nil // not led here: its leader collects it
	}
	if err := s.store.WaitLeaderReady(ctx, regionID); err != nil {
		return err
	}
	s.gcIdleMu.Lock()
	mark, marked := s.gcIdle[regionID]
	s.gcIdleMu.Unlock()
	if marked {
		putSince, clean := s.store.GCWritesSince(regionID, mark.token)
		if clean && mark.summary.Idle(mark.safePoint, safePoint, gcNowMs(safePoint), putSince) {
			s.gcSkipped.Add(1)
			return nil
		}
	}
	// The watch first, the region (its range) after it: a split or any
	// other change of the range read after it spoils the watch.
	token, ok := s.store.WatchGC(regionID)
	if !ok {
		return nil
	}
	region, err := s.store.PeerFor(regionID, nil)
	if err != nil {
		return nil
	}
	var sum mvcc.GCSummary
	start := region.GetStartKey()
	for {
		mods, next, err := mvcc.GCSummarized(s.store.DB(), start, region.GetEndKey(), safePoint, gcNowMs(safePoint), batch, batchBytes, &sum)
		if err != nil {
			return err
		}
		if len(mods) == 0 && next == nil && bytes.Equal(start, region.GetStartKey()) {
			// One call walked the whole region and found nothing: the
			// watch started before it covers whatever it did not see.
			s.gcIdleMu.Lock()
			s.gcIdle[regionID] = gcIdleMark{token: token, safePoint: safePoint, summary: sum}
			s.gcIdleMu.Unlock()
			return nil
		}
		if len(mods) > 0 {
			if _, err := s.store.Propose(ctx, regionID, &raftserverpb.RaftCmdRequest{
				Header: &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch()},
				Writes: mods,
				// Every replica then refuses reads below the safe point.
				GcSafePoint: safePoint,
			}); err != nil {
				return err
			}
			s.gcDeleted.Add(int64(len(mods)))
		}
		if next == nil {
			return nil
		}
		start = next
	}
}

// forgetGCIdle drops the marks of regions no longer here, so the map does
// not grow with regions that moved away or merged.
func (s *Service) forgetGCIdle(here map[uint64]bool) {
	s.gcIdleMu.Lock()
	defer s.gcIdleMu.Unlock()
	for id := range s.gcIdle {
		if !here[id] {
			delete(s.gcIdle, id)
		}
	}
}
