package kvclient

import (
	"errors"
	"slices"
	"testing"

	"github.com/nokv/nokv/api/limits"
)

// Rolling back to a savepoint restores the buffered writes (new keys
// dropped, overwritten and deleted ones restored, nested savepoints too),
// the size and a misuse error, and the commit sends what is left.
func TestRollbackToSavepoint(t *testing.T) {
	w := oneRegion(t)
	c := w.client(Options{})
	ctx := testCtx(t)
	txn, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = txn.Set([]byte("a"), []byte("1"), 0)
	_ = txn.Set([]byte("b"), []byte("1"), 0)
	sp := txn.Savepoint()
	size := txn.Size()
	_ = txn.Set([]byte("a"), []byte("2"), 0)
	_ = txn.Delete([]byte("b"))
	_ = txn.Set([]byte("c"), []byte("2"), 0)
	inner := txn.Savepoint()
	_ = txn.Set([]byte("c"), []byte("3"), 0)
	if err := txn.Set([]byte("d"), make([]byte, limits.MaxValueSize+1), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized Set = %v", err)
	}
	txn.RollbackTo(inner)
	if e, ok, _ := txn.Get(ctx, []byte("c")); !ok || string(e.Value) != "2" {
		t.Fatalf("c after the inner rollback = %q, %v; want 2", e.Value, ok)
	}
	txn.RollbackTo(sp)
	if txn.Size() != size || txn.Len() != 2 {
		t.Fatalf("size %d, len %d after rollback; want %d, 2", txn.Size(), txn.Len(), size)
	}
	for k, want := range map[string]string{"a": "1", "b": "1"} {
		if e, ok, err := txn.Get(ctx, []byte(k)); err != nil || !ok || string(e.Value) != want {
			t.Fatalf("%s after rollback = %q, %v, %v; want %s", k, e.Value, ok, err, want)
		}
	}
	_ = txn.Set([]byte("e"), []byte("5"), 0)
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	pw := w.callsOf("Prewrite")
	if len(pw) != 1 || !slices.Equal(pw[0].keys, []string{"a", "b", "e"}) {
		t.Fatalf("prewrites %+v: want one of a, b, e", pw)
	}
}
