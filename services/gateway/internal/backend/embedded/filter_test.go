package embedded

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Collection filters (filter.go) at the backend: every answer of GetSub
// matches a model of what was written, whatever the filters hold, under
// growth, deletions, rolled-back writes, eviction, the group and SWAPDB.

func member(db uint32, key string, version uint64, m string) []byte {
	return keyspace.SubKey(db, []byte(key), version, keyspace.KindSetMember, []byte(m))
}

// probe reads members until the collection has a filter (or n reads).
func probeMisses(t *testing.T, s *Store, db uint32, key string, version uint64, n int) {
	t.Helper()
	k := keyspace.Key(db, []byte(key))
	err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		for i := range n {
			if _, _, err := tx.(backend.SubTxn).GetSub(member(db, key, version, fmt.Sprint("absent", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func has(t *testing.T, s *Store, db uint32, key string, version uint64, m string) bool {
	t.Helper()
	var found bool
	k := keyspace.Key(db, []byte(key))
	err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		var err error
		_, found, err = tx.(backend.SubTxn).GetSub(member(db, key, version, m))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// A filter answers absent without reading, and present elements are found:
// a model of random adds, removals and failed (rolled-back) commands over
// a few collections, inside groups and out, with a budget small enough
// that filters are evicted and rebuilt.
func TestFilterModel(t *testing.T) {
	for _, grouped := range []bool{false, true} {
		t.Run(fmt.Sprintf("grouped=%v", grouped), func(t *testing.T) {
			s := openTest(t, t.TempDir(), &clock{})
			s.filters = newSubFilters(8 << 10) // a few filters of 1024 keys
			rng := rand.New(rand.NewPCG(3, 4))
			const colls = 12
			model := make([]map[string]bool, colls)
			for i := range model {
				model[i] = map[string]bool{}
			}
			c := ctx
			if grouped {
				c = s.Batch(ctx)
			}
			errFail := errors.New("the command fails")
			skipped, falsePos, built := filterSkipped.Value(), filterFalsePos.Value(), filterBuilds.Value()
			for step := range 30000 {
				i := rng.IntN(colls)
				key := fmt.Sprint("s", i)
				k := keyspace.Key(0, []byte(key))
				m := fmt.Sprint("m", rng.IntN(3000))
				op := rng.IntN(10)
				var got bool
				err := s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
					st := tx.(backend.SubTxn)
					var err error
					_, got, err = st.GetSub(member(0, key, 1, m))
					if err != nil {
						return err
					}
					switch {
					case op < 5:
						st.SetSub(member(0, key, 1, m), nil)
					case op < 7:
						st.DeleteSub(member(0, key, 1, m))
					case op < 8:
						// Written, then the command fails: rolled back.
						st.SetSub(member(0, key, 1, m+"x"), nil)
						return errFail
					}
					return nil
				})
				if err != nil && !errors.Is(err, errFail) {
					t.Fatal(err)
				}
				if got != model[i][m] {
					t.Fatalf("step %d: %s %s found=%v, want %v", step, key, m, got, model[i][m])
				}
				switch {
				case op < 5:
					model[i][m] = true
				case op < 7:
					delete(model[i], m)
				}
				if grouped && rng.IntN(8) == 0 {
					if err := s.Sync(c); err != nil {
						t.Fatal(err)
					}
				}
			}
			if grouped {
				if err := s.Sync(c); err != nil {
					t.Fatal(err)
				}
			}
			for i := range colls {
				for m := range model[i] {
					if !has(t, s, 0, fmt.Sprint("s", i), 1, m) {
						t.Fatalf("s%d lost %s", i, m)
					}
				}
				for j := range 3000 {
					if m := fmt.Sprint("m", j, "x"); has(t, s, 0, fmt.Sprint("s", i), 1, m) {
						t.Fatalf("s%d holds %s, written by a failed command", i, m)
					}
				}
			}
			n, builds := s.FilterStats()
			if builds <= colls || s.filters.bytes > s.filters.budget {
				t.Fatalf("%d filters held, %d built, %d bytes over %d: want rebuilds and evictions within the budget",
					n, builds, s.filters.bytes, s.filters.budget)
			}
			// The process-wide counters an operator reads (nokv_coll_filter).
			if filterSkipped.Value() == skipped || filterBuilds.Value()-built < builds || filterFalsePos.Value() < falsePos {
				t.Fatalf("nokv_coll_filter: reads_skipped %d → %d, builds %d → %d (store built %d)",
					skipped, filterSkipped.Value(), built, filterBuilds.Value(), builds)
			}
			t.Logf("%d filters held, %d built, %d reads skipped, %d false positives", n, builds,
				filterSkipped.Value()-skipped, filterFalsePos.Value()-falsePos)
		})
	}
}

// SWAPDB moves sub-keys to the other database's prefix without SetSub: a
// filter built for one database's collection must not answer for the one
// swapped in, even at the same key and version.
func TestFilterSwapDB(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	add := func(db uint32, m string) {
		k := keyspace.Key(db, []byte("s"))
		err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
			tx.(backend.SubTxn).SetSub(member(db, "s", 9, m), nil)
			tx.Set(k, backend.Value{Type: backend.TypeSet, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: 9, Count: 1})})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add(0, "zero")
	add(1, "one")
	probeMisses(t, s, 0, "s", 9, filterMisses)
	probeMisses(t, s, 1, "s", 9, filterMisses)
	if n, _ := s.FilterStats(); n != 2 {
		t.Fatalf("%d filters, want 2", n)
	}
	if err := s.SwapDB(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if !has(t, s, 0, "s", 9, "one") || !has(t, s, 1, "s", 9, "zero") {
		t.Fatal("a swapped collection's member is not found")
	}
	if has(t, s, 0, "s", 9, "zero") || has(t, s, 1, "s", 9, "one") {
		t.Fatal("a member stayed behind the swap")
	}
}

// A filter is built from the holder's pending writes too: elements written
// earlier in the same group, not yet committed, are found after the build.
func TestFilterBuiltOverPendingWrites(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	c := s.Batch(ctx)
	k := keyspace.Key(0, []byte("s"))
	err := s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		tx.(backend.SubTxn).SetSub(member(0, "s", 5, "pending"), nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		for i := range filterMisses {
			if _, _, err := tx.(backend.SubTxn).GetSub(member(0, "s", 5, fmt.Sprint("absent", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.FilterStats(); n != 1 {
		t.Fatalf("%d filters, want 1", n)
	}
	err = s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		if _, ok, err := tx.(backend.SubTxn).GetSub(member(0, "s", 5, "pending")); err != nil || !ok {
			return fmt.Errorf("pending member: found=%v err=%v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(c); err != nil {
		t.Fatal(err)
	}
	if !has(t, s, 0, "s", 5, "pending") {
		t.Fatal("member lost after the commit")
	}
}

// Only a holder of the key builds its filter: a txn that did not latch it
// (a command reading another key's elements) counts misses but builds
// nothing, since another txn may hold elements of it not yet committed.
func TestFilterNotBuiltWithoutTheLatch(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	other := keyspace.Key(0, []byte("other"))
	err := s.Update(ctx, subOpts, [][]byte{other}, func(tx backend.Txn) error {
		for i := range 4 * filterMisses {
			if _, _, err := tx.(backend.SubTxn).GetSub(member(0, "s", 5, fmt.Sprint("absent", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, builds := s.FilterStats(); n != 0 || builds != 0 {
		t.Fatalf("%d filters, %d built without the key's latch", n, builds)
	}
}

// A collection with more filtered elements than maxKeys gets no filter:
// its scan stops at the bound, once, and its reads go to Pebble.
func TestFilterTooBig(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	s.filters = newSubFilters(4 << 10)
	limit := s.filters.maxKeys()
	k := keyspace.Key(0, []byte("s"))
	err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		for i := range limit + 1 {
			tx.(backend.SubTxn).SetSub(member(0, "s", 3, fmt.Sprint("m", i)), nil)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	probeMisses(t, s, 0, "s", 3, 4*filterMisses)
	if n, builds := s.FilterStats(); n != 0 || builds != 0 {
		t.Fatalf("%d filters, %d built for a collection over %d elements", n, builds, limit)
	}
	if len(s.filters.tooBig) != 1 {
		t.Fatalf("%d prefixes remembered as too big, want 1", len(s.filters.tooBig))
	}
	for i := range limit + 1 {
		if !has(t, s, 0, "s", 3, fmt.Sprint("m", i)) {
			t.Fatalf("m%d not found", i)
		}
	}
}
