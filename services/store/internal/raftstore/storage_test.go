package raftstore

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

func memDB(t *testing.T) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testRegion() *metapb.Region {
	return &metapb.Region{Id: 7, RegionEpoch: &metapb.RegionEpoch{Version: 1, ConfVer: 1},
		Peers: []*metapb.Peer{{Id: 71, StoreId: 1}, {Id: 72, StoreId: 2}, {Id: 73, StoreId: 3, Role: metapb.PeerRole_LEARNER}}}
}

func ents(term uint64, lo, hi uint64) []raftpb.Entry {
	var out []raftpb.Entry
	for i := lo; i < hi; i++ {
		out = append(out, raftpb.Entry{Index: i, Term: term, Data: []byte{byte(i)}})
	}
	return out
}

func commit(t *testing.T, b *pebble.Batch) {
	t.Helper()
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func TestPeerStorageInitialStateAndAppend(t *testing.T) {
	db := memDB(t)
	b := db.NewBatch()
	if err := writeInitialState(b, testRegion()); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	s, err := loadPeerStorage(db, testRegion())
	if err != nil {
		t.Fatal(err)
	}
	hs, cs, _ := s.InitialState()
	if hs.Term != initLogTerm || hs.Commit != initLogIndex || len(cs.Voters) != 2 || len(cs.Learners) != 1 {
		t.Fatalf("initial state %+v %+v", hs, cs)
	}
	if fi, _ := s.FirstIndex(); fi != initLogIndex+1 {
		t.Fatalf("first index %d", fi)
	}
	if term, err := s.Term(initLogIndex); err != nil || term != initLogTerm {
		t.Fatalf("Term(%d) = %d, %v", initLogIndex, term, err)
	}
	if _, err := s.Term(initLogIndex - 1); !errors.Is(err, raft.ErrCompacted) {
		t.Fatalf("Term below truncation: %v", err)
	}

	b = db.NewBatch()
	if err := s.appendEntries(b, ents(6, 6, 20)); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	// A new leader overwrites the tail from 15.
	b = db.NewBatch()
	if err := s.appendEntries(b, ents(7, 15, 17)); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if li, _ := s.LastIndex(); li != 16 {
		t.Fatalf("last index %d, want 16", li)
	}
	for _, check := range []*peerStorage{s, mustLoad(t, db)} {
		got, err := check.Entries(6, 17, 0)
		if err != nil || len(got) != 11 || got[8].Term != 6 || got[9].Term != 7 || got[10].Index != 16 {
			t.Fatalf("entries after overwrite: %v, %v", got, err)
		}
		if _, err := check.Entries(6, 18, 0); !errors.Is(err, raft.ErrUnavailable) {
			t.Fatalf("entries past the end: %v", err)
		}
		if got, _ := check.Entries(6, 17, 1); len(got) != 1 {
			t.Fatalf("maxSize 1 returned %d entries", len(got))
		}
	}

	// Truncation needs the entries applied.
	s.applyState.AppliedIndex = 12
	b = db.NewBatch()
	if err := s.truncate(b, 10); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	for _, check := range []*peerStorage{s, mustLoad(t, db)} {
		if fi, _ := check.FirstIndex(); fi != 11 {
			t.Fatalf("first index after truncate %d", fi)
		}
		if _, err := check.Entries(10, 12, 0); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("truncated entries readable: %v", err)
		}
		if term, err := check.Term(10); err != nil || term != 6 {
			t.Fatalf("Term(truncated index) = %d, %v", term, err)
		}
	}
}

func mustLoad(t *testing.T, db *pebble.DB) *peerStorage {
	t.Helper()
	s, err := loadPeerStorage(db, testRegion())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenRejectsForeignAndCorruptState(t *testing.T) {
	db := memDB(t)
	b := db.NewBatch()
	if err := putProto(b, keys.StoreIdentKey, &raftserverpb.StoreIdent{StoreId: 2}); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	if _, err := Open(Config{StoreID: 1}, db, nil, "", nil, nil); err == nil || err.Error() != "raftstore: the data directory belongs to store 2, not 1" {
		t.Fatalf("foreign store: %v", err)
	}
	db2 := memDB(t)
	if err := db2.Set(keys.RegionStateKey(9), []byte{0xff, 0xff}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{StoreID: 1}, db2, nil, "", nil, nil); !errors.Is(err, errCorruptState) {
		t.Fatalf("corrupt region state: %v", err)
	}
}

// TestPeerStorageCacheRandom appends, overwrites and truncates at random and
// checks the in-memory tail against the log in Pebble after every step: the
// cache stays contiguous, ends at the last index, within its bound, and
// holds exactly the entries the engine has.
func TestPeerStorageCacheRandom(t *testing.T) {
	db := memDB(t)
	b := db.NewBatch()
	if err := writeInitialState(b, testRegion()); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	s, err := loadPeerStorage(db, testRegion())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	term := uint64(6)
	for step := 0; step < 3000; step++ {
		b := db.NewBatch()
		switch r := rng.IntN(100); {
		case r < 3 && s.lastIndex > s.truncatedIndex()+2:
			// A new leader overwrites part of the tail.
			term++
			from := s.lastIndex - uint64(rng.IntN(int(min(s.lastIndex-s.truncatedIndex()-1, 40))))
			if err := s.appendEntries(b, ents(term, from, from+1+uint64(rng.IntN(5)))); err != nil {
				t.Fatal(err)
			}
		case r < 6 && s.lastIndex > s.truncatedIndex()+10:
			s.applyState.AppliedIndex = s.lastIndex
			upTo := s.truncatedIndex() + 1 + uint64(rng.IntN(int(s.lastIndex-s.truncatedIndex()-1)))
			if err := s.truncate(b, upTo); err != nil {
				t.Fatal(err)
			}
		default:
			n := uint64(1)
			if rng.IntN(10) == 0 {
				n = uint64(1 + rng.IntN(600))
			}
			if err := s.appendEntries(b, ents(term, s.lastIndex+1, s.lastIndex+1+n)); err != nil {
				t.Fatal(err)
			}
		}
		commit(t, b)
		if len(s.cache) > maxCachedEntries {
			t.Fatalf("step %d: %d entries cached, bound %d", step, len(s.cache), maxCachedEntries)
		}
		if len(s.cache) == 0 {
			continue
		}
		if last := s.cache[len(s.cache)-1].Index; last != s.lastIndex {
			t.Fatalf("step %d: cache ends at %d, last index %d", step, last, s.lastIndex)
		}
		if s.cache[0].Index <= s.truncatedIndex() {
			t.Fatalf("step %d: cache starts at %d, truncated at %d", step, s.cache[0].Index, s.truncatedIndex())
		}
		fresh := mustLoad(t, db)
		fresh.cache = nil // read the engine
		want, err := fresh.Entries(s.cache[0].Index, s.lastIndex+1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range s.cache {
			if w := want[i]; e.Index != w.Index || e.Term != w.Term || !bytes.Equal(e.Data, w.Data) {
				t.Fatalf("step %d: cached %d/%d, engine has %d/%d", step, e.Index, e.Term, w.Index, w.Term)
			}
		}
	}
}

// TestPeerStorageAppendDoesNotCopyCache: appending one entry to a full cache
// must not allocate a copy of the whole cache (it did for every entry, ~50 KB
// each, on every replica of a busy region).
func TestPeerStorageAppendDoesNotCopyCache(t *testing.T) {
	db := memDB(t)
	b := db.NewBatch()
	if err := writeInitialState(b, testRegion()); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	s, err := loadPeerStorage(db, testRegion())
	if err != nil {
		t.Fatal(err)
	}
	b = db.NewBatch()
	if err := s.appendEntries(b, ents(6, s.lastIndex+1, s.lastIndex+1+2*maxCachedEntries)); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
	const appends = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range appends {
		b := db.NewBatch()
		if err := s.appendEntries(b, ents(6, s.lastIndex+1, s.lastIndex+2)); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	runtime.ReadMemStats(&after)
	// Each append allocates its entry, the marshal buffer and the log key;
	// a copy of the cache would be maxCachedEntries entries of ~48 bytes.
	if per := (after.TotalAlloc - before.TotalAlloc) / appends; per > 4<<10 {
		t.Fatalf("%d bytes allocated per append of one entry to a full cache", per)
	}
}
