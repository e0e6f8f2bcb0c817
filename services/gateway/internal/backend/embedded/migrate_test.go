package embedded

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// copyFixture copies testdata/v1-workdir (written by the release before
// databases, see gen-v1-workdir.sh) into a fresh directory.
func copyFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("testdata", "v1-workdir")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fixtureKeys are the keys gen-v1-workdir.sh writes besides key:0..299,
// with their values and expiries.
var fixtureKeys = []struct {
	key, val  string
	expiresAt int64
}{
	{"plain", "hello", 0},
	{"counter", "42", 0},
	{"", "empty-key", 0},
	{"\x00\x00\x00\x01abc", "looks-like-db1", 0},
	{"bin\x00\xff", "v\x00\xff", 0},
	{"ttl", "value", 4102444800000},
	{"pttl", "value", 4102444800123},
}

const fixtureCount = 300 + 7

// checkMigrated checks that every key of the fixture reads in database 0,
// with its value and expiry, that nothing leaked into another database,
// and that the counters are exact.
func checkMigrated(t *testing.T, s *Store) {
	t.Helper()
	for _, k := range fixtureKeys {
		v, ok, err := s.Get(ctx, keyspace.Key(0, []byte(k.key)))
		if err != nil || !ok || string(v.Data) != k.val || v.ExpiresAt != k.expiresAt || v.Type != backend.TypeString {
			t.Fatalf("key %q: %+v %v %v, want %q expiring at %d", k.key, v, ok, err, k.val, k.expiresAt)
		}
	}
	for i := 0; i < 300; i += 37 {
		if v, ok, _ := s.Get(ctx, sk("key:"+itoa(i))); !ok || string(v.Data) != "val:"+itoa(i) {
			t.Fatalf("key:%d = %q %v", i, v.Data, ok)
		}
	}
	if _, ok, _ := s.Get(ctx, keyspace.Key(1, []byte("abc"))); ok {
		t.Fatal("a format-1 key that looks like a database-1 key was read as one")
	}
	if _, ok, _ := s.Get(ctx, sk("soon")); ok {
		t.Fatal("an expired key came back")
	}
	// Every stored key, live or expired, is counted (as Redis counts
	// expired keys not yet removed): "soon" may or may not have been swept.
	var n, expiring int64
	if _, err := s.Scan(ctx, backend.ScanOptions{Prefix: keyspace.Prefix(0)}, func(ki backend.KeyInfo) bool {
		n++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != fixtureCount || st.Keys < n || st.Keys > n+1 {
		t.Fatalf("%d live keys, counters %+v; want %d live", n, st, fixtureCount)
	}
	expiring = 2
	if st.Expires < expiring || st.Expires > expiring+1 || st.Expires-expiring != st.Keys-n {
		t.Fatalf("counters %+v for %d live keys of which %d expire", st, n, expiring)
	}
	dbs, err := s.Keyspace(ctx)
	if err != nil || len(dbs) != 1 || dbs[0].DB != 0 {
		t.Fatalf("keyspace %+v %v, want database 0 alone", dbs, err)
	}
	// Nothing is left in format 1's families.
	for _, f := range []byte{v1FamilyData, v1FamilyExpiry, v1FamilyCounter} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{f}, UpperBound: []byte{f + 1}})
		if err != nil {
			t.Fatal(err)
		}
		if it.First() {
			t.Fatalf("family %q still holds %q", f, it.Key())
		}
		it.Close()
	}
}

func itoa(i int) string { return string(appendInt(nil, i)) }

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

// A workdir written by the previous release opens: every key is in
// database 0 with its expiry, new writes work, it reopens, and the
// migrated expiry index still drives the sweeper.
func TestOpensV1Workdir(t *testing.T) {
	dir := copyFixture(t)
	clk := &clock{}
	clk.ms.Store(1_800_000_000_000)
	s, err := Open(Options{Dir: dir, Sync: SyncAlways, Now: clk.now, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	checkMigrated(t, s)
	setIn(t, s, ctx, "new", "1", 0)
	if err := s.Update(ctx, backend.WriteOptions{}, [][]byte{keyspace.Key(3, []byte("plain"))}, func(tx backend.Txn) error {
		tx.Set(keyspace.Key(3, []byte("plain")), backend.Value{Type: backend.TypeString, Data: []byte("db3")})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Dir: dir, Sync: SyncAlways, Now: clk.now, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok, _ := s.Get(ctx, sk("plain")); !ok || string(v.Data) != "hello" {
		t.Fatalf("after reopen plain = %q %v", v.Data, ok)
	}
	if v, ok, _ := s.Get(ctx, keyspace.Key(3, []byte("plain"))); !ok || string(v.Data) != "db3" {
		t.Fatalf("db 3 plain = %q %v", v.Data, ok)
	}
	before, _ := s.Stats(ctx, 0)
	// Past both deadlines the sweeper removes the two keys with expiry.
	clk.ms.Store(4102444800124)
	for {
		n, err := s.SweepExpired()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	after, _ := s.Stats(ctx, 0)
	if after.Keys != before.Keys-before.Expires || after.Expires != 0 {
		t.Fatalf("after sweeping: %+v, before %+v", after, before)
	}
}

// errStop stands for a crash in the middle of the migration.
var errStop = errors.New("stopped for the test")

// A migration stopped part way (a crash between two batches) resumes at
// the next open and ends with the same store as one that ran through.
func TestMigrationResumesAfterStop(t *testing.T) {
	dir := copyFixture(t)
	defer func(n int) { migrateBatchKeys = n }(migrateBatchKeys)
	migrateBatchKeys = 40
	for stopAfter := 1; stopAfter <= 3; stopAfter++ {
		testingMigrateBatchDone = func(batches int) error {
			if batches == stopAfter {
				return errStop
			}
			return nil
		}
		_, err := Open(Options{Dir: dir, Sync: SyncAlways, SweepInterval: 1 << 62})
		testingMigrateBatchDone = nil
		if !errors.Is(err, errStop) {
			t.Fatalf("open with a stop after %d batches: %v", stopAfter, err)
		}
	}
	s, err := Open(Options{Dir: dir, Sync: SyncAlways, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkMigrated(t, s)
}

// A store of a newer format than this binary knows is refused, untouched.
func TestRefusesNewerFormat(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &clock{})
	set(t, s, "k", "v", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Merger: counterMerger})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(versionKey, []byte{0, 0, 0, keyspace.FormatVersion + 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Dir: dir})
	if !errors.Is(err, keyspace.ErrFormatTooNew) {
		t.Fatalf("open of a format-%d store: %v", keyspace.FormatVersion+1, err)
	}
	// The directory was released: a second try gives the same answer, not
	// "locked".
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, keyspace.ErrFormatTooNew) {
		t.Fatalf("second open: %v", err)
	}
}

// A format-2 store (before collections) is upgraded at open by rewriting
// the record: its keys stay as they are.
func TestFormat2StoreUpgrades(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &clock{})
	set(t, s, "k", "v", 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Merger: counterMerger})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(versionKey, []byte{0, 0, 0, keyspace.Format2}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, &clock{})
	if v, ok, err := s.Get(ctx, sk("k")); err != nil || !ok || string(v.Data) != "v" {
		t.Fatalf("k after the upgrade: %q %v %v", v.Data, ok, err)
	}
	raw, closer, err := s.db.Get(versionKey)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	if string(raw) != string([]byte{0, 0, 0, keyspace.FormatVersion}) || keyspace.FormatVersion != 3 {
		t.Fatalf("format record %x after opening a format-2 store", raw)
	}
}
