package raftstore

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// A raft snapshot here carries only metadata (SnapshotMeta: the region);
// the region's data is read from a Pebble snapshot taken at the same
// applied index and streamed separately by the transport. Taking the Pebble
// snapshot on the raft loop, where apply happens, is what makes the two
// agree.

// snapRegistry holds generated snapshots until the transport streams them.
type snapRegistry struct {
	mu    sync.Mutex
	snaps map[snapID]*generatedSnap
}

type snapID struct{ regionID, index, term uint64 }

type generatedSnap struct {
	snap    *pebble.Snapshot
	region  *metapb.Region
	refs    int
	expires time.Time
}

// snapTTL bounds how long an unsent or abandoned snapshot pins old data.
const snapTTL = 2 * time.Minute

func newSnapRegistry() *snapRegistry { return &snapRegistry{snaps: map[snapID]*generatedSnap{}} }

// ensure registers a snapshot under id unless one is there already.
func (r *snapRegistry) ensure(id snapID, gen func() *generatedSnap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.snaps[id]; ok {
		g.expires = time.Now().Add(snapTTL)
		return
	}
	g := gen()
	g.expires = time.Now().Add(snapTTL)
	r.snaps[id] = g
}

// acquire returns a snapshot for sending; release must follow.
func (r *snapRegistry) acquire(id snapID) (*generatedSnap, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, ok := r.snaps[id]
	if ok {
		g.refs++
		g.expires = time.Now().Add(snapTTL)
	}
	return g, ok
}

func (r *snapRegistry) release(id snapID, g *generatedSnap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g.refs--
	if cur, ok := r.snaps[id]; (!ok || cur != g) && g.refs == 0 {
		g.snap.Close()
	}
}

func (r *snapRegistry) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, g := range r.snaps {
		if g.refs == 0 && now.After(g.expires) {
			g.snap.Close()
			delete(r.snaps, id)
		}
	}
}

func (r *snapRegistry) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, g := range r.snaps {
		if g.refs == 0 {
			g.snap.Close()
		}
		delete(r.snaps, id)
	}
}

// generateSnapshot implements raft.Storage.Snapshot for the peer: a
// snapshot at the applied index. It runs on the raft loop.
func (p *peer) generateSnapshot() (raftpb.Snapshot, error) {
	index := p.storage.appliedIndex()
	term, err := p.storage.Term(index)
	if err != nil {
		return raftpb.Snapshot{}, fmt.Errorf("raftstore: region %d: term of applied index %d: %w", p.regionID, index, err)
	}
	region := proto.Clone(p.region()).(*metapb.Region)
	// The known safe point is read on the loop, like the data: the data
	// was collected up to it at most.
	data, err := proto.Marshal(&raftserverpb.SnapshotMeta{Region: region, GcSafePoint: p.store.GCSafePoint()})
	if err != nil {
		return raftpb.Snapshot{}, err
	}
	// Followers that need a snapshot at the same index share one.
	p.store.snaps.ensure(snapID{p.regionID, index, term}, func() *generatedSnap {
		return &generatedSnap{snap: p.store.db.NewSnapshot(), region: region}
	})
	return raftpb.Snapshot{
		Data:     data,
		Metadata: raftpb.SnapshotMetadata{Index: index, Term: term, ConfState: confStateOf(region)},
	}, nil
}

// scanSnapshot calls emit with the region's data keys from the snapshot,
// in batches of about chunkSize bytes.
func scanSnapshot(g *generatedSnap, chunkSize int, emit func([]*raftserverpb.SnapshotKV) error) error {
	var (
		batch []*raftserverpb.SnapshotKV
		size  int
	)
	for _, cf := range keys.CFs {
		lo, hi := keys.DataRange(cf, g.region.GetStartKey(), g.region.GetEndKey())
		it, err := g.snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return fmt.Errorf("raftstore: snapshot iterator: %w", err)
		}
		for it.First(); it.Valid(); it.Next() {
			kv := &raftserverpb.SnapshotKV{Key: append([]byte(nil), it.Key()...), Value: append([]byte(nil), it.Value()...)}
			batch = append(batch, kv)
			size += len(kv.Key) + len(kv.Value)
			if size >= chunkSize {
				if err := emit(batch); err != nil {
					it.Close()
					return err
				}
				batch, size = nil, 0
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("raftstore: snapshot scan: %w", err)
		}
	}
	return emit(batch)
}

// applySnapshot replaces the peer's state with a received snapshot, into
// the raft loop's persist batch: the region's data, its log, apply state and
// region state change in one atomic write.
func (p *peer) applySnapshot(b *pebble.Batch, snap raftpb.Snapshot) error {
	meta := &raftserverpb.SnapshotMeta{}
	if err := proto.Unmarshal(snap.Data, meta); err != nil || meta.GetRegion() == nil {
		return fmt.Errorf("%w: region %d: snapshot metadata: %v", errCorruptState, p.regionID, err)
	}
	key := snapKey{snap.Metadata.Index, snap.Metadata.Term}
	kvs, ok := p.pendingSnap[key]
	if !ok {
		return fmt.Errorf("raftstore: region %d: snapshot %d/%d data missing", p.regionID, key.index, key.term)
	}
	delete(p.pendingSnap, key)
	if err := p.store.recordGCSafePoint(b, meta.GetGcSafePoint()); err != nil {
		return err
	}
	region := meta.GetRegion()
	old := p.region()
	if len(old.GetPeers()) > 0 {
		if err := deleteRegionData(b, old.GetStartKey(), old.GetEndKey()); err != nil {
			return err
		}
	}
	if err := deleteRegionData(b, region.GetStartKey(), region.GetEndKey()); err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := b.Set(kv.GetKey(), kv.GetValue(), nil); err != nil {
			return fmt.Errorf("raftstore: region %d: write snapshot data: %w", p.regionID, err)
		}
	}
	if err := b.DeleteRange(keys.RaftLogKey(p.regionID, 0), keys.RaftLogKey(p.regionID, math.MaxUint64), nil); err != nil {
		return fmt.Errorf("raftstore: region %d: clear log: %w", p.regionID, err)
	}
	as := &raftserverpb.RaftApplyState{AppliedIndex: key.index, TruncatedIndex: key.index, TruncatedTerm: key.term}
	if err := putProto(b, keys.ApplyStateKey(p.regionID), as); err != nil {
		return err
	}
	if err := putProto(b, keys.RegionStateKey(p.regionID), &raftserverpb.RegionLocalState{Region: region}); err != nil {
		return err
	}
	p.storage.applyState = as
	p.storage.lastIndex, p.storage.lastTerm = key.index, key.term
	p.storage.cache = p.storage.cache[:0]
	p.setRegion(region)
	p.store.stats.SnapshotsApplied.Add(1)
	p.store.log.Info("applied snapshot", "region", p.regionID, "index", key.index, "term", key.term, "keys", len(kvs))
	return nil
}

// afterSnapshotApplied drops snapshot data raft will not ask for anymore.
func (p *peer) afterSnapshotApplied() {
	applied := p.storage.appliedIndex()
	for k := range p.pendingSnap {
		if k.index <= applied {
			delete(p.pendingSnap, k)
		}
	}
}
