package kvsvc

import (
	"context"
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

// GCOptions pace garbage collection.
type GCOptions struct {
	// Interval between rounds.
	Interval time.Duration
	// LifeTime is how long old versions stay readable: each round proposes
	// now - LifeTime to PD as the safe point (PD keeps the maximum).
	LifeTime time.Duration
	// BatchSize bounds the modifications of one raft command, and
	// BatchBytes their size (0: limits.WriteBatchBytes).
	BatchSize  int
	BatchBytes int
	Log        *slog.Logger
}

// RunGC removes MVCC versions older than PD's GC safe point, and expired
// values, from every region led here, until ctx ends. The deletions go
// through raft like any write. They need no latches: they only touch
// versions at or below the safe point, which no live transaction reads or
// writes (a transaction older than LifeTime may fail).
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
		safePoint, err := s.advanceSafePoint(ctx, pd, opts.LifeTime)
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
		for _, region := range s.store.Regions() {
			if err := s.gcRegion(ctx, region.GetId(), safePoint, opts.BatchSize, opts.BatchBytes); err != nil && ctx.Err() == nil {
				opts.Log.Debug("gc: region", "region", region.GetId(), "err", err)
			}
		}
		s.gcRounds.Add(1)
	}
}

func (s *Service) raiseSafePoint(sp uint64) {
	for old := s.safePoint.Load(); sp > old && !s.safePoint.CompareAndSwap(old, sp); old = s.safePoint.Load() {
	}
}

// gcClockLag is how far GC's idea of "now" trails this store's clock when it
// decides a value has expired, so that a reader whose clock is a little
// behind never finds a value it still considers live already collected.
const gcClockLag = 5 * time.Second

// advanceSafePoint proposes now - lifeTime to PD and returns PD's safe point.
func (s *Service) advanceSafePoint(ctx context.Context, pd GCPD, lifeTime time.Duration) (uint64, error) {
	ts, err := pd.GetTS(ctx)
	if err != nil {
		return 0, err
	}
	physical := int64(ts>>mvcc.PhysicalShift) - lifeTime.Milliseconds()
	if physical <= 0 {
		return pd.GetGCSafePoint(ctx)
	}
	return pd.UpdateGCSafePoint(ctx, uint64(physical)<<mvcc.PhysicalShift)
}

// gcRegion collects one region if this store leads it.
func (s *Service) gcRegion(ctx context.Context, regionID, safePoint uint64, batch, batchBytes int) error {
	region, err := s.store.PeerFor(regionID, nil)
	if err != nil {
		return nil // not led here: its leader collects it
	}
	if err := s.store.WaitLeaderReady(ctx, regionID); err != nil {
		return err
	}
	start := region.GetStartKey()
	for {
		mods, next, err := mvcc.GC(s.store.DB(), start, region.GetEndKey(), safePoint, s.nowMs(0)-gcClockLag.Milliseconds(), batch, batchBytes)
		if err != nil {
			return err
		}
		if len(mods) > 0 {
			if _, err := s.store.Propose(ctx, regionID, &raftserverpb.RaftCmdRequest{
				Header: &raftserverpb.CmdHeader{RegionEpoch: region.GetRegionEpoch()},
				Writes: mods,
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
