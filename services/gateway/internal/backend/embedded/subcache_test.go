package embedded

import (
	"context"
	"errors"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Elements a group commits go into the key cache, and a GetSub under a
// later group answers from there only while no write of the element is
// pending: a pending SetSub, DeleteSub or DeleteSubRange (committed or not,
// rolled back or not) is read through the batch, never the cached state.
func TestElementCacheSeesPendingWrites(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	k := keyspace.Key(0, []byte("h"))
	sub := func(f string) []byte { return keyspace.SubKey(0, []byte("h"), 1, keyspace.KindHashField, []byte(f)) }
	// update runs fn as one command of group c.
	update := func(c context.Context, fn func(st backend.SubTxn) error) error {
		return s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
			if err := fn(tx.(backend.SubTxn)); err != nil {
				return err
			}
			tx.Set(k, backend.Value{Type: backend.TypeHash, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: 1, Count: 1})})
			return nil
		})
	}
	// get reads f as a command of group c does.
	get := func(c context.Context, f string) (string, bool) {
		t.Helper()
		var v []byte
		var ok bool
		err := s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
			var err error
			v, ok, err = tx.(backend.SubTxn).GetSub(sub(f))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return string(v), ok
	}
	cached := func(f string) (string, bool, bool) {
		st, hit := s.cache.get(sub(f), nil)
		return string(st.v.Data), st.found, hit
	}
	want := func(c context.Context, f, val string, found bool) {
		t.Helper()
		if v, ok := get(c, f); v != val || ok != found {
			t.Fatalf("GetSub %s = %q %v, want %q %v", f, v, ok, val, found)
		}
	}
	sync := func(c context.Context) {
		t.Helper()
		if err := s.Sync(c); err != nil {
			t.Fatal(err)
		}
	}

	g := s.Batch(ctx)
	if err := update(g, func(st backend.SubTxn) error {
		st.SetSub(sub("a"), []byte("1"))
		st.SetSub(sub("b"), []byte("1"))
		st.SetSub(sub("b"), []byte("2")) // the batch's last write wins
		st.SetSub(sub("c"), []byte("1"))
		st.DeleteSub(sub("c"))
		st.SetSub(sub("e"), nil)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, hit := cached("a"); hit {
		t.Fatal("a cached before its batch is applied")
	}
	sync(g)
	for _, c := range []struct {
		f, v  string
		found bool
	}{{"a", "1", true}, {"b", "2", true}, {"c", "", false}, {"e", "", true}} {
		v, found, hit := cached(c.f)
		if !hit || v != c.v || found != c.found {
			t.Fatalf("cache after commit: %s = %q %v (hit %v), want %q %v", c.f, v, found, hit, c.v, c.found)
		}
	}
	// An empty element is there, and not nil: HSET h e "" reads it back.
	if v, ok := get(ctx, "e"); !ok || v != "" {
		t.Fatalf("e = %q %v", v, ok)
	}

	// Pending writes in the next iteration are read through the batch.
	g = s.Batch(ctx)
	if err := update(g, func(st backend.SubTxn) error {
		st.SetSub(sub("a"), []byte("new"))
		st.DeleteSub(sub("b"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want(g, "a", "new", true)
	want(g, "b", "", false)
	// A command that fails after writing leaves the cache without its write.
	failed := errors.New("failed")
	if err := update(g, func(st backend.SubTxn) error {
		st.SetSub(sub("a"), []byte("rolled back"))
		st.SetSub(sub("e"), []byte("rolled back"))
		return failed
	}); !errors.Is(err, failed) {
		t.Fatalf("failing update = %v", err)
	}
	want(g, "a", "new", true)
	want(g, "e", "", true)
	sync(g)
	want(ctx, "a", "new", true)
	want(ctx, "b", "", false)
	want(ctx, "e", "", true)
	if v, found, hit := cached("e"); hit && (!found || v != "") {
		t.Fatalf("cache holds a rolled-back write of e: %q %v", v, found)
	}

	// A range deletion drops what the cache holds of its range.
	g = s.Batch(ctx)
	if err := update(g, func(st backend.SubTxn) error {
		st.SetSub(sub("d"), []byte("1"))
		start, end := keyspace.KindRange(0, []byte("h"), 1, keyspace.KindHashField)
		return st.DeleteSubRange(start, end)
	}); err != nil {
		t.Fatal(err)
	}
	want(g, "a", "", false)
	want(g, "d", "", false)
	sync(g)
	want(ctx, "a", "", false)
	want(ctx, "d", "", false)
	want(ctx, "e", "", false)
}
