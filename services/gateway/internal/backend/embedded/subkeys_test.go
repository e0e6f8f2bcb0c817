package embedded

import (
	"context"
	"errors"
	"fmt"
	"github.com/cockroachdb/pebble"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

var subOpts = backend.WriteOptions{SubKeys: true}

// hset writes a hash the way the command layer will: the metadata record at
// the Redis key, one sub-key per field, in one Update that names the Redis
// key only.
func hset(t *testing.T, s *Store, c context.Context, db uint32, key string, version uint64, fields ...string) {
	t.Helper()
	k := keyspace.Key(db, []byte(key))
	err := s.Update(c, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		st := tx.(backend.SubTxn)
		for i := 0; i+1 < len(fields); i += 2 {
			st.SetSub(keyspace.SubKey(db, []byte(key), version, keyspace.KindHashField, []byte(fields[i])), []byte(fields[i+1]))
		}
		tx.Set(k, backend.Value{Type: backend.TypeHash, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: version, Count: uint64(len(fields) / 2)})})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fields reads a hash's version through ScanSub, as HGETALL will.
func fields(t *testing.T, s *Store, db uint32, key string, version uint64) string {
	t.Helper()
	var out string
	k := keyspace.Key(db, []byte(key))
	err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		out = ""
		start, end := keyspace.KindRange(db, []byte(key), version, keyspace.KindHashField)
		return tx.(backend.SubTxn).ScanSub(start, end, 0, func(sub, val []byte) bool {
			p, err := keyspace.SplitSubKey(sub)
			if err != nil {
				t.Error(err)
				return false
			}
			out += fmt.Sprintf("%s=%s ", p.Elem, val)
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Inside one Update, sub-key reads see the Update's own writes, deletions
// and range deletions merged over what is committed; a failing Update
// leaves none of its sub-key writes behind.
func TestSubKeysReadOwnWritesAndRollBack(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	hset(t, s, ctx, 0, "h", 7, "a", "1", "b", "2", "c", "3")
	k := keyspace.Key(0, []byte("h"))
	f := func(name string) []byte {
		return keyspace.SubKey(0, []byte("h"), 7, keyspace.KindHashField, []byte(name))
	}
	err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		st := tx.(backend.SubTxn)
		st.SetSub(f("d"), []byte("4"))
		st.DeleteSub(f("a"))
		if v, ok, err := st.GetSub(f("d")); err != nil || !ok || string(v) != "4" {
			return fmt.Errorf("own write: %q %v %v", v, ok, err)
		}
		if _, ok, err := st.GetSub(f("a")); err != nil || ok {
			return fmt.Errorf("own delete still visible: %v %v", ok, err)
		}
		var seen []string
		start, end := keyspace.KindRange(0, []byte("h"), 7, keyspace.KindHashField)
		if err := st.ScanSub(start, end, 2, func(sub, val []byte) bool {
			p, _ := keyspace.SplitSubKey(sub)
			seen = append(seen, string(p.Elem)+"="+string(val))
			return true
		}); err != nil {
			return err
		}
		if fmt.Sprint(seen) != "[b=2 c=3]" {
			return fmt.Errorf("scan with limit 2 = %v", seen)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
	if got := fields(t, s, 0, "h", 7); got != "a=1 b=2 c=3 " {
		t.Fatalf("after a failed Update: %q", got)
	}
	// A committed range deletion of the version, then a new version: only
	// the new one's fields exist.
	err = s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		start, end := keyspace.VersionRange(0, []byte("h"), 7)
		if err := tx.(backend.SubTxn).DeleteSubRange(start, end); err != nil {
			return err
		}
		tx.Delete(k)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hset(t, s, ctx, 0, "h", 8, "z", "26")
	if got := fields(t, s, 0, "h", 7); got != "" {
		t.Fatalf("reclaimed version still holds %q", got)
	}
	if got := fields(t, s, 0, "h", 8); got != "z=26 " {
		t.Fatalf("new version = %q", got)
	}
}

// Sub-keys are not Redis keys: scans, counters and RANDOMKEY of a database
// see the metadata record only; FLUSHDB takes the database's sub-keys with
// it and SWAPDB moves them; both survive a reopen.
func TestSubKeysAndDatabases(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &clock{})
	hset(t, s, ctx, 1, "h1", 1, "f", "one")
	hset(t, s, ctx, 2, "h2", 1, "f", "two")
	setDB(t, s, 3, "s", "str", 0)
	for db, want := range map[uint32]int64{1: 1, 2: 1, 3: 1} {
		if st := statsDB(t, s, db); st.Keys != want {
			t.Fatalf("db %d counts %d keys, want %d", db, st.Keys, want)
		}
		var keys []string
		if _, err := s.Scan(ctx, backend.ScanOptions{Prefix: keyspace.Prefix(db)}, func(ki backend.KeyInfo) bool {
			keys = append(keys, string(keyspace.UserKey(ki.Key)))
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 {
			t.Fatalf("db %d scans as %q", db, keys)
		}
	}
	if err := s.SwapDB(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	if got := fields(t, s, 1, "h2", 1); got != "f=two " {
		t.Fatalf("db 1 after SWAPDB: %q", got)
	}
	if got := fields(t, s, 2, "h1", 1); got != "f=one " {
		t.Fatalf("db 2 after SWAPDB: %q", got)
	}
	if got := fields(t, s, 1, "h1", 1); got != "" {
		t.Fatalf("db 1 kept its old sub-keys: %q", got)
	}
	if err := s.FlushDB(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := fields(t, s, 1, "h2", 1); got != "" {
		t.Fatalf("FLUSHDB left sub-keys: %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, &clock{})
	if got := fields(t, s, 2, "h1", 1); got != "f=one " {
		t.Fatalf("db 2 after reopen: %q", got)
	}
	if v, ok := getDB(t, s, 3, "s"); !ok || v != "str" {
		t.Fatalf("string key after all that: %q %v", v, ok)
	}
}

// Under the event loop's batch context, sub-key writes join the batch
// (with or without the SubKeys option): the commands after them see them,
// a failing or panicking command leaves none of its own behind, a version
// created and killed within the batch leaves no element, and the batch's
// Sync commits them with the whole-key writes.
func TestSubKeysUnderBatch(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	bc := s.Batch(ctx)
	setIn(t, s, bc, "before", "v", 0)
	hset(t, s, bc, 0, "h", 1, "f", "v")
	if v, ok, err := s.Get(bc, sk("before")); err != nil || !ok || string(v.Data) != "v" {
		t.Fatalf("grouped write before the sub-key Update: %q %v %v", v.Data, ok, err)
	}
	k := keyspace.Key(0, []byte("h"))
	sub := func(f string) []byte { return keyspace.SubKey(0, []byte("h"), 1, keyspace.KindHashField, []byte(f)) }
	// read returns the fields of h as a grouped command sees them.
	read := func() string {
		t.Helper()
		var out string
		err := s.Update(bc, backend.WriteOptions{}, [][]byte{k}, func(tx backend.Txn) error {
			st := tx.(backend.SubTxn)
			if _, ok, err := st.GetSub(sub("f")); err != nil || !ok {
				return fmt.Errorf("GetSub f: %v %v", ok, err)
			}
			start, end := keyspace.KindRange(0, []byte("h"), 1, keyspace.KindHashField)
			return st.ScanSub(start, end, 0, func(key, val []byte) bool {
				p, _ := keyspace.SplitSubKey(key)
				out += fmt.Sprintf("%s=%s ", p.Elem, val)
				return true
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := read(); got != "f=v " {
		t.Fatalf("fields seen under the batch: %q", got)
	}
	hset(t, s, bc, 0, "h", 1, "f", "v", "g", "w")
	failed := errors.New("failed")
	err := s.Update(bc, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		st := tx.(backend.SubTxn)
		st.SetSub(sub("x"), []byte("1"))
		st.DeleteSub(sub("f"))
		tx.Delete(k)
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("failing Update = %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = s.Update(bc, subOpts, [][]byte{k}, func(tx backend.Txn) error {
			tx.(backend.SubTxn).SetSub(sub("y"), []byte("1"))
			panic("testing")
		})
	}()
	if got := read(); got != "f=v g=w " {
		t.Fatalf("fields after a failed and a panicking Update: %q", got)
	}
	// A version created and killed in the batch.
	tk := keyspace.Key(0, []byte("tmp"))
	err = s.Update(bc, subOpts, [][]byte{tk}, func(tx backend.Txn) error {
		st := tx.(backend.SubTxn)
		ver, err := st.NewVersion(tk)
		if err != nil {
			return err
		}
		st.SetSub(keyspace.SubKey(0, []byte("tmp"), ver, keyspace.KindHashField, []byte("a")), []byte("1"))
		tx.Set(tk, backend.Value{Type: backend.TypeHash, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: ver, Count: 1})})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	delIn(t, s, bc, "tmp")
	if n := subKeyCount(t, s); n != 0 {
		t.Fatalf("%d sub-keys committed before the batch's Sync, want 0", n)
	}
	if err := s.Sync(bc); err != nil {
		t.Fatal(err)
	}
	if got := fields(t, s, 0, "h", 1); got != "f=v g=w " {
		t.Fatalf("hash written under a batch: %q", got)
	}
	if n := subKeyCount(t, s); n != 2 {
		t.Fatalf("%d sub-keys after the batch, want 2", n)
	}
}

// subKeyCount counts every sub-key in the store, of any key and version.
func subKeyCount(t *testing.T, s *Store) int {
	t.Helper()
	start, _ := keyspace.SubKeyRange(0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: appendDataKey(nil, start), UpperBound: []byte{familyData + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// A write that kills a collection's version — DEL, SET of a string over it,
// a new version, expiry — deletes that version's elements in the same
// batch, plain or under the event loop's batch; a write that keeps the
// version (a field added) keeps them.
func TestDeadVersionsAreReclaimed(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1000)
	s := openTest(t, t.TempDir(), clk)
	bc := s.Batch(ctx)
	kills := map[string]func(c context.Context){
		"DEL":          func(c context.Context) { delIn(t, s, c, "h") },
		"SET":          func(c context.Context) { setIn(t, s, c, "h", "str", 0) },
		"new version":  func(c context.Context) { hset(t, s, c, 0, "h", 2, "x", "y") },
		"expire+sweep": nil,
	}
	for name, kill := range kills {
		for _, c := range []context.Context{ctx, bc} {
			delIn(t, s, ctx, "h")
			hset(t, s, ctx, 0, "h", 1, "a", "1", "b", "2")
			hset(t, s, ctx, 0, "h", 1, "a", "1", "b", "2", "c", "3") // same version: kept
			if n := subKeyCount(t, s); n != 3 {
				t.Fatalf("%s: %d sub-keys before, want 3", name, n)
			}
			want := 0
			if kill == nil {
				k := keyspace.Key(0, []byte("h"))
				if err := s.Update(ctx, backend.WriteOptions{}, [][]byte{k}, func(tx backend.Txn) error {
					v, _, err := tx.Get(k)
					v.ExpiresAt = clk.now() + 10
					tx.Set(k, v)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				clk.advance(20)
				if n, err := s.SweepExpired(); err != nil || n != 1 {
					t.Fatalf("sweep = %d %v", n, err)
				}
			} else {
				kill(c)
				if name == "new version" {
					want = 1
				}
			}
			if err := s.Sync(c); err != nil {
				t.Fatal(err)
			}
			if n := subKeyCount(t, s); n != want {
				t.Fatalf("%s (batched %v): %d sub-keys left, want %d", name, c != ctx, n, want)
			}
		}
	}
}

// NewVersion increases, and stays above the key's committed version even
// when that one is expired and the clock has gone back (a restart on a
// machine whose clock was set back): the new incarnation never inherits
// the old one's elements.
func TestNewVersion(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1_000_000)
	s := openTest(t, t.TempDir(), clk)
	k := keyspace.Key(0, []byte("h"))
	next := func() uint64 {
		var v uint64
		if err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
			var err error
			v, err = tx.(backend.SubTxn).NewVersion(k)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := next(), next()
	if b <= a || a < 1_000_000<<versionShift {
		t.Fatalf("versions %d then %d", a, b)
	}
	far := uint64(5_000_000) << versionShift
	if err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error {
		tx.Set(k, backend.Value{Type: backend.TypeHash, ExpiresAt: 1_000_001, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: far, Count: 1})})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	clk.advance(10)        // the hash has expired, not yet swept
	s.lastVersion.Store(0) // as after a restart
	if v := next(); v <= far {
		t.Fatalf("new version %d not above the expired incarnation's %d", v, far)
	}
}

// A version created and killed in the same Update (MULTI: HSET h, DEL h,
// HSET h) is reclaimed in its batch: the committed state held neither
// incarnation, so appendReclaim alone would leave the first one's
// elements behind.
func TestVersionCreatedAndKilledInOneUpdate(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	k := keyspace.Key(0, []byte("h"))
	write := func(tx backend.Txn, field string) error {
		sub := tx.(backend.SubTxn)
		v, err := sub.NewVersion(k)
		if err != nil {
			return err
		}
		sub.SetSub(keyspace.SubKey(0, []byte("h"), v, keyspace.KindHashField, []byte(field)), []byte("1"))
		tx.Set(k, backend.Value{Type: backend.TypeHash, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: v, Count: 1})})
		return nil
	}
	for _, c := range []struct {
		name string
		left int
		fn   func(tx backend.Txn) error
	}{
		{"create, delete, create", 1, func(tx backend.Txn) error {
			if err := write(tx, "a"); err != nil {
				return err
			}
			tx.Delete(k)
			return write(tx, "b")
		}},
		{"create, delete", 0, func(tx backend.Txn) error {
			if err := write(tx, "a"); err != nil {
				return err
			}
			tx.Delete(k)
			return nil
		}},
		{"create, replace by a string", 0, func(tx backend.Txn) error {
			if err := write(tx, "a"); err != nil {
				return err
			}
			tx.Set(k, backend.Value{Type: backend.TypeString, Data: []byte("v")})
			return nil
		}},
	} {
		del(t, s, "h")
		if err := s.Update(ctx, backend.WriteOptions{SubKeys: true}, [][]byte{k}, c.fn); err != nil {
			t.Fatal(err)
		}
		if n := subKeyCount(t, s); n != c.left {
			t.Fatalf("%s: %d sub-keys left, want %d", c.name, n, c.left)
		}
	}
}

// The job-queue cycle (RPUSH one element, LPOP it: the list is created and
// emptied every cycle) reclaims each dead version with the pop's own point
// deletion, never a range deletion, and leaves no element behind. A small
// collection killed by DEL, plain or batched, is deleted key by key too;
// only one of more than smallReclaim elements costs a range deletion.
func TestQueueCycleLeavesNoRangeDeletion(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	base := rangeReclaims.Load()
	k := keyspace.Key(0, []byte("q"))
	for i := range 200 {
		var ver uint64
		if err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error { // RPUSH q job
			st := tx.(backend.SubTxn)
			var err error
			if ver, err = st.NewVersion(k); err != nil {
				return err
			}
			st.SetSub(keyspace.SubKey(0, []byte("q"), ver, keyspace.KindListIndex, []byte("0")), []byte(fmt.Sprint("job", i)))
			tx.Set(k, backend.Value{Type: backend.TypeList, Data: keyspace.AppendMeta(nil, keyspace.Meta{Version: ver, Count: 1})})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(ctx, subOpts, [][]byte{k}, func(tx backend.Txn) error { // LPOP q
			tx.(backend.SubTxn).DeleteSub(keyspace.SubKey(0, []byte("q"), ver, keyspace.KindListIndex, []byte("0")))
			tx.Delete(k)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := subKeyCount(t, s); n != 0 {
		t.Fatalf("queue cycles left %d sub-keys", n)
	}
	if n := rangeReclaims.Load() - base; n != 0 {
		t.Fatalf("queue cycles left %d range deletions", n)
	}

	for _, c := range []struct {
		fields  int
		batched bool
		ranges  int64
	}{{smallReclaim, false, 0}, {smallReclaim, true, 0}, {smallReclaim + 1, false, 1}, {smallReclaim + 1, true, 1}} {
		base := rangeReclaims.Load()
		var kv []string
		for i := range c.fields {
			kv = append(kv, fmt.Sprint("f", i), "v")
		}
		hset(t, s, ctx, 0, "h", 1, kv...)
		bc := ctx
		if c.batched {
			bc = s.Batch(ctx)
		}
		delIn(t, s, bc, "h")
		if err := s.Sync(bc); err != nil {
			t.Fatal(err)
		}
		if n := subKeyCount(t, s); n != 0 {
			t.Fatalf("DEL of %d fields (batched %v) left %d sub-keys", c.fields, c.batched, n)
		}
		if n := rangeReclaims.Load() - base; n != c.ranges {
			t.Fatalf("DEL of %d fields (batched %v) wrote %d range deletions, want %d", c.fields, c.batched, n, c.ranges)
		}
	}
}
