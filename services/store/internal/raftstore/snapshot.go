package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
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

// Snapshot apply stages a TestingKnobs.SnapshotApply hook is called at.
const (
	// SnapshotBeforeIngest: the APPLYING state is durable, the files not
	// ingested yet.
	SnapshotBeforeIngest = "before-ingest"
	// SnapshotAfterIngest: the files are ingested, the region's raft and
	// region state not written yet.
	SnapshotAfterIngest = "after-ingest"
)

// applySnapshot replaces the peer's state with a received snapshot. In
// order, each step durable before the next:
//
//  1. a synced batch marks the region APPLYING (with the snapshot's
//     region), raises the GC safe point and deletes the data of the old
//     range that the new one leaves out;
//  2. the snapshot's files are ingested: their range deletions clear the
//     new range and their keys fill it, in one atomic engine edit;
//  3. the loop's persist batch b, synced by the caller, clears the log and
//     writes the apply state (the snapshot's index) and the region state.
//
// A crash after 1 and before 3 leaves APPLYING on disk, with the snapshot's
// index and files (synced before 1): the next start ingests them again and
// completes the apply (finishInterruptedApply). Half-applied data never
// passes for a region, the apply state never claims an index whose data is
// not in, and the peer never loses log it acknowledged: a peer that forgot
// its log would meet a leader that remembers its match index (etcd raft
// panics on that commit index).
func (p *peer) applySnapshot(b *pebble.Batch, snap raftpb.Snapshot) error {
	meta := &raftserverpb.SnapshotMeta{}
	if err := proto.Unmarshal(snap.Data, meta); err != nil || meta.GetRegion() == nil {
		return fmt.Errorf("%w: region %d: snapshot metadata: %v", errCorruptState, p.regionID, err)
	}
	key := snapKey{snap.Metadata.Index, snap.Metadata.Term}
	in, ok := p.pendingSnap[key]
	if !ok {
		return fmt.Errorf("raftstore: region %d: snapshot %d/%d data missing", p.regionID, key.index, key.term)
	}
	delete(p.pendingSnap, key)
	p.appliedSnaps = append(p.appliedSnaps, in)
	s := p.store
	region := meta.GetRegion()
	old := p.region()

	applying := &raftserverpb.SnapshotApplyState{Index: key.index, Term: key.term}
	for _, f := range in.files {
		rel, err := filepath.Rel(s.cfg.SnapshotDir, f)
		if err != nil {
			return fmt.Errorf("raftstore: region %d: snapshot file %s: %w", p.regionID, f, err)
		}
		applying.Files = append(applying.Files, rel)
	}
	pre := s.db.NewBatch()
	defer pre.Close()
	if err := putProto(pre, keys.RegionStateKey(p.regionID), &raftserverpb.RegionLocalState{Region: region, State: raftserverpb.PeerState_APPLYING, Applying: applying}); err != nil {
		return err
	}
	if err := s.recordGCSafePoint(pre, meta.GetGcSafePoint()); err != nil {
		return err
	}
	if len(old.GetPeers()) > 0 {
		for _, r := range rangeMinus(old.GetStartKey(), old.GetEndKey(), region.GetStartKey(), region.GetEndKey()) {
			if err := deleteRegionData(pre, r[0], r[1]); err != nil {
				return err
			}
		}
	}
	if err := pre.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: region %d: mark snapshot applying: %w", p.regionID, err)
	}
	if err := s.snapshotHook(p.regionID, SnapshotBeforeIngest); err != nil {
		return err
	}
	start := time.Now()
	if err := ingestKeeping(s.db, in.files); err != nil {
		return fmt.Errorf("raftstore: region %d: %w", p.regionID, err)
	}
	if err := s.snapshotHook(p.regionID, SnapshotAfterIngest); err != nil {
		return err
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
	// The split check estimates from what was written since start; the
	// snapshot's data counts.
	p.writtenBytes = in.bytes
	s.stats.SnapshotsApplied.Add(1)
	s.log.Info("applied snapshot", "region", p.regionID, "index", key.index, "term", key.term,
		"keys", in.keys, "bytes", in.bytes, "files", len(in.files), "ingest", time.Since(start))
	return nil
}

// ingestKeeping ingests the SST files and keeps them: Pebble removes the
// paths it ingests, and the files must outlive a stop until the apply is
// durable, so it is handed second hard links to them.
func ingestKeeping(db *pebble.DB, files []string) error {
	links := make([]string, len(files))
	for i, f := range files {
		links[i] = f + ".ingest"
		if err := os.Remove(links[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ingest snapshot: %w", err)
		}
		if err := os.Link(f, links[i]); err != nil {
			return fmt.Errorf("ingest snapshot: %w", err)
		}
	}
	if err := db.Ingest(links); err != nil {
		return fmt.Errorf("ingest snapshot: %w", err)
	}
	return nil
}

// snapshotHook runs the SnapshotApply testing knob, if set.
func (s *Store) snapshotHook(regionID uint64, stage string) error {
	if h := s.cfg.Knobs.SnapshotApply; h != nil {
		if err := h(regionID, stage); err != nil {
			return fmt.Errorf("raftstore: region %d: snapshot apply %s: %w", regionID, stage, err)
		}
	}
	return nil
}

// rangeMinus returns the parts of [s1, e1) outside [s2, e2) (empty end:
// unbounded).
func rangeMinus(s1, e1, s2, e2 []byte) [][2][]byte {
	var out [][2][]byte
	less := func(a, b []byte) bool { return bytes.Compare(a, b) < 0 }
	// Left of s2: [s1, min(e1, s2)).
	if less(s1, s2) {
		end := s2
		if len(e1) > 0 && less(e1, s2) {
			end = e1
		}
		out = append(out, [2][]byte{s1, end})
	}
	// Right of e2: [max(s1, e2), e1).
	if len(e2) > 0 && (len(e1) == 0 || less(e2, e1)) {
		begin := e2
		if less(e2, s1) {
			begin = s1
		}
		out = append(out, [2][]byte{begin, e1})
	}
	return out
}

// afterSnapshotApplied drops snapshot files raft will not ask for anymore,
// once the apply is durable.
func (p *peer) afterSnapshotApplied() {
	p.noteApplied(gcNote{dirty: true}) // the snapshot replaced the region's data
	for _, in := range p.appliedSnaps {
		in.remove()
	}
	p.appliedSnaps = p.appliedSnaps[:0]
	applied := p.storage.appliedIndex()
	for k, in := range p.pendingSnap {
		if k.index <= applied {
			in.remove()
			delete(p.pendingSnap, k)
		}
	}
}

// dropPendingSnaps removes snapshot files raft did not take.
func (p *peer) dropPendingSnaps() {
	for k, in := range p.pendingSnap {
		in.remove()
		delete(p.pendingSnap, k)
	}
}

// finishInterruptedApply completes a snapshot apply that a stop cut short
// (the region state says APPLYING): it ingests the snapshot's files again
// (an ingest that happened before the stop is simply repeated: the same
// range deletions and keys, at a new sequence number) and writes what the
// apply would have: an empty log truncated at the snapshot, the apply state
// and the region state. The hard state's commit moves to the snapshot's
// index and its term at least to the snapshot's (dropping the vote only if
// the term rises: no vote was cast in a term never persisted). It returns
// the region state to load the peer from, or nil if the files are gone;
// then the region is cleared and the peer forgotten (a last resort: the
// files are synced before the APPLYING mark).
func (s *Store) finishInterruptedApply(st *raftserverpb.RegionLocalState) (*raftserverpb.RegionLocalState, error) {
	region := st.GetRegion()
	id := region.GetId()
	ap := st.GetApplying()
	var files []string
	missing := ap == nil || s.cfg.SnapshotDir == "" || len(ap.GetFiles()) == 0
	for _, f := range ap.GetFiles() {
		path := filepath.Join(s.cfg.SnapshotDir, f)
		if _, err := os.Stat(path); err != nil {
			missing = true
		}
		files = append(files, path)
	}
	if missing {
		return nil, s.forgetInterruptedApply(st)
	}
	if err := ingestKeeping(s.db, files); err != nil {
		return nil, fmt.Errorf("raftstore: region %d: again: %w", id, err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(keys.RaftLogKey(id, 0), keys.RaftLogKey(id, math.MaxUint64), nil); err != nil {
		return nil, fmt.Errorf("raftstore: region %d: clear log: %w", id, err)
	}
	as := &raftserverpb.RaftApplyState{AppliedIndex: ap.GetIndex(), TruncatedIndex: ap.GetIndex(), TruncatedTerm: ap.GetTerm()}
	if err := putProto(b, keys.ApplyStateKey(id), as); err != nil {
		return nil, err
	}
	var hs raftpb.HardState
	hsData, ok, err := getValue(s.db, keys.HardStateKey(id))
	if err != nil {
		return nil, err
	}
	if ok {
		if err := hs.Unmarshal(hsData); err != nil {
			return nil, fmt.Errorf("%w: region %d: hard state: %v", errCorruptState, id, err)
		}
	}
	if hs.Term < ap.GetTerm() {
		hs.Term, hs.Vote = ap.GetTerm(), 0
	}
	hs.Commit = ap.GetIndex()
	data, err := hs.Marshal()
	if err != nil {
		return nil, fmt.Errorf("raftstore: marshal hard state: %w", err)
	}
	if err := b.Set(keys.HardStateKey(id), data, nil); err != nil {
		return nil, fmt.Errorf("raftstore: region %d: write hard state: %w", id, err)
	}
	normal := &raftserverpb.RegionLocalState{Region: region}
	if err := putProto(b, keys.RegionStateKey(id), normal); err != nil {
		return nil, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("raftstore: region %d: finish interrupted snapshot apply: %w", id, err)
	}
	s.stats.SnapshotAppliesResumed.Add(1)
	s.log.Warn("finished a snapshot apply a stop interrupted", "region", id, "index", ap.GetIndex(), "term", ap.GetTerm(), "files", len(files))
	return normal, nil
}

// forgetInterruptedApply clears the region of an interrupted snapshot
// apply whose files are gone: its data, log and apply state, and its
// region state, keeping only the term and vote of its hard state (a vote
// given must not be forgotten). The peer is gone until the leader's next
// message recreates it empty and sends a fresh snapshot.
func (s *Store) forgetInterruptedApply(st *raftserverpb.RegionLocalState) error {
	id := st.GetRegion().GetId()
	b := s.db.NewBatch()
	defer b.Close()
	if err := deleteRegionData(b, st.GetRegion().GetStartKey(), st.GetRegion().GetEndKey()); err != nil {
		return err
	}
	if err := b.DeleteRange(keys.RaftLogKey(id, 0), keys.RaftLogKey(id, math.MaxUint64), nil); err != nil {
		return fmt.Errorf("raftstore: region %d: clear log: %w", id, err)
	}
	if err := b.Delete(keys.ApplyStateKey(id), nil); err != nil {
		return fmt.Errorf("raftstore: region %d: clear apply state: %w", id, err)
	}
	hsData, ok, err := getValue(s.db, keys.HardStateKey(id))
	if err != nil {
		return err
	}
	if ok {
		var hs raftpb.HardState
		if err := hs.Unmarshal(hsData); err != nil {
			return fmt.Errorf("%w: region %d: hard state: %v", errCorruptState, id, err)
		}
		hs.Commit = 0
		data, err := hs.Marshal()
		if err != nil {
			return fmt.Errorf("raftstore: marshal hard state: %w", err)
		}
		if err := b.Set(keys.HardStateKey(id), data, nil); err != nil {
			return fmt.Errorf("raftstore: region %d: write hard state: %w", id, err)
		}
	}
	if err := b.Delete(keys.RegionStateKey(id), nil); err != nil {
		return fmt.Errorf("raftstore: region %d: clear region state: %w", id, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: region %d: clear interrupted snapshot apply: %w", id, err)
	}
	s.stats.SnapshotAppliesForgotten.Add(1)
	s.log.Error("a snapshot apply was interrupted and its files are gone: cleared the region; its peer waits for a new snapshot", "region", id)
	return nil
}
