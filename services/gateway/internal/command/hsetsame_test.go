package command

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
)

// countingBackend counts the sub-key writes of the commands it runs.
type countingBackend struct {
	backend.Backend
	sets *atomic.Int64
}

func (b countingBackend) Update(ctx context.Context, opts backend.WriteOptions, keys [][]byte, fn func(backend.Txn) error) error {
	return b.Backend.Update(ctx, opts, keys, func(tx backend.Txn) error {
		if st, ok := tx.(backend.SubTxn); ok {
			return fn(countingTxn{Txn: tx, SubTxn: st, sets: b.sets})
		}
		return fn(tx)
	})
}

type countingTxn struct {
	backend.Txn
	backend.SubTxn
	sets *atomic.Int64
}

func (t countingTxn) SetSub(sub, val []byte) {
	t.sets.Add(1)
	t.SubTxn.SetSub(sub, val)
}

// HSET of a field to the value it holds writes no element (a memtable
// insert saved per request of redis-benchmark's HSET after its first
// pass), and still touches the key as Redis does: a WATCH of it aborts
// the EXEC.
func TestHSetSameValueWritesNoElement(t *testing.T) {
	st, err := embedded.Open(embedded.Options{Dir: t.TempDir(), Sync: embedded.SyncNo})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	var sets atomic.Int64
	e := New(countingBackend{Backend: st, sets: &sets}, Options{})
	c := e.NewClient("127.0.0.1:1", "127.0.0.1:2")
	w := e.NewClient("127.0.0.1:3", "127.0.0.1:4")
	expect := func(c *Client, want string, args ...string) {
		t.Helper()
		if got := do(t, e, c, args...); got != want {
			t.Fatalf("%q = %q, want %q", args, got, want)
		}
	}
	expect(c, ":2\r\n", "HSET", "h", "f", "v", "g", "v")
	if n := sets.Load(); n != 2 {
		t.Fatalf("%d element writes for two new fields, want 2", n)
	}
	expect(c, ":0\r\n", "HSET", "h", "f", "v")
	expect(c, ":0\r\n", "HSET", "h", "f", "v", "g", "v")
	if n := sets.Load(); n != 2 {
		t.Fatalf("%d element writes after HSETs of the values held, want 2", n)
	}
	expect(c, ":0\r\n", "HSET", "h", "f", "w", "f", "v")
	if n := sets.Load(); n != 4 { // f is written twice: to w, then back to v
		t.Fatalf("%d element writes after HSET h f w f v, want 4", n)
	}
	expect(c, "$1\r\nv\r\n", "HGET", "h", "f")
	expect(c, ":2\r\n", "HLEN", "h")

	expect(w, "+OK\r\n", "WATCH", "h")
	expect(c, ":0\r\n", "HSET", "h", "f", "v")
	expect(w, "+OK\r\n", "MULTI")
	expect(w, "+QUEUED\r\n", "HGET", "h", "f")
	expect(w, "*-1\r\n", "EXEC")
}
