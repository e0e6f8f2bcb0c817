package keyspace

import (
	"bytes"
	"testing"
)

// Stored keys keep each database a contiguous range that sorts as its
// Redis keys do, and split back into database and key.
func TestStoredKeysOrderAndSplit(t *testing.T) {
	keys := [][]byte{{}, {0}, {0, 0}, []byte("a"), []byte("a\x00"), []byte("ab"), {0xff}, {0xff, 0xff}}
	for _, db := range []uint32{0, 1, 255, 256, 1<<31 - 1, 1<<32 - 1} {
		for i, k := range keys {
			s := Key(db, k)
			if got, key, ok := Split(s); !ok || got != db || !bytes.Equal(key, k) || DB(s) != db || !bytes.Equal(UserKey(s), k) {
				t.Fatalf("Split(Key(%d, %q)) = %d %q %v", db, k, got, key, ok)
			}
			if !bytes.HasPrefix(s, Prefix(db)) {
				t.Fatalf("Key(%d, %q) lacks its prefix", db, k)
			}
			if end := End(db); end != nil && bytes.Compare(s, end) >= 0 {
				t.Fatalf("Key(%d, %q) = %q is past End = %q", db, k, s, end)
			}
			if db > 0 && bytes.Compare(s, End(db-1)) < 0 {
				t.Fatalf("Key(%d, %q) sorts inside database %d", db, k, db-1)
			}
			for _, k2 := range keys[i+1:] {
				if bytes.Compare(k, k2) != bytes.Compare(s, Key(db, k2)) {
					t.Fatalf("order of %q and %q not kept in database %d", k, k2, db)
				}
			}
		}
	}
	if _, _, ok := Split([]byte{0, 0, 0}); ok {
		t.Fatal("a 3-byte key split as a stored key")
	}
}
