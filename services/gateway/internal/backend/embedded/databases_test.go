package embedded

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

func setDB(t *testing.T, s *Store, db uint32, key, val string, expiresAt int64) {
	t.Helper()
	k := keyspace.Key(db, []byte(key))
	if err := s.Update(ctx, backend.WriteOptions{}, [][]byte{k}, func(tx backend.Txn) error {
		tx.Set(k, backend.Value{Type: backend.TypeString, Data: []byte(val), ExpiresAt: expiresAt})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func getDB(t *testing.T, s *Store, db uint32, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(ctx, keyspace.Key(db, []byte(key)))
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Data), ok
}

func statsDB(t *testing.T, s *Store, db uint32) backend.Stats {
	t.Helper()
	st, err := s.Stats(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// SWAPDB exchanges data, counters and expiry index entries of two
// databases, so the sweeper still finds the swapped keys; FLUSHDB removes
// one database's data, counters and index entries and nothing else.
func TestSwapDBAndFlushDB(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1000)
	s := openTest(t, t.TempDir(), clk)
	setDB(t, s, 1, "a", "1a", 0)
	setDB(t, s, 1, "t", "1t", 5000)
	setDB(t, s, 2, "b", "2b", 0)
	setDB(t, s, 3, "c", "3c", 6000)
	if err := s.SwapDB(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if v, ok := getDB(t, s, 2, "a"); !ok || v != "1a" {
		t.Fatalf("db 2 a = %q %v", v, ok)
	}
	if v, ok := getDB(t, s, 1, "b"); !ok || v != "2b" {
		t.Fatalf("db 1 b = %q %v", v, ok)
	}
	if _, ok := getDB(t, s, 1, "a"); ok {
		t.Fatal("db 1 still holds a")
	}
	if st := statsDB(t, s, 2); st.Keys != 2 || st.Expires != 1 {
		t.Fatalf("db 2 counters %+v", st)
	}
	if st := statsDB(t, s, 1); st.Keys != 1 || st.Expires != 0 {
		t.Fatalf("db 1 counters %+v", st)
	}
	dbs, err := s.Keyspace(ctx)
	if err != nil || len(dbs) != 3 || dbs[0].DB != 1 || dbs[1].DB != 2 || dbs[2].DB != 3 {
		t.Fatalf("keyspace %+v %v", dbs, err)
	}
	// The moved index entry drives the sweeper in the new database.
	clk.ms.Store(5500)
	if n, err := s.SweepExpired(); err != nil || n != 1 {
		t.Fatalf("sweep = %d %v", n, err)
	}
	if st := statsDB(t, s, 2); st.Keys != 1 || st.Expires != 0 {
		t.Fatalf("db 2 counters after the sweep %+v", st)
	}
	if err := s.FlushDB(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n := indexEntries(t, s); n != 0 {
		t.Fatalf("%d index entries left after FLUSHDB 3", n)
	}
	if st := statsDB(t, s, 3); st.Keys != 0 {
		t.Fatalf("db 3 counters %+v", st)
	}
	if v, ok := getDB(t, s, 1, "b"); !ok || v != "2b" {
		t.Fatalf("FLUSHDB 3 touched db 1: %q %v", v, ok)
	}
	dbs, err = s.Keyspace(ctx)
	if err != nil || len(dbs) != 2 {
		t.Fatalf("keyspace after FLUSHDB %+v %v", dbs, err)
	}
	// A swap with an empty database moves everything over.
	if err := s.SwapDB(ctx, 2, 9); err != nil {
		t.Fatal(err)
	}
	if v, ok := getDB(t, s, 9, "a"); !ok || v != "1a" || statsDB(t, s, 2).Keys != 0 || statsDB(t, s, 9).Keys != 1 {
		t.Fatalf("after SWAPDB 2 9: a = %q %v, counters %+v %+v", v, ok, statsDB(t, s, 2), statsDB(t, s, 9))
	}
}
