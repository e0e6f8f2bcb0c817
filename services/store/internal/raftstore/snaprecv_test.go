package raftstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// snapStream builds the chunks a sender would send for region's data kvs
// (engine keys, in order), chunk keys per chunk, with a correct digest.
func snapStream(t *testing.T, region *metapb.Region, kvs [][2][]byte, chunk int) []*raftserverpb.SnapshotChunk {
	t.Helper()
	data, err := proto.Marshal(&raftserverpb.SnapshotMeta{Region: region, GcSafePoint: 42})
	if err != nil {
		t.Fatal(err)
	}
	m := raftpb.Message{Type: raftpb.MsgSnap, To: 2, From: 1, Term: 3,
		Snapshot: &raftpb.Snapshot{Data: data, Metadata: raftpb.SnapshotMetadata{Index: 10, Term: 3}}}
	mdata, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := []*raftserverpb.SnapshotChunk{{Message: &raftserverpb.RaftMessage{RegionId: region.GetId(), Message: mdata}}}
	sum := newSnapDigest()
	for i, kv := range kvs {
		if i > 0 && i%chunk == 0 {
			out = append(out, &raftserverpb.SnapshotChunk{})
		}
		c := out[len(out)-1]
		c.Kvs = append(c.Kvs, &raftserverpb.SnapshotKV{Key: kv[0], Value: kv[1]})
		sum.add(kv[0], kv[1])
	}
	return append(out, &raftserverpb.SnapshotChunk{Digest: sum.proto()})
}

func feed(chunks []*raftserverpb.SnapshotChunk, failAt int) func() (*raftserverpb.SnapshotChunk, error) {
	i := 0
	return func() (*raftserverpb.SnapshotChunk, error) {
		if i == failAt {
			return nil, errors.New("connection reset")
		}
		if i == len(chunks) {
			return nil, io.EOF
		}
		i++
		return chunks[i-1], nil
	}
}

func dataKey(cf byte, k string) []byte {
	return keys.EncodeBytes([]byte{cf}, []byte(k))
}

func snapRegion() *metapb.Region {
	return &metapb.Region{Id: 7, StartKey: []byte("b"), EndKey: []byte("m"),
		RegionEpoch: &metapb.RegionEpoch{Version: 2, ConfVer: 1}, Peers: []*metapb.Peer{{Id: 71, StoreId: 1}, {Id: 72, StoreId: 2}}}
}

// snapKVs is the region's data in engine order: every column family.
func snapKVs(n int, valueSize int) [][2][]byte {
	var out [][2][]byte
	for _, cf := range keys.CFs {
		for i := range n {
			v := make([]byte, valueSize)
			for j := range v {
				v[j] = byte(i + j + int(cf))
			}
			out = append(out, [2][]byte{dataKey(cf, fmt.Sprintf("c%05d", i)), v})
		}
	}
	return out
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestReceivedSnapshotIngests: a stream becomes several SST files (rolled
// by size, one span per column family) whose ingest replaces exactly the
// region's data: old keys in its range are gone, keys of neighbours stay,
// and every received key reads back.
func TestReceivedSnapshotIngests(t *testing.T) {
	defer func(old int) { snapFileTarget = old }(snapFileTarget)
	snapFileTarget = 64 << 10
	work := t.TempDir()
	db, err := pebble.Open(filepath.Join(work, "db"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	region := snapRegion()
	// Stale data inside the region (must go) and neighbours' (must stay),
	// both flushed and in the memtable.
	for _, cf := range keys.CFs {
		for _, k := range []string{"a", "bz-stale", "c00003", "l-stale", "m", "z"} {
			if err := db.Set(dataKey(cf, k), []byte("old"), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Set(dataKey(keys.CFWrite, "d-memtable-stale"), []byte("old"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	kvs := snapKVs(100, 4<<10)
	snapDir := filepath.Join(work, "snap")
	_, in, err := receiveSnapshot(snapDir, db.FormatMajorVersion().MaxTableFormat(), feed(snapStream(t, region, kvs, 7), -1))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.files) < 6 || in.keys != uint64(len(kvs)) {
		t.Fatalf("%d files, %d keys; want rolled files (>= 6) and %d keys", len(in.files), in.keys, len(kvs))
	}
	if err := db.Ingest(in.files); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	in.remove()
	if ents := dirEntries(t, snapDir); len(ents) != 0 {
		t.Fatalf("snapshot directory not emptied: %v", ents)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	got := map[string]string{}
	for it.First(); it.Valid(); it.Next() {
		got[string(it.Key())] = string(it.Value())
	}
	for _, kv := range kvs {
		if v, ok := got[string(kv[0])]; !ok || v != string(kv[1]) {
			t.Fatalf("key %x: found %v, value matches %v", kv[0], ok, v == string(kv[1]))
		}
		delete(got, string(kv[0]))
	}
	want := map[string]string{}
	for _, cf := range keys.CFs {
		for _, k := range []string{"a", "m", "z"} {
			want[string(dataKey(cf, k))] = "old"
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outside the snapshot's keys the engine holds %q, want the neighbours' %q", got, want)
	}
}

// TestBadSnapshotStreamsLeaveNothing: streams out of order, outside the
// region, cut short (a broken connection, or no digest) or with a wrong
// digest are refused, and their files are removed.
func TestBadSnapshotStreamsLeaveNothing(t *testing.T) {
	defer func(old int) { snapFileTarget = old }(snapFileTarget)
	snapFileTarget = 16 << 10
	region := snapRegion()
	good := snapKVs(40, 1<<10)
	swapped := append([][2][]byte(nil), good...)
	swapped[50], swapped[51] = swapped[51], swapped[50]
	outside := append([][2][]byte(nil), good...)
	outside = append(outside, [2][]byte{dataKey(keys.CFWrite, "n"), []byte("x")})
	cases := []struct {
		name   string
		chunks []*raftserverpb.SnapshotChunk
		failAt int
		bad    bool // the error wraps ErrBadSnapshot
	}{
		{"out of order", snapStream(t, region, swapped, 5), -1, true},
		{"outside the region", snapStream(t, region, outside, 5), -1, true},
		{"broken stream", snapStream(t, region, good, 5), 15, false},
	}
	noDigest := snapStream(t, region, good, 5)
	cases = append(cases, struct {
		name   string
		chunks []*raftserverpb.SnapshotChunk
		failAt int
		bad    bool
	}{"no digest", noDigest[:len(noDigest)-1], -1, true})
	wrong := snapStream(t, region, good, 5)
	d := proto.Clone(wrong[len(wrong)-1].Digest).(*raftserverpb.SnapshotDigest)
	d.Crc32C++
	wrong[len(wrong)-1] = &raftserverpb.SnapshotChunk{Digest: d}
	cases = append(cases, struct {
		name   string
		chunks []*raftserverpb.SnapshotChunk
		failAt int
		bad    bool
	}{"wrong digest", wrong, -1, true})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, in, err := receiveSnapshot(dir, pebble.FormatNewest.MaxTableFormat(), feed(tc.chunks, tc.failAt))
			if err == nil {
				in.remove()
				t.Fatal("stream accepted")
			}
			if errors.Is(err, ErrBadSnapshot) != tc.bad {
				t.Fatalf("error %v: wraps ErrBadSnapshot = %v, want %v", err, !tc.bad, tc.bad)
			}
			if ents := dirEntries(t, dir); len(ents) != 0 {
				t.Fatalf("files left behind: %v", ents)
			}
		})
	}
}

// TestOpenForgetsInterruptedApplyWithoutFiles: a store that stopped
// between marking a snapshot APPLYING and writing its apply state, and
// whose snapshot files are gone, starts (it used to refuse: "a snapshot
// apply was interrupted"), with the region's data and log cleared, its peer
// forgotten until the leader recreates it, and its vote kept.
func TestOpenForgetsInterruptedApplyWithoutFiles(t *testing.T) {
	db := memDB(t)
	region := snapRegion()
	b := db.NewBatch()
	if err := putProto(b, keys.StoreIdentKey, &raftserverpb.StoreIdent{StoreId: 2, ClusterId: 7, Nonce: 1}); err != nil {
		t.Fatal(err)
	}
	if err := putProto(b, keys.RegionStateKey(region.GetId()), &raftserverpb.RegionLocalState{Region: region, State: raftserverpb.PeerState_APPLYING}); err != nil {
		t.Fatal(err)
	}
	hs := raftpb.HardState{Term: 9, Vote: 71, Commit: 20}
	hsData, _ := hs.Marshal()
	mustSet := func(k, v []byte) {
		if err := b.Set(k, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	mustSet(keys.HardStateKey(region.GetId()), hsData)
	if err := putProto(b, keys.ApplyStateKey(region.GetId()), &raftserverpb.RaftApplyState{AppliedIndex: 20, TruncatedIndex: 15, TruncatedTerm: 8}); err != nil {
		t.Fatal(err)
	}
	for i := uint64(16); i <= 20; i++ {
		e := raftpb.Entry{Index: i, Term: 8}
		data, _ := e.Marshal()
		mustSet(keys.RaftLogKey(region.GetId(), i), data)
	}
	for _, cf := range keys.CFs {
		mustSet(dataKey(cf, "c"), []byte("half"))
		mustSet(dataKey(cf, "z"), []byte("neighbour"))
	}
	commit(t, b)

	s, err := Open(Config{StoreID: 2}, db, nil, "", nil, nil)
	if err != nil {
		t.Fatalf("open after an interrupted snapshot apply: %v", err)
	}
	if s.getPeer(region.GetId()) != nil {
		t.Fatal("the half-applied region was loaded as a peer")
	}
	if got := s.Stats().SnapshotAppliesForgotten.Load(); got != 1 {
		t.Fatalf("applies undone: %d", got)
	}
	for _, cf := range keys.CFs {
		if _, ok, _ := getValue(db, dataKey(cf, "c")); ok {
			t.Fatalf("half-applied data left in column family %c", cf)
		}
		if _, ok, _ := getValue(db, dataKey(cf, "z")); !ok {
			t.Fatalf("a neighbour's data was deleted in column family %c", cf)
		}
	}
	for _, k := range [][]byte{keys.RegionStateKey(region.GetId()), keys.ApplyStateKey(region.GetId()), keys.RaftLogKey(region.GetId(), 18)} {
		if _, ok, _ := getValue(db, k); ok {
			t.Fatalf("%x still there", k)
		}
	}
	// The peer the leader's next message creates starts from the kept vote.
	ps, err := loadPeerStorage(db, &metapb.Region{Id: region.GetId()})
	if err != nil {
		t.Fatalf("load the recreated peer: %v", err)
	}
	if ps.hardState.Term != 9 || ps.hardState.Vote != 71 || ps.hardState.Commit != 0 || ps.lastIndex != 0 {
		t.Fatalf("recreated peer: hard state %+v, last index %d; want term 9, vote 71, commit 0, empty log", ps.hardState, ps.lastIndex)
	}
}

// TestOpenFinishesInterruptedApply: a store that stopped after marking a
// snapshot APPLYING, before or after ingesting its files, starts with the
// apply completed from the kept files: the region's data is the
// snapshot's, its log is truncated at the snapshot's index, the hard state
// commits it, and the snapshot directory is emptied.
func TestOpenFinishesInterruptedApply(t *testing.T) {
	for _, ingested := range []bool{false, true} {
		t.Run(fmt.Sprintf("ingested=%v", ingested), func(t *testing.T) {
			work := t.TempDir()
			db, err := pebble.Open(filepath.Join(work, "db"), &pebble.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			snapDir := filepath.Join(work, "snap")
			region := snapRegion()
			kvs := snapKVs(30, 100)
			_, in, err := receiveSnapshot(snapDir, db.FormatMajorVersion().MaxTableFormat(), feed(snapStream(t, region, kvs, 7), -1))
			if err != nil {
				t.Fatal(err)
			}
			if ingested {
				if err := ingestKeeping(db, in.files); err != nil {
					t.Fatal(err)
				}
			}
			ap := &raftserverpb.SnapshotApplyState{Index: 10, Term: 3}
			for _, f := range in.files {
				rel, _ := filepath.Rel(snapDir, f)
				ap.Files = append(ap.Files, rel)
			}
			b := db.NewBatch()
			if err := putProto(b, keys.StoreIdentKey, &raftserverpb.StoreIdent{StoreId: 2, ClusterId: 7, Nonce: 1}); err != nil {
				t.Fatal(err)
			}
			if err := putProto(b, keys.RegionStateKey(region.GetId()), &raftserverpb.RegionLocalState{Region: region, State: raftserverpb.PeerState_APPLYING, Applying: ap}); err != nil {
				t.Fatal(err)
			}
			hs := raftpb.HardState{Term: 2, Vote: 71, Commit: 4}
			hsData, _ := hs.Marshal()
			if err := b.Set(keys.HardStateKey(region.GetId()), hsData, nil); err != nil {
				t.Fatal(err)
			}
			if err := b.Set(dataKey(keys.CFDefault, "c-stale"), []byte("old"), nil); err != nil {
				t.Fatal(err)
			}
			commit(t, b)

			s, err := Open(Config{StoreID: 2, SnapshotDir: snapDir}, db, nil, "", nil, nil)
			if err != nil {
				t.Fatalf("open after an interrupted snapshot apply: %v", err)
			}
			p := s.getPeer(region.GetId())
			if p == nil {
				t.Fatal("the region's peer was not loaded")
			}
			if p.storage.appliedIndex() != 10 || p.storage.truncatedIndex() != 10 || p.storage.lastIndex != 10 {
				t.Fatalf("applied %d, truncated %d, last %d; want 10", p.storage.appliedIndex(), p.storage.truncatedIndex(), p.storage.lastIndex)
			}
			if h := p.storage.hardState; h.Term != 3 || h.Vote != 0 || h.Commit != 10 {
				t.Fatalf("hard state %+v; want term 3 (no vote in it), commit 10", h)
			}
			if got := s.Stats().SnapshotAppliesResumed.Load(); got != 1 {
				t.Fatalf("applies resumed: %d", got)
			}
			st := &raftserverpb.RegionLocalState{}
			if _, err := getProto(db, keys.RegionStateKey(region.GetId()), st); err != nil || st.GetState() != raftserverpb.PeerState_NORMAL || st.GetApplying() != nil {
				t.Fatalf("region state %v, %v", st, err)
			}
			for _, kv := range kvs {
				if v, ok, err := getValue(db, kv[0]); err != nil || !ok || string(v) != string(kv[1]) {
					t.Fatalf("key %x after the apply: found %v, %v", kv[0], ok, err)
				}
			}
			if _, ok, _ := getValue(db, dataKey(keys.CFDefault, "c-stale")); ok {
				t.Fatal("stale data in the region survived")
			}
			if ents := dirEntries(t, snapDir); len(ents) != 0 {
				t.Fatalf("snapshot directory not emptied: %v", ents)
			}
		})
	}
}

// TestRangeMinus: the parts of a peer's old range that a snapshot's range
// leaves out (deleted before the ingest), and nothing beyond the old range.
func TestRangeMinus(t *testing.T) {
	b := func(s string) []byte {
		if s == "" {
			return nil
		}
		return []byte(s)
	}
	cases := []struct {
		s1, e1, s2, e2 string
		want           string
	}{
		{"b", "m", "b", "m", "[]"},
		{"b", "m", "b", "g", `[["g" "m"]]`},
		{"b", "m", "d", "m", `[["b" "d"]]`},
		{"b", "m", "d", "g", `[["b" "d"] ["g" "m"]]`},
		{"", "", "d", "g", `[["" "d"] ["g" ""]]`},
		{"b", "", "b", "g", `[["g" ""]]`},
		{"b", "m", "a", "", "[]"},
		{"b", "d", "g", "m", `[["b" "d"]]`},
		{"g", "m", "b", "d", `[["g" "m"]]`},
	}
	for _, tc := range cases {
		var parts []string
		for _, r := range rangeMinus(b(tc.s1), b(tc.e1), b(tc.s2), b(tc.e2)) {
			parts = append(parts, fmt.Sprintf("[%q %q]", r[0], r[1]))
		}
		if got := "[" + strings.Join(parts, " ") + "]"; got != tc.want {
			t.Errorf("[%q,%q) minus [%q,%q) = %s, want %s", tc.s1, tc.e1, tc.s2, tc.e2, got, tc.want)
		}
	}
}
