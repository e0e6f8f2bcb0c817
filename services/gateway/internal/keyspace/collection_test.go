package keyspace

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

// No sub-key falls inside any database's range of stored keys, whatever the
// database, key and element: SCAN, DBSIZE, RANDOMKEY and FLUSHDB of a
// database never meet one.
func TestSubKeysOutsideEveryDatabase(t *testing.T) {
	keys := [][]byte{{}, {0}, {0xff, 0xff, 0xff, 0xff}, []byte("hash"), bytes.Repeat([]byte{0xff}, 300)}
	dbs := []uint32{0, 1, 15, 255, MaxDatabases - 1}
	for _, db := range dbs {
		for _, k := range keys {
			for _, v := range []uint64{0, 1, math.MaxUint64} {
				sub := SubKey(db, k, v, KindHashField, []byte("f"))
				if !IsSubKey(sub) {
					t.Fatalf("IsSubKey(%q) = false", sub)
				}
				for _, other := range dbs {
					if bytes.Compare(sub, Prefix(other)) >= 0 && (End(other) == nil || bytes.Compare(sub, End(other)) < 0) {
						t.Fatalf("sub-key %q of db %d lies in database %d's range", sub, db, other)
					}
				}
				if IsSubKey(Key(db, k)) {
					t.Fatalf("stored key %q reads as a sub-key", Key(db, k))
				}
				start, end := SubKeyRange(db)
				if bytes.Compare(sub, start) < 0 || bytes.Compare(sub, end) >= 0 {
					t.Fatalf("sub-key %q outside SubKeyRange(%d) = [%q, %q)", sub, db, start, end)
				}
			}
		}
	}
}

// A version's range and a kind's range hold exactly that version's (kind's)
// sub-keys: a key that is a prefix of another key, or the next version, never
// falls in, so reclaiming a version or scanning a hash touches nothing else.
func TestVersionAndKindRangesAreExact(t *testing.T) {
	type sk struct {
		key  string
		ver  uint64
		kind byte
		elem string
	}
	all := []sk{}
	for _, key := range []string{"", "a", "a\x00", "ab", "a\xff", "b"} {
		for _, ver := range []uint64{0, 1, 2, math.MaxUint64 - 1, math.MaxUint64} {
			for _, kind := range []byte{KindHashField, KindZSetMember, KindZSetScore} {
				for _, elem := range []string{"", "\x00", "x", "\xff\xff"} {
					all = append(all, sk{key, ver, kind, elem})
				}
			}
		}
	}
	for _, db := range []uint32{0, 7} {
		for _, target := range all {
			vs, ve := VersionRange(db, []byte(target.key), target.ver)
			ks, ke := KindRange(db, []byte(target.key), target.ver, target.kind)
			for _, other := range all {
				for _, odb := range []uint32{0, 7} {
					k := SubKey(odb, []byte(other.key), other.ver, other.kind, []byte(other.elem))
					in := func(s, e []byte) bool {
						return bytes.Compare(k, s) >= 0 && (e == nil || bytes.Compare(k, e) < 0)
					}
					sameVer := odb == db && other.key == target.key && other.ver == target.ver
					if in(vs, ve) != sameVer {
						t.Fatalf("VersionRange(%d,%q,%d) contains %+v (db %d): %v, want %v", db, target.key, target.ver, other, odb, !sameVer, sameVer)
					}
					if sameKind := sameVer && other.kind == target.kind; in(ks, ke) != sameKind {
						t.Fatalf("KindRange(%d,%q,%d,%c) contains %+v (db %d): %v, want %v", db, target.key, target.ver, target.kind, other, odb, !sameKind, sameKind)
					}
				}
			}
		}
	}
}

func TestSplitSubKey(t *testing.T) {
	for _, c := range []SubKeyParts{
		{DB: 0, Key: []byte{}, Version: 0, Kind: KindHashField, Elem: []byte{}},
		{DB: 3, Key: []byte("k\x00\xff"), Version: 1 << 40, Kind: KindZSetScore, Elem: []byte("\x80\x00member")},
		{DB: MaxDatabases - 1, Key: bytes.Repeat([]byte{0xff}, 1000), Version: math.MaxUint64, Kind: KindListIndex, Elem: AppendListIndex(nil, -5)},
	} {
		got, err := SplitSubKey(SubKey(c.DB, c.Key, c.Version, c.Kind, c.Elem))
		if err != nil || got.DB != c.DB || !bytes.Equal(got.Key, c.Key) || got.Version != c.Version || got.Kind != c.Kind || !bytes.Equal(got.Elem, c.Elem) {
			t.Fatalf("SplitSubKey(SubKey(%+v)) = %+v, %v", c, got, err)
		}
	}
	bad := [][]byte{nil, Key(0, []byte("a-string-key-long-enough")), SubKey(0, []byte("k"), 1, 'f', nil)[:16]}
	lying := SubKey(0, []byte("k"), 1, 'f', nil)
	lying[7] = 200 // key length past the end
	bad = append(bad, lying)
	for _, b := range bad {
		if _, err := SplitSubKey(b); !errors.Is(err, ErrNotSubKey) {
			t.Fatalf("SplitSubKey(%q) = %v, want ErrNotSubKey", b, err)
		}
	}
}

// Scores' bytes sort as the doubles do, extremes included, and decode back.
func TestScoreEncodingOrder(t *testing.T) {
	scores := []float64{math.Inf(-1), -math.MaxFloat64, -1e300, -2, -1, -math.SmallestNonzeroFloat64, 0,
		math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 1, 1.5, 2, 1 << 53, 1e300, math.MaxFloat64, math.Inf(1)}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		f := math.Float64frombits(r.Uint64())
		if !math.IsNaN(f) {
			scores = append(scores, f)
		}
	}
	sort.Float64s(scores)
	for i, f := range scores {
		enc := AppendScore(nil, f)
		if got := DecodeScore(enc); got != f {
			t.Fatalf("DecodeScore(AppendScore(%g)) = %g", f, got)
		}
		if i > 0 {
			c := bytes.Compare(AppendScore(nil, scores[i-1]), enc)
			if (scores[i-1] < f && c >= 0) || (scores[i-1] == f && c != 0) {
				t.Fatalf("score bytes of %g and %g compare %d", scores[i-1], f, c)
			}
		}
	}
	if !bytes.Equal(AppendScore(nil, math.Copysign(0, -1)), AppendScore(nil, 0)) {
		t.Fatal("-0 and +0 encode differently")
	}
}

func TestListIndexOrder(t *testing.T) {
	idx := []int64{math.MinInt64, -1 << 40, -2, -1, 0, 1, 2, 1 << 40, math.MaxInt64}
	for i, x := range idx {
		if got := DecodeListIndex(AppendListIndex(nil, x)); got != x {
			t.Fatalf("DecodeListIndex(AppendListIndex(%d)) = %d", x, got)
		}
		if i > 0 && bytes.Compare(AppendListIndex(nil, idx[i-1]), AppendListIndex(nil, x)) >= 0 {
			t.Fatalf("list index bytes of %d and %d out of order", idx[i-1], x)
		}
	}
}

func TestMetaRoundTrip(t *testing.T) {
	long := bytes.Repeat([]byte{'x'}, MaxZMark)
	for _, m := range []Meta{
		{},
		{Version: 1, Count: 3, Stamp: 77},
		{Version: math.MaxUint64, Count: math.MaxUint64, Big: true},
		{Version: 9, Count: 2, List: true, Head: -1, Tail: 1},
		{Version: 9, List: true, Head: math.MinInt64, Tail: math.MaxInt64, Big: true},
		{Version: 4, Count: 5, Stamp: 6, ZLow: []byte("12345678a\x00")},
		{Version: 4, Count: 5, ZHigh: []byte("12345678z")},
		{Version: 4, Count: 5, Big: true, ZLow: []byte("12345678a"), ZHigh: long},
	} {
		enc := AppendMeta(nil, m)
		got, err := DecodeMeta(enc)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("DecodeMeta(AppendMeta(%+v)) = %+v, %v", m, got, err)
		}
		// A record without marks keeps the layout binaries from before the
		// marks read.
		if m.ZLow == nil && m.ZHigh == nil && enc[0] != metaFormat {
			t.Fatalf("AppendMeta(%+v) wrote format %d, want %d", m, enc[0], metaFormat)
		}
	}
	enc := AppendMeta(nil, Meta{Version: 1})
	marked := AppendMeta(nil, Meta{Version: 1, ZLow: []byte("12345678m"), ZHigh: []byte("12345679")})
	for _, b := range [][]byte{nil, enc[:5], append(append([]byte(nil), enc...), 0),
		marked[:len(marked)-1], append(append([]byte(nil), marked...), 0), marked[:metaLen+1]} {
		if _, err := DecodeMeta(b); err == nil {
			t.Fatalf("DecodeMeta(%x) accepted a corrupt body", b)
		}
	}
	newer := append([]byte(nil), enc...)
	newer[0] = 3
	if _, err := DecodeMeta(newer); !errors.Is(err, ErrFormatTooNew) {
		t.Fatalf("DecodeMeta of a newer layout = %v, want ErrFormatTooNew", err)
	}
}

// The marks of long members are looser bounds: ZMarkLow and ZMarkAbove
// sort at or below the element (and ZMarkAbove above it when exact),
// ZMarkHigh above it.
func TestZMarks(t *testing.T) {
	for _, elem := range [][]byte{[]byte("12345678"), []byte("12345678m"), bytes.Repeat([]byte{'q'}, MaxZMark),
		append([]byte("12345678"), bytes.Repeat([]byte{'y'}, 200)...),
		append([]byte("12345678"), bytes.Repeat([]byte{0xff}, 200)...)} {
		lo, above, hi := ZMarkLow(elem), ZMarkAbove(elem), ZMarkHigh(elem)
		if bytes.Compare(lo, elem) > 0 || len(lo) > MaxZMark {
			t.Fatalf("ZMarkLow(%q) = %q", elem, lo)
		}
		if len(above) > MaxZMark || (len(elem) < MaxZMark && bytes.Compare(above, elem) <= 0) || (len(elem) >= MaxZMark && bytes.Compare(above, elem) > 0) {
			t.Fatalf("ZMarkAbove(%q) = %q", elem, above)
		}
		if len(hi) > MaxZMark || (hi != nil && bytes.Compare(hi, elem) < 0) {
			t.Fatalf("ZMarkHigh(%q) = %q", elem, hi)
		}
		if above := ZMarkHighAbove(elem); len(above) > MaxZMark || (above != nil && bytes.Compare(above, elem) <= 0) {
			t.Fatalf("ZMarkHighAbove(%q) = %q", elem, above)
		}
	}
}
