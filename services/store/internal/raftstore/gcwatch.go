package raftstore

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/nokv/nokv/services/store/internal/keys"
)

// gcNote is what applied commands can tell MVCC GC about a region's write
// records: the lowest commit_ts of a write record they put, and whether
// they changed the write records in any other way (deleted one, deleted a
// range, split the region, replaced its data with a snapshot, or ran a
// command not read modify by modify). See Store.WatchGC.
type gcNote struct {
	minTS uint64 // math.MaxUint64: none put
	dirty bool
}

func newGCNote() gcNote { return gcNote{minTS: math.MaxUint64} }

// put notes a key written by a command: a write record's timestamp.
func (n *gcNote) put(key []byte) {
	if len(key) < 1+8 || key[0] != keys.CFWrite {
		return
	}
	if ts := ^binary.BigEndian.Uint64(key[len(key)-8:]); ts < n.minTS {
		n.minTS = ts
	}
}

// del notes a key deleted by a command: only write records matter to GC.
func (n *gcNote) del(key []byte) {
	if len(key) > 0 && key[0] == keys.CFWrite {
		n.dirty = true
	}
}

func (n *gcNote) merge(o gcNote) {
	n.minTS = min(n.minTS, o.minTS)
	n.dirty = n.dirty || o.dirty
}

// gcWatch accumulates the gcNotes of a peer's applied commands since GC
// last started watching (token).
type gcWatch struct {
	mu    sync.Mutex
	token uint64 // 0: nobody watches
	note  gcNote
}

// noteApplied folds in what commands now in the engine did. It runs after
// their batch commits, never before: a GC pass that starts watching after
// this call opens its iterator later still, so it sees them.
func (p *peer) noteApplied(n gcNote) {
	p.gcWatch.mu.Lock()
	p.gcWatch.note.merge(n)
	p.gcWatch.mu.Unlock()
}

// foldApplyNote hands the applied commands' note to the watch once their
// batch is in the engine, and starts the next.
func (p *peer) foldApplyNote() {
	p.noteApplied(p.applyNote)
	p.applyNote = newGCNote()
}

// WatchGC starts watching the region's applied commands for MVCC GC and
// returns the watch's token (ok: the region has a peer here). Everything
// applied to the region here from now on, until the next WatchGC of the
// region, is summed up for GCWritesSince; so a GC pass that calls WatchGC
// before it reads the engine knows afterwards what it may not have seen.
// Tokens are never reused by any peer of this store, past or present.
func (s *Store) WatchGC(regionID uint64) (token uint64, ok bool) {
	p := s.getPeer(regionID)
	if p == nil {
		return 0, false
	}
	token = s.gcTokens.Add(1)
	p.gcWatch.mu.Lock()
	p.gcWatch.token = token
	p.gcWatch.note = newGCNote()
	p.gcWatch.mu.Unlock()
	return token, true
}

// GCWritesSince reports what the commands applied to the region here since
// WatchGC returned token did to its write records: clean when all they did
// was put write records, the lowest of whose commit timestamps is minTS
// (math.MaxUint64: none). It is not clean if the watch is gone (the peer
// was replaced, or another WatchGC started a new one).
func (s *Store) GCWritesSince(regionID, token uint64) (minTS uint64, clean bool) {
	p := s.getPeer(regionID)
	if p == nil {
		return 0, false
	}
	p.gcWatch.mu.Lock()
	defer p.gcWatch.mu.Unlock()
	if token == 0 || p.gcWatch.token != token || p.gcWatch.note.dirty {
		return 0, false
	}
	return p.gcWatch.note.minTS, true
}
