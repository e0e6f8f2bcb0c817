package keyspace

import (
	"bytes"
	"math"
	"testing"
)

// Reclaim-queue keys lie outside every database's range and every
// database's sub-key range, inside ReclaimRange and outside
// SubKeyFamilyRange, and take apart into what made them.
func TestReclaimKeys(t *testing.T) {
	fam, famEnd := SubKeyFamilyRange()
	qStart, _ := ReclaimRange()
	dbs := []uint32{0, 1, 255, MaxDatabases - 1}
	for _, db := range dbs {
		for _, k := range [][]byte{{}, {0xff}, []byte("hash"), bytes.Repeat([]byte{0xff}, 300)} {
			for _, v := range []uint64{0, 1, math.MaxUint64} {
				q := ReclaimKey(v^7, db, k, v)
				for _, other := range dbs {
					if bytes.Compare(q, Prefix(other)) >= 0 && (End(other) == nil || bytes.Compare(q, End(other)) < 0) {
						t.Fatalf("queue key %q lies in database %d's range", q, other)
					}
					if s, e := SubKeyRange(other); bytes.Compare(q, s) >= 0 && bytes.Compare(q, e) < 0 {
						t.Fatalf("queue key %q lies in database %d's sub-key range", q, other)
					}
				}
				if !bytes.HasPrefix(q, qStart) || bytes.Compare(q, famEnd) < 0 {
					t.Fatalf("queue key %q outside ReclaimRange or inside the sub-key family", q)
				}
				sub := SubKey(db, k, v, KindSetMember, []byte{0xff, 0xff})
				if bytes.Compare(sub, fam) < 0 || bytes.Compare(sub, famEnd) >= 0 {
					t.Fatalf("sub-key %q outside SubKeyFamilyRange", sub)
				}
				e, err := SplitReclaimKey(q)
				if err != nil || e.ID != v^7 || e.DB != db || !bytes.Equal(e.Key, k) || e.Version != v {
					t.Fatalf("SplitReclaimKey(%q) = %+v, %v", q, e, err)
				}
			}
		}
	}
	for _, bad := range [][]byte{nil, {0xff, 0xff, 0xff, 0xff}, SubKey(0, []byte("k"), 1, KindHashField, []byte("0123456789abcdef"))} {
		if _, err := SplitReclaimKey(bad); err == nil {
			t.Fatalf("SplitReclaimKey(%q) accepted", bad)
		}
	}
}
