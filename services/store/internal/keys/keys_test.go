package keys

import (
	"bytes"
	"math"
	"sort"
	"testing"
)

func TestEncodeBytesOrderAndRoundTrip(t *testing.T) {
	raw := [][]byte{
		{}, {0}, {0, 0}, []byte("a"), []byte("a\x00"), []byte("a\x00\x00\x00\x00\x00\x00\x00"),
		[]byte("a\x00\x00\x00\x00\x00\x00\x00\x00"), []byte("abcdefgh"), []byte("abcdefghi"),
		[]byte("b"), {0xff}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	sort.Slice(raw, func(i, j int) bool { return bytes.Compare(raw[i], raw[j]) < 0 })
	var prev []byte
	for i, k := range raw {
		enc := EncodeBytes(nil, k)
		if len(enc)%9 != 0 {
			t.Fatalf("EncodeBytes(%x) = %x: length not a multiple of 9", k, enc)
		}
		dec, rest, err := DecodeBytes(append(enc, 1, 2))
		if err != nil || !bytes.Equal(dec, k) || !bytes.Equal(rest, []byte{1, 2}) {
			t.Fatalf("DecodeBytes(EncodeBytes(%x)) = %x, %x, %v", k, dec, rest, err)
		}
		if i > 0 {
			if bytes.Compare(prev, enc) >= 0 {
				t.Fatalf("order lost: enc(%x)=%x >= enc(%x)=%x", raw[i-1], prev, k, enc)
			}
			if bytes.HasPrefix(enc, prev) {
				t.Fatalf("enc(%x) is a prefix of enc(%x)", raw[i-1], k)
			}
		}
		prev = enc
	}
}

func TestDecodeBytesRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {1, 2, 3}, {0, 0, 0, 0, 0, 0, 0, 0, 0xF0}, {'a', 1, 0, 0, 0, 0, 0, 0, 0xF8}} {
		if _, _, err := DecodeBytes(b); err == nil {
			t.Errorf("DecodeBytes(%x) accepted garbage", b)
		}
	}
}

func TestVersionKeysSortNewestFirstWithoutInterleaving(t *testing.T) {
	ks := [][]byte{
		WriteKey([]byte("a"), 5), WriteKey([]byte("a"), 10), WriteKey([]byte("a\x00"), 1),
		WriteKey([]byte("a\x00"), math.MaxUint64-1), WriteKey([]byte(""), 3),
	}
	sort.Slice(ks, func(i, j int) bool { return bytes.Compare(ks[i], ks[j]) < 0 })
	want := []struct {
		key string
		ts  uint64
	}{{"", 3}, {"a", 10}, {"a", 5}, {"a\x00", math.MaxUint64 - 1}, {"a\x00", 1}}
	for i, k := range ks {
		key, ts, err := DecodeVersionKey(k)
		if err != nil || string(key) != want[i].key || ts != want[i].ts {
			t.Fatalf("position %d: (%q, %d, %v), want (%q, %d)", i, key, ts, err, want[i].key, want[i].ts)
		}
	}
}

func TestDataRange(t *testing.T) {
	lo, hi := DataRange(CFWrite, []byte("b"), []byte("d"))
	in := func(k []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 }
	for _, c := range []struct {
		key  string
		want bool
	}{{"a", false}, {"b", true}, {"b\x00", true}, {"c\xff\xff", true}, {"d", false}, {"d\x00", false}} {
		if got := in(WriteKey([]byte(c.key), 7)); got != c.want {
			t.Errorf("WriteKey(%q) in [b,d) = %v, want %v", c.key, got, c.want)
		}
		if got := InRange([]byte(c.key), []byte("b"), []byte("d")); got != c.want {
			t.Errorf("InRange(%q) = %v", c.key, got)
		}
	}
	lo, hi = DataRange(CFLock, nil, nil)
	if !bytes.Equal(lo, EncodeBytes([]byte{CFLock}, nil)) || !bytes.Equal(hi, []byte{CFLock + 1}) {
		t.Errorf("unbounded lock range = [%x, %x)", lo, hi)
	}
	if bytes.Compare(LockKey(nil), lo) < 0 || bytes.Compare(LockKey([]byte{0xff, 0xff}), hi) >= 0 {
		t.Error("lock keys fall outside the unbounded range")
	}
}

func TestLocalKeys(t *testing.T) {
	k := RaftLogKey(7, 42)
	if idx, err := RaftLogIndex(k); err != nil || idx != 42 {
		t.Fatalf("RaftLogIndex = %d, %v", idx, err)
	}
	if !bytes.HasPrefix(k, RaftLogPrefix(7)) || !bytes.HasPrefix(k, RaftStatePrefix(7)) || !bytes.HasPrefix(HardStateKey(7), RaftStatePrefix(7)) {
		t.Error("raft keys escape the region's raft prefix")
	}
	if bytes.Compare(RaftLogKey(7, 1), RaftLogKey(7, 256)) >= 0 {
		t.Error("log keys out of index order")
	}
	id, err := RegionIDFromStateKey(RegionStateKey(99))
	if err != nil || id != 99 {
		t.Fatalf("RegionIDFromStateKey = %d, %v", id, err)
	}
	for _, lk := range [][]byte{StoreIdentKey, k, ApplyStateKey(1), RegionStateKey(1)} {
		if bytes.Compare(lk, LocalMin) < 0 || bytes.Compare(lk, LocalMax) >= 0 {
			t.Errorf("%x outside the local keyspace", lk)
		}
		if bytes.Compare(lk, DataMin()) >= 0 {
			t.Errorf("local key %x sorts after data", lk)
		}
	}
	if !bytes.Equal(PrefixEnd([]byte{1, 0xff}), []byte{2}) || PrefixEnd([]byte{0xff}) != nil {
		t.Error("PrefixEnd")
	}
}

// DataMin is the smallest data key, used only to check the two keyspaces do not mix.
func DataMin() []byte { return []byte{CFDefault} }
