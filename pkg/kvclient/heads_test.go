package kvclient

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
)

func headString(m map[string]Head) string {
	var parts []string
	for k, h := range m {
		if k != string(h.Key) {
			parts = append(parts, fmt.Sprintf("%q keyed as %q", h.Key, k))
		}
		parts = append(parts, fmt.Sprintf("%s=%s:%d@%d", k, h.Prefix, h.Len, h.ExpiresAt))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// headRequests records whether each read request asked for heads, and with
// what prefix length.
func headRequests(w *world) func() []string {
	var mu sync.Mutex
	var seen []string
	w.inject = func(_ uint64, method string, _ *kvrpcpb.Context, req proto.Message) (*kvrpcpb.RegionError, error) {
		var head bool
		var prefix uint32
		switch r := req.(type) {
		case *kvrpcpb.GetRequest:
			head, prefix = r.GetHeadOnly(), r.GetValuePrefixLen()
		case *kvrpcpb.BatchGetRequest:
			head, prefix = r.GetHeadOnly(), r.GetValuePrefixLen()
		default:
			return nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s head=%v prefix=%d", method, head, prefix))
		return nil, nil
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// Heads come from head reads: the values' lengths and first bytes only,
// each key read once however often it is named, across regions and pages.
func TestBatchGetHeads(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	w.data["a"] = []byte("xyz")
	w.data["b"] = []byte(strings.Repeat("b", 1<<20))
	w.data["e"] = []byte{}
	w.data["n"] = []byte("n")
	requests := headRequests(w)
	c := w.client(Options{})
	ctx := testCtx(t)

	ks := [][]byte{[]byte("n"), []byte("a"), []byte("b"), []byte("a"), []byte("absent"), []byte("e"), []byte("n"), make([]byte, limits.MaxKeySize+1)}
	got, err := c.BatchGetHeads(ctx, ks, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g, want := headString(got), "a=xy:3@0 b=bb:1048576@0 e=:0@0 n=n:1@0"; g != want {
		t.Errorf("heads = %s, want %s", g, want)
	}
	var keysSent []string
	for _, c := range w.callsOf("BatchGet") {
		keysSent = append(keysSent, c.keys...)
	}
	slices.Sort(keysSent)
	if fmt.Sprint(keysSent) != "[a absent b e n]" {
		t.Errorf("keys sent %v, want each key once (and no key too long to exist)", keysSent)
	}
	if r := requests(); len(r) != 2 || r[0] != "BatchGet head=true prefix=2" || r[1] != r[0] {
		t.Errorf("requests %v, want two head reads", r)
	}
	if st := c.Stats(); st.Reads != 2 || st.ValueBytesRead != 5 {
		t.Errorf("stats: %d reads of %d value bytes, want 2 of 5 (the prefixes)", st.Reads, st.ValueBytesRead)
	}

	// Pages: a store that stops early is asked for the rest.
	w.pageKeys = 1
	got, err = c.BatchGetHeads(ctx, ks, 1)
	if err != nil || headString(got) != "a=x:3@0 b=b:1048576@0 e=:0@0 n=n:1@0" {
		t.Errorf("paged heads = %s, %v", headString(got), err)
	}
	w.pageKeys = 0

	h, found, err := c.GetHead(ctx, []byte("b"), 1)
	if err != nil || !found || string(h.Prefix) != "b" || h.Len != 1<<20 || string(h.Key) != "b" {
		t.Errorf("GetHead b = %+v, %v, %v", h, found, err)
	}
	if _, found, err := c.GetHead(ctx, []byte("absent"), 1); err != nil || found {
		t.Errorf("GetHead absent = %v, %v", found, err)
	}
	if r := requests(); r[len(r)-1] != "Get head=true prefix=1" {
		t.Errorf("last request %v, want a head read", r[len(r)-1])
	}
	// A plain BatchGet still reads values.
	if m, err := c.BatchGet(ctx, [][]byte{[]byte("a")}); err != nil || string(m["a"].Value) != "xyz" {
		t.Errorf("BatchGet a = %v, %v", m, err)
	}
	if r := requests(); r[len(r)-1] != "BatchGet head=false prefix=0" {
		t.Errorf("last request %v, want a value read", r[len(r)-1])
	}
}

// A transaction's head reads see its own writes first, as Get does, and
// ask the stores only for the keys it has not written.
func TestTxnHeadsReadOwnWrites(t *testing.T) {
	w := oneRegion(t)
	for _, k := range []string{"a", "c", "e", "p"} {
		w.data[k] = []byte("old-" + k)
	}
	c := w.client(Options{})
	ctx := testCtx(t)
	txn, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = txn.Set([]byte("b"), []byte("new"), 0)
	_ = txn.Set([]byte("c"), []byte("newer"), txn.Now()+60_000)
	_ = txn.Delete([]byte("e"))
	_ = txn.Set([]byte("o"), []byte("gone"), txn.Now()-1) // already expired
	exp := txn.Now() + 60_000

	got, err := txn.BatchGetHeads(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("e"), []byte("o"), []byte("p"), []byte("q"), []byte("b")}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g, want := headString(got), fmt.Sprintf("a=o:5@0 b=n:3@0 c=n:5@%d p=o:5@0", exp); g != want {
		t.Errorf("heads = %s, want %s", g, want)
	}
	var keysSent []string
	for _, c := range w.callsOf("BatchGet") {
		keysSent = append(keysSent, c.keys...)
	}
	if fmt.Sprint(keysSent) != "[a p q]" {
		t.Errorf("keys sent %v, want only those the transaction did not write", keysSent)
	}
	for k, want := range map[string]string{"b": "ne:3", "c": "ne:5", "e": "", "o": "", "a": "ol:5"} {
		h, found, err := txn.GetHead(ctx, []byte(k), 2)
		if err != nil || found != (want != "") || (found && fmt.Sprintf("%s:%d", h.Prefix, h.Len) != want) {
			t.Errorf("GetHead %s = %+v, %v, %v; want %q", k, h, found, err, want)
		}
	}
	if n := len(w.callsOf("Get")); n != 1 {
		t.Errorf("%d Get calls, want 1 (for a, which the transaction did not write)", n)
	}
	// Nothing to ask when every key is the transaction's own.
	before := len(w.callsOf("BatchGet"))
	if got, err := txn.BatchGetHeads(ctx, [][]byte{[]byte("b"), []byte("e")}, 0); err != nil || headString(got) != "b=:3@0" {
		t.Errorf("own heads = %s, %v", headString(got), err)
	}
	if n := len(w.callsOf("BatchGet")); n != before {
		t.Errorf("own heads made %d requests", n-before)
	}
	txn.Rollback()
	if _, err := txn.BatchGetHeads(ctx, nil, 0); err == nil {
		t.Error("BatchGetHeads after Rollback succeeded")
	}
	if _, _, err := txn.GetHead(context.Background(), []byte("a"), 0); err == nil {
		t.Error("GetHead after Rollback succeeded")
	}
}
