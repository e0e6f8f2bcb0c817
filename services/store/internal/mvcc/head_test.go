package mvcc

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
)

// A head read is a read: whatever Get answers (a lock that blocks, a
// version, an expiry, nothing), GetHead answers the same, with the value's
// length and first bytes in place of the value.
func TestGetHeadMatchesGet(t *testing.T) {
	e := scanFixture(t)
	e.txn(400, 401, mPutExp("x", long('x'), 3_000), mPut("y", ""), mPutExp("z", "zz", 2_000))
	e.mustPrewrite(450, "x", mPut("x", "newer"))         // a lock on a long value
	e.mustPrewrite(460, "z", mPutExp("z", long('q'), 0)) // on a short one
	snap := e.snap()
	ks := []string{"", "a", "a\x00", "b", "c", "d", "e", "f", "g", "h", "i", "nope", "x", "y", "z"}
	for _, ts := range []uint64{1, 2, 11, 21, 140, 250, 301, 306, 401, 455, 500} {
		for _, now := range []int64{500, 1_000, 2_000, 2_999, 3_000} {
			for _, k := range ks {
				v, exp, found, kerr, err := Get(snap, []byte(k), ts, now)
				if err != nil {
					t.Fatal(err)
				}
				for _, pl := range []int{0, 1, 3, ShortValueMax + 1, 1 << 30, -1} {
					h, hfound, hkerr, err := GetHead(snap, []byte(k), ts, now, pl)
					if err != nil {
						t.Fatal(err)
					}
					want := v[:min(max(pl, 0), len(v))]
					if hfound != found || !proto.Equal(hkerr, kerr) || (found && (h.Len != len(v) || h.ExpiresAt != exp || !bytes.Equal(h.Prefix, want) || h.Prefix == nil)) {
						t.Errorf("head %q@%d now %d prefix %d = %+v found %v kerr %v; get = %d bytes exp %d found %v kerr %v",
							k, ts, now, pl, h, hfound, hkerr, len(v), exp, found, kerr)
					}
				}
			}
		}
	}
}

// A page of heads holds what it sends: a key's prefix, not its value.
func TestBatchGetPageHeads(t *testing.T) {
	e := newEnv(t)
	e.txn(10, 11, mPut("a", long('a')), mPut("b", "b1"), mPutExp("c", long('c'), 5_000), mPut("d", strings.Repeat("d", 2*ShortValueMax)))
	e.mustPrewrite(20, "e", mPut("e", "locked"))
	ks := bs("a", "b", "nope", "c", "e", "d", "a")
	budget := 2 * (len(long('a')) + pairOverhead) // a full read stops after two long values
	full, next, err := BatchGetPage(e.snap(), ks, 30, 1_000, ReadOptions{MaxBytes: budget})
	if err != nil || next != 4 || len(full) != 3 {
		t.Fatalf("full page = %s, next %d, %v", pairsString(full), next, err)
	}
	heads, next, err := BatchGetPage(e.snap(), ks, 30, 1_000, ReadOptions{MaxBytes: budget, HeadOnly: true, PrefixLen: 1})
	if err != nil || next != 0 {
		t.Fatalf("head page: next %d, %v", next, err)
	}
	var got []string
	for _, p := range heads {
		switch {
		case p.Error != nil:
			got = append(got, string(p.Key)+"!")
		case p.ExpiresAt != 0:
			got = append(got, string(p.Key)+"="+string(p.Value)+":"+itoa(p.ValueLen)+"@"+itoa(uint64(p.ExpiresAt)))
		default:
			got = append(got, string(p.Key)+"="+string(p.Value)+":"+itoa(p.ValueLen))
		}
	}
	want := "a=a:300 b=b:2 c=c:300@5000 e! d=d:510 a=a:300"
	if g := strings.Join(got, " "); g != want { // long values are 300 bytes
		t.Errorf("heads = %q, want %q", g, want)
	}
	// Expired by now: absent, as for a full read.
	heads, _, err = BatchGetPage(e.snap(), bs("c"), 30, 5_000, ReadOptions{HeadOnly: true, PrefixLen: 1})
	if err != nil || len(heads) != 0 {
		t.Errorf("expired head = %v, %v", heads, err)
	}
	// A tiny budget still reads one key per page.
	heads, next, err = BatchGetPage(e.snap(), ks, 30, 1_000, ReadOptions{MaxBytes: 1, HeadOnly: true})
	if err != nil || next != 1 || len(heads) != 1 || len(heads[0].Value) != 0 || heads[0].ValueLen != uint64(len(long('a'))) {
		t.Errorf("one-byte page = %v, next %d, %v", heads, next, err)
	}
}
