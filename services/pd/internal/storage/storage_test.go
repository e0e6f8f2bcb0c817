package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func open(t *testing.T, dir string) *Storage {
	t.Helper()
	start := time.Now()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	t.Logf("opened in %v", time.Since(start))
	return s
}

func TestPutGetScanAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	// More keys than one scan page, to cover the paging.
	const n = 2*scanPage + 17
	b := s.NewBatch()
	for i := range uint64(n) {
		b.Put(RegionKey(i), fmt.Appendf(nil, "r%d", i))
	}
	b.PutUint64(KeyIDHighWater, 42)
	b.Put(StoreKey(1), []byte("s1"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	d := s.NewBatch()
	d.Delete(RegionKey(5))
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = open(t, dir)
	defer s.Close()
	if v, err := s.GetUint64(KeyIDHighWater); err != nil || v != 42 {
		t.Fatalf("id mark = %d, %v; want 42", v, err)
	}
	if _, ok, err := s.Get(RegionKey(5)); err != nil || ok {
		t.Fatalf("deleted key: ok=%v err=%v", ok, err)
	}
	var got []uint64
	err := s.Scan(PrefixRegion, func(k, v []byte) error {
		id := binary.BigEndian.Uint64(k[len(PrefixRegion):])
		if want := fmt.Sprintf("r%d", id); string(v) != want {
			return fmt.Errorf("key %d holds %q, want %q", id, v, want)
		}
		got = append(got, id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n-1 {
		t.Fatalf("scan returned %d keys, want %d", len(got), n-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("scan out of order at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	// The scan stops at the prefix: the store key is not a region.
	stores := 0
	_ = s.Scan(PrefixStore, func(_, _ []byte) error { stores++; return nil })
	if stores != 1 {
		t.Fatalf("stores scanned = %d, want 1", stores)
	}
	if f, _, _ := s.Get(KeyFormat); string(f) != formatEtcd {
		t.Fatalf("format = %q, want %q", f, formatEtcd)
	}
}

func TestGetUint64Corrupt(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	b := s.NewBatch()
	b.Put(KeyTSOHighWater, []byte("abc"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64(KeyTSOHighWater); err == nil {
		t.Fatal("a 3-byte mark read without error")
	}
}

func TestGuard(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	k := "election/x"
	ctx, cancel := s.ctx()
	defer cancel()
	put, err := s.Client().Put(ctx, k, "me")
	if err != nil {
		t.Fatal(err)
	}
	s.SetGuard([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(k), "=", put.Header.Revision)})
	b := s.NewBatch()
	b.PutUint64(KeyTSOHighWater, 1)
	if err := b.Commit(); err != nil {
		t.Fatalf("commit under a holding guard: %v", err)
	}
	if _, err := s.Client().Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	b = s.NewBatch()
	b.PutUint64(KeyTSOHighWater, 2)
	if err := b.Commit(); !errors.Is(err, ErrGuardFailed) {
		t.Fatalf("commit after the guard key went = %v, want ErrGuardFailed", err)
	}
	if v, _ := s.GetUint64(KeyTSOHighWater); v != 1 {
		t.Fatalf("mark = %d after a refused commit, want 1", v)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	// In one process Pebble's lock reports itself held; across processes
	// (nokv-pd twice) the error is ErrLocked. Either way the second open
	// fails at once instead of hanging on etcd's own file locks.
	if s2, err := Open(dir, nil); err == nil {
		s2.Close()
		t.Fatal("a second Open of a held workdir succeeded")
	}
}

// writePebble builds a workdir the way the PD before etcd did: a Pebble
// store directly in the workdir, written with synced sets.
func writePebble(t *testing.T, dir string, kv map[string][]byte) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		if err := db.Set([]byte(k), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestImportPebble(t *testing.T) {
	dir := t.TempDir()
	old := map[string][]byte{
		string(KeyIDHighWater):  binary.BigEndian.AppendUint64(nil, 5000),
		string(KeyTSOHighWater): binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(time.Hour).UnixMilli())),
		string(KeyClusterID):    binary.BigEndian.AppendUint64(nil, 77),
		string(KeyBootstrapped): []byte("1"),
		string(RegionKey(1)):    []byte("region one"),
		string(StoreKey(1)):     []byte("store one"),
		string(ClaimKey(1)):     []byte("claim one"),
	}
	writePebble(t, dir, old)
	s := open(t, dir)
	check := func(s *Storage) {
		t.Helper()
		for k, v := range old {
			got, ok, err := s.Get([]byte(k))
			if err != nil || !ok || string(got) != string(v) {
				t.Fatalf("%q after import = %q ok=%v err=%v, want %q", k, got, ok, err, v)
			}
		}
		if f, _, _ := s.Get(KeyFormat); string(f) != formatImported {
			t.Fatalf("format = %q, want %q", f, formatImported)
		}
	}
	check(s)
	// Later writes win over the Pebble files, which are never read again.
	b := s.NewBatch()
	b.PutUint64(KeyIDHighWater, 9000)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if v, _ := s.GetUint64(KeyIDHighWater); v != 9000 {
		t.Fatalf("id mark = %d after reopen, want 9000: the Pebble state was imported twice", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd")); err != nil {
		t.Fatalf("etcd data dir: %v", err)
	}
}

func TestEtcdConfigMembers(t *testing.T) {
	members := []Member{
		{Name: "pd1", PeerURL: "http://127.0.0.1:2380", ClientURL: "http://127.0.0.1:2381"},
		{Name: "pd2", PeerURL: "http://pd2:2380"},
	}
	cfg, err := etcdConfig(&Options{Dir: "/x", Name: "pd2", Members: members})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InitialCluster != "pd1=http://127.0.0.1:2380,pd2=http://pd2:2380" {
		t.Fatalf("initial cluster %q", cfg.InitialCluster)
	}
	if got := cfg.ListenPeerUrls[0].Host; got != "0.0.0.0:2380" {
		t.Fatalf("a host name's peer port binds %s, want 0.0.0.0:2380", got)
	}
	if len(cfg.ListenClientUrls) != 0 {
		t.Fatalf("client urls %v without a client url", cfg.ListenClientUrls)
	}
	for _, bad := range []Options{
		{Dir: "/x", Name: "pd3", Members: members},
		{Dir: "/x", Name: "pd1", Members: []Member{{Name: "pd1", PeerURL: "127.0.0.1:2380"}}},
		{Dir: "", Name: "pd1"},
	} {
		if _, err := etcdConfig(&bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("etcdConfig(%+v) = %v, want ErrInvalidOptions", bad, err)
		}
	}
}
