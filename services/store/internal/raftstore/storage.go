package raftstore

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// Every bootstrapped or split-created region starts with a log that is
// "truncated" at initLogIndex/initLogTerm, as in TiKV: all its initial peers
// then agree on the log prefix without exchanging it, and a peer created
// empty by a message (index 0) can only be caught up by a snapshot.
const (
	initLogIndex = 5
	initLogTerm  = 5
)

// maxCachedEntries bounds the in-memory tail of the log kept per peer so that
// replicating to up-to-date followers never reads Pebble.
const maxCachedEntries = 1024

// peerStorage implements raft.Storage over the store's Pebble for one
// region. It is used only from the raft loop goroutine, except for the
// fields documented otherwise.
type peerStorage struct {
	db       *pebble.DB
	regionID uint64

	region     *metapb.Region
	hardState  raftpb.HardState
	applyState *raftserverpb.RaftApplyState
	lastIndex  uint64
	lastTerm   uint64
	// cache holds entries [cache[0].Index, lastIndex], contiguous.
	cache []raftpb.Entry

	// snapGen creates snapshots; set by the peer.
	snapGen func() (raftpb.Snapshot, error)
}

var errCorruptState = errors.New("raftstore: corrupt local state")

// loadPeerStorage reads a region's raft state from the engine.
func loadPeerStorage(db *pebble.DB, region *metapb.Region) (*peerStorage, error) {
	s := &peerStorage{db: db, regionID: region.GetId(), region: region}
	hs, ok, err := getValue(db, keys.HardStateKey(s.regionID))
	if err != nil {
		return nil, err
	}
	if ok {
		if err := s.hardState.Unmarshal(hs); err != nil {
			return nil, fmt.Errorf("%w: region %d: hard state: %v", errCorruptState, s.regionID, err)
		}
	}
	s.applyState = &raftserverpb.RaftApplyState{}
	if _, err := getProto(db, keys.ApplyStateKey(s.regionID), s.applyState); err != nil {
		return nil, err
	}
	as := s.applyState
	s.lastIndex, s.lastTerm = as.GetTruncatedIndex(), as.GetTruncatedTerm()

	// The last log entry, if the log holds any past the truncation point.
	prefix := keys.RaftLogPrefix(s.regionID)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: keys.PrefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("raftstore: region %d: open log iterator: %w", s.regionID, err)
	}
	defer it.Close()
	if it.Last() {
		var e raftpb.Entry
		if err := e.Unmarshal(it.Value()); err != nil {
			return nil, fmt.Errorf("%w: region %d: last log entry: %v", errCorruptState, s.regionID, err)
		}
		if e.Index > s.lastIndex {
			s.lastIndex, s.lastTerm = e.Index, e.Term
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("raftstore: region %d: read log: %w", s.regionID, err)
	}
	if s.hardState.Commit > s.lastIndex {
		return nil, fmt.Errorf("%w: region %d: commit index %d past last log index %d", errCorruptState, s.regionID, s.hardState.Commit, s.lastIndex)
	}
	return s, nil
}

// getValue reads a copy of key's value; ok is false if the key is absent.
func getValue(r pebble.Reader, key []byte) (value []byte, ok bool, err error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("raftstore: read %x: %w", key, err)
	}
	value = append([]byte(nil), v...)
	return value, true, closer.Close()
}

// getProto reads key into m; ok is false if the key is absent.
func getProto(r pebble.Reader, key []byte, m proto.Message) (ok bool, err error) {
	v, ok, err := getValue(r, key)
	if !ok || err != nil {
		return false, err
	}
	if err := proto.Unmarshal(v, m); err != nil {
		return false, fmt.Errorf("%w: key %x: %v", errCorruptState, key, err)
	}
	return true, nil
}

func (s *peerStorage) initialized() bool { return len(s.region.GetPeers()) > 0 }

func (s *peerStorage) appliedIndex() uint64 { return s.applyState.GetAppliedIndex() }

func (s *peerStorage) truncatedIndex() uint64 { return s.applyState.GetTruncatedIndex() }

// InitialState implements raft.Storage.
func (s *peerStorage) InitialState() (raftpb.HardState, raftpb.ConfState, error) {
	return s.hardState, confStateOf(s.region), nil
}

// confStateOf is raft's configuration as the region's peers record it,
// joint configurations included: the incoming voter set is the VOTERs and
// INCOMING_VOTERs, the outgoing one the VOTERs and DEMOTING_VOTERs, and a
// DEMOTING_VOTER becomes a learner once the joint configuration is left. The
// leave is explicit (the leader proposes it), so AutoLeave is false. It must
// equal what raft's own configuration changes produce, since a restart and
// a snapshot rebuild the configuration from it.
func confStateOf(region *metapb.Region) raftpb.ConfState {
	var cs raftpb.ConfState
	joint := isJoint(region)
	for _, p := range region.GetPeers() {
		switch p.GetRole() {
		case metapb.PeerRole_LEARNER:
			cs.Learners = append(cs.Learners, p.GetId())
		case metapb.PeerRole_INCOMING_VOTER:
			cs.Voters = append(cs.Voters, p.GetId())
		case metapb.PeerRole_DEMOTING_VOTER:
			cs.VotersOutgoing = append(cs.VotersOutgoing, p.GetId())
			cs.LearnersNext = append(cs.LearnersNext, p.GetId())
		default:
			cs.Voters = append(cs.Voters, p.GetId())
			if joint {
				cs.VotersOutgoing = append(cs.VotersOutgoing, p.GetId())
			}
		}
	}
	return cs
}

// FirstIndex implements raft.Storage.
func (s *peerStorage) FirstIndex() (uint64, error) { return s.truncatedIndex() + 1, nil }

// LastIndex implements raft.Storage.
func (s *peerStorage) LastIndex() (uint64, error) { return s.lastIndex, nil }

// Term implements raft.Storage.
func (s *peerStorage) Term(i uint64) (uint64, error) {
	switch {
	case i == s.truncatedIndex():
		return s.applyState.GetTruncatedTerm(), nil
	case i < s.truncatedIndex():
		return 0, raft.ErrCompacted
	case i > s.lastIndex:
		return 0, raft.ErrUnavailable
	case i == s.lastIndex:
		return s.lastTerm, nil
	}
	if e, ok := s.cached(i); ok {
		return e.Term, nil
	}
	ents, err := s.Entries(i, i+1, 0)
	if err != nil {
		return 0, err
	}
	return ents[0].Term, nil
}

func (s *peerStorage) cached(i uint64) (raftpb.Entry, bool) {
	if len(s.cache) == 0 || i < s.cache[0].Index || i > s.lastIndex {
		return raftpb.Entry{}, false
	}
	return s.cache[i-s.cache[0].Index], true
}

// Entries implements raft.Storage.
func (s *peerStorage) Entries(lo, hi, maxSize uint64) ([]raftpb.Entry, error) {
	if lo <= s.truncatedIndex() {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex+1 {
		return nil, raft.ErrUnavailable
	}
	if lo >= hi {
		return nil, nil
	}
	if len(s.cache) > 0 && lo >= s.cache[0].Index {
		off := s.cache[0].Index
		return limitSize(append([]raftpb.Entry(nil), s.cache[lo-off:hi-off]...), maxSize), nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: keys.RaftLogKey(s.regionID, lo),
		UpperBound: keys.RaftLogKey(s.regionID, hi),
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: region %d: open log iterator: %w", s.regionID, err)
	}
	defer it.Close()
	var (
		ents []raftpb.Entry
		size uint64
		next = lo
	)
	for it.First(); it.Valid(); it.Next() {
		var e raftpb.Entry
		if err := e.Unmarshal(it.Value()); err != nil {
			return nil, fmt.Errorf("%w: region %d: log entry: %v", errCorruptState, s.regionID, err)
		}
		if e.Index != next {
			return nil, fmt.Errorf("%w: region %d: log hole: want index %d, found %d", errCorruptState, s.regionID, next, e.Index)
		}
		next++
		size += uint64(e.Size())
		if len(ents) > 0 && maxSize > 0 && size > maxSize {
			break
		}
		ents = append(ents, e)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("raftstore: region %d: read log: %w", s.regionID, err)
	}
	if len(ents) == 0 || (next < hi && (maxSize == 0 || size <= maxSize)) {
		return nil, fmt.Errorf("%w: region %d: log entries [%d, %d) missing", errCorruptState, s.regionID, next, hi)
	}
	return ents, nil
}

func limitSize(ents []raftpb.Entry, maxSize uint64) []raftpb.Entry {
	if maxSize == 0 || len(ents) == 0 {
		return ents
	}
	size := uint64(ents[0].Size())
	for i := 1; i < len(ents); i++ {
		size += uint64(ents[i].Size())
		if size > maxSize {
			return ents[:i]
		}
	}
	return ents
}

// Snapshot implements raft.Storage.
func (s *peerStorage) Snapshot() (raftpb.Snapshot, error) {
	if s.snapGen == nil {
		return raftpb.Snapshot{}, raft.ErrSnapshotTemporarilyUnavailable
	}
	return s.snapGen()
}

// appendEntries writes entries to the batch, deleting any old entries past
// the new last index (a leader overwrote a conflicting tail), and updates
// the in-memory view. It runs before the batch commits; the raft loop fails
// hard if the commit fails, so the view never runs ahead of the disk.
func (s *peerStorage) appendEntries(b *pebble.Batch, ents []raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	buf := make([]byte, 0, 256)
	for i := range ents {
		e := &ents[i]
		n := e.Size()
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := e.MarshalTo(buf); err != nil {
			return fmt.Errorf("raftstore: marshal entry: %w", err)
		}
		if err := b.Set(keys.RaftLogKey(s.regionID, e.Index), buf, nil); err != nil {
			return fmt.Errorf("raftstore: region %d: write entry %d: %w", s.regionID, e.Index, err)
		}
	}
	first, last := ents[0].Index, ents[len(ents)-1]
	if last.Index < s.lastIndex {
		if err := b.DeleteRange(keys.RaftLogKey(s.regionID, last.Index+1), keys.RaftLogKey(s.regionID, s.lastIndex+1), nil); err != nil {
			return fmt.Errorf("raftstore: region %d: delete conflicting tail: %w", s.regionID, err)
		}
	}
	// Keep the cache contiguous: drop what the new entries replace, append.
	if len(s.cache) > 0 {
		switch off := s.cache[0].Index; {
		case first <= off:
			s.cache = s.cache[:0]
		case first <= s.lastIndex+1:
			s.cache = s.cache[:first-off]
		default:
			s.cache = s.cache[:0]
		}
	}
	if len(s.cache) == 0 && first != s.lastIndex+1 && first > s.truncatedIndex()+1 {
		// A gap between the cache and the new entries cannot be bridged.
		s.cache = s.cache[:0]
	}
	s.cache = append(s.cache, ents...)
	if len(s.cache) > maxCachedEntries {
		// Trim to three quarters of the bound, not to the bound: the
		// copy then happens once per quarter of it, not on every append.
		// (Trimming to the bound into a fresh slice allocated and copied
		// the whole cache, ~50 KB, for every entry a busy region appended.)
		s.dropCached(len(s.cache) - maxCachedEntries*3/4)
	}
	s.lastIndex, s.lastTerm = last.Index, last.Term
	return nil
}

// dropCached drops the first n cached entries in place, reusing the backing
// array, and clears the slots vacated at the end so that their entries' data
// can be collected. Nothing else holds a part of the cache: Entries returns
// copies.
func (s *peerStorage) dropCached(n int) {
	k := copy(s.cache, s.cache[n:])
	clear(s.cache[k:])
	s.cache = s.cache[:k]
}

// setHardState writes the hard state to the batch.
func (s *peerStorage) setHardState(b *pebble.Batch, hs raftpb.HardState) error {
	data, err := hs.Marshal()
	if err != nil {
		return fmt.Errorf("raftstore: marshal hard state: %w", err)
	}
	if err := b.Set(keys.HardStateKey(s.regionID), data, nil); err != nil {
		return fmt.Errorf("raftstore: region %d: write hard state: %w", s.regionID, err)
	}
	s.hardState = hs
	return nil
}

// truncate removes log entries up to and including index, which must be
// applied, from the batch and the in-memory view.
func (s *peerStorage) truncate(b *pebble.Batch, index uint64) error {
	if index <= s.truncatedIndex() || index > s.appliedIndex() {
		return nil
	}
	term, err := s.Term(index)
	if err != nil {
		return fmt.Errorf("raftstore: region %d: term of truncation point %d: %w", s.regionID, index, err)
	}
	if err := b.DeleteRange(keys.RaftLogKey(s.regionID, 0), keys.RaftLogKey(s.regionID, index+1), nil); err != nil {
		return fmt.Errorf("raftstore: region %d: truncate log: %w", s.regionID, err)
	}
	as := proto.Clone(s.applyState).(*raftserverpb.RaftApplyState)
	as.TruncatedIndex, as.TruncatedTerm = index, term
	if err := putProto(b, keys.ApplyStateKey(s.regionID), as); err != nil {
		return err
	}
	s.applyState = as
	if len(s.cache) > 0 && s.cache[0].Index <= index {
		drop := index + 1 - s.cache[0].Index
		if drop >= uint64(len(s.cache)) {
			s.cache = s.cache[:0]
		} else {
			s.dropCached(int(drop))
		}
	}
	return nil
}

func putProto(b *pebble.Batch, key []byte, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("raftstore: marshal %T: %w", m, err)
	}
	if err := b.Set(key, data, nil); err != nil {
		return fmt.Errorf("raftstore: write %x: %w", key, err)
	}
	return nil
}

// writeInitialState writes the raft state of a region created by bootstrap
// or split: a log truncated at initLogIndex, committed there.
func writeInitialState(b *pebble.Batch, region *metapb.Region) error {
	id := region.GetId()
	hs := raftpb.HardState{Term: initLogTerm, Commit: initLogIndex}
	data, err := hs.Marshal()
	if err != nil {
		return err
	}
	if err := b.Set(keys.HardStateKey(id), data, nil); err != nil {
		return fmt.Errorf("raftstore: region %d: write hard state: %w", id, err)
	}
	as := &raftserverpb.RaftApplyState{AppliedIndex: initLogIndex, TruncatedIndex: initLogIndex, TruncatedTerm: initLogTerm}
	if err := putProto(b, keys.ApplyStateKey(id), as); err != nil {
		return err
	}
	return putProto(b, keys.RegionStateKey(id), &raftserverpb.RegionLocalState{Region: region})
}
