package raftstore

import (
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// claimed records an identity in db as a claim from PD would, so a unit
// test opens the store without a PD.
func claimed(t *testing.T, db *pebble.DB, id uint64) {
	t.Helper()
	b := db.NewBatch()
	if err := putProto(b, keys.StoreIdentKey, &raftserverpb.StoreIdent{StoreId: id, ClusterId: 7, Nonce: 1}); err != nil {
		t.Fatal(err)
	}
	commit(t, b)
}

// TestGCSafePointSurvivesRestart: the safe point of applied GC commands and
// snapshots is persisted with them, so a restarted store refuses reads
// below it before it hears from PD; one only heard from PD is not.
func TestGCSafePointSurvivesRestart(t *testing.T) {
	db := memDB(t)
	claimed(t, db, 1)
	open := func() *Store {
		s, err := Open(Config{StoreID: 1}, db, nil, "127.0.0.1:0", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if sp := s.GCSafePoint(); sp != 0 {
		t.Fatalf("new store: safe point %d", sp)
	}
	b := db.NewBatch()
	for _, sp := range []uint64{500, 300} {
		if err := s.recordGCSafePoint(b, sp); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, b)
	s.RaiseGCSafePoint(900) // from PD: memory only
	s.RaiseGCSafePoint(100)
	if sp := s.GCSafePoint(); sp != 900 {
		t.Fatalf("safe point %d, want 900", sp)
	}
	if sp := open().GCSafePoint(); sp != 500 {
		t.Fatalf("after a restart the safe point is %d, want the recorded 500", sp)
	}
}
