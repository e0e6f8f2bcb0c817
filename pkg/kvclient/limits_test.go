package kvclient

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
)

// Keys, values and transactions over the limits are refused before
// anything is sent, with what was too large, its size and the limit.
func TestTooLargeRefusedBeforeSending(t *testing.T) {
	w := oneRegion(t)
	c := w.client(Options{})
	ctx := testCtx(t)
	big := make([]byte, limits.MaxValueSize)
	for _, tc := range []struct {
		name  string
		write func(*Txn) error
		what  string
		size  int
		limit int
	}{
		{"key", func(t *Txn) error { return t.Set(make([]byte, limits.MaxKeySize+1), nil, 0) }, "key", limits.MaxKeySize + 1, limits.MaxKeySize},
		{"deleted key", func(t *Txn) error { return t.Delete(make([]byte, limits.MaxKeySize+1)) }, "key", limits.MaxKeySize + 1, limits.MaxKeySize},
		{"value", func(t *Txn) error { return t.Set([]byte("k"), make([]byte, limits.MaxValueSize+1), 0) }, "value", limits.MaxValueSize + 1, limits.MaxValueSize},
		{"transaction", func(t *Txn) error {
			for i := 0; ; i++ {
				if err := t.Set(fmt.Appendf(nil, "k%02d", i), big, 0); err != nil {
					return err
				}
			}
		}, "transaction", (limits.MaxTxnSize/(limits.MaxValueSize+3) + 1) * (limits.MaxValueSize + 3), limits.MaxTxnSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			txn, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.write(txn)
			var tl *TooLargeError
			if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.What != tc.what || tl.Size != tc.size || tl.Limit != tc.limit {
				t.Fatalf("write = %v, want a %s of %d bytes over %d", err, tc.what, tc.size, tc.limit)
			}
			if want := fmt.Sprintf("%s of %d bytes exceeds the limit of %d bytes", tc.what, tc.size, tc.limit); !strings.Contains(err.Error(), want) {
				t.Errorf("error text %q lacks %q", err, want)
			}
			if err := txn.Commit(ctx); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Commit = %v, want ErrTooLarge", err)
			}
		})
	}
	if n := len(w.callsOf("Prewrite")); n != 0 {
		t.Fatalf("%d prewrites sent for refused transactions", n)
	}
	// What is exactly at the limits is fine, and a rewrite of a key counts
	// once towards the transaction's size.
	txn, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := txn.Set(make([]byte, limits.MaxKeySize), big[:limits.MaxValueSize-limits.MaxKeySize], 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := txn.Size(); got != limits.MaxValueSize {
		t.Fatalf("Size = %d after rewriting one key, want %d", got, limits.MaxValueSize)
	}
	txn.Rollback()
}

// A transaction of many large values is cut into prewrites that each stay
// near limits.WriteBatchBytes, so none makes a raft entry over the cap; it
// then commits in two phases.
func TestWritesAreBatchedByBytes(t *testing.T) {
	w := oneRegion(t)
	c := w.client(Options{})
	ctx := testCtx(t)
	value := bytes.Repeat([]byte("v"), 1<<20)
	const n = 12
	err := c.RunTxn(ctx, func(txn *Txn) error {
		for i := range n {
			if err := txn.Set(fmt.Appendf(nil, "k%02d", i), value, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	prewrites := w.callsOf("Prewrite")
	if len(prewrites) < n*(1<<20)/limits.WriteBatchBytes {
		t.Fatalf("%d prewrites for %d MiB", len(prewrites), n)
	}
	total := 0
	for _, p := range prewrites {
		if size := len(p.keys) * (1 << 20); size > limits.WriteBatchBytes {
			t.Errorf("a prewrite of %d keys carries %d bytes of values", len(p.keys), size)
		}
		total += len(p.keys)
	}
	if total != n {
		t.Errorf("prewrites carried %d keys, want %d", total, n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range n {
		if !bytes.Equal(w.data[fmt.Sprintf("k%02d", i)], value) {
			t.Fatalf("k%02d not committed", i)
		}
	}
}

// A store's raft_entry_too_large is final: not retried, and the
// transaction fails with ErrTooLarge.
func TestRaftEntryTooLargeIsFinal(t *testing.T) {
	w := oneRegion(t)
	w.inject = func(_ uint64, method string, rc *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
		if method != "Prewrite" {
			return nil, nil
		}
		return &kvrpcpb.RegionError{RaftEntryTooLarge: &kvrpcpb.RaftEntryTooLarge{RegionId: rc.GetRegionId(), EntrySize: 9 << 20, Limit: limits.RaftEntryMaxSize}}, nil
	}
	c := w.client(Options{})
	err := c.Set(testCtx(t), []byte("k"), []byte("v"), 0)
	if !errors.Is(err, ErrTooLarge) || IsRetryable(err) || errors.Is(err, ErrCommitUndetermined) {
		t.Fatalf("Set = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "raft entry of 9437184 bytes exceeds the limit of 8388608 bytes") {
		t.Errorf("error text %q", err)
	}
	if n := len(w.callsOf("Prewrite")); n != 1 {
		t.Fatalf("%d prewrites, want 1", n)
	}
}

// The empty key is a key like any other.
func TestEmptyKey(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	c := w.client(Options{})
	ctx := testCtx(t)
	if err := c.Set(ctx, []byte{}, []byte("empty"), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, []byte("z"), []byte("last"), 0); err != nil {
		t.Fatal(err)
	}
	if e, found, err := c.Get(ctx, nil); err != nil || !found || string(e.Value) != "empty" {
		t.Fatalf("Get \"\" = %q %v %v", e.Value, found, err)
	}
	if m, err := c.BatchGet(ctx, [][]byte{nil, []byte("z")}); err != nil || string(m[""].Value) != "empty" || len(m) != 2 {
		t.Fatalf("BatchGet = %v %v", m, err)
	}
	if all, err := c.Scan(ctx, nil, nil, 0); err != nil || len(all) != 2 || len(all[0].Key) != 0 {
		t.Fatalf("Scan = %v %v", all, err)
	}
	if err := c.Delete(ctx, []byte("")); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Get(ctx, []byte("")); err != nil || found {
		t.Fatalf("Get \"\" after Delete = %v %v", found, err)
	}
}

// Responses cut short by a store (its byte budget) are asked for again.
func TestPagedResponses(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	w.pageKeys = 2
	var ks [][]byte
	for _, k := range []string{"a", "b", "c", "d", "e", "n", "o", "p"} {
		w.data[k] = []byte("v" + k)
		ks = append(ks, []byte(k))
	}
	c := w.client(Options{})
	ctx := testCtx(t)
	m, err := c.BatchGet(ctx, append(ks, []byte("absent")))
	if err != nil || len(m) != len(ks) {
		t.Fatalf("BatchGet = %d entries, %v", len(m), err)
	}
	all, err := c.Scan(ctx, nil, nil, 0)
	if err != nil || len(all) != len(ks) {
		t.Fatalf("Scan = %d entries, %v", len(all), err)
	}
	// ScanFunc: keys only; stopping in fn gives the key after the last one
	// seen; a limit gives where the next page starts.
	var seen []string
	next, err := c.ScanFunc(ctx, nil, nil, ScanOptions{KeysOnly: true}, func(e Entry) bool {
		if e.Value != nil {
			t.Errorf("keys-only entry %q has a value", e.Key)
		}
		seen = append(seen, string(e.Key))
		return len(seen) < 3
	})
	if err != nil || string(next) != "c\x00" || !slices.Equal(seen, []string{"a", "b", "c"}) {
		t.Fatalf("ScanFunc stopped by fn: next %q, seen %v, %v", next, seen, err)
	}
	seen = nil
	next, err = c.ScanFunc(ctx, []byte("c"), nil, ScanOptions{Limit: 4}, func(e Entry) bool {
		seen = append(seen, string(e.Key))
		return true
	})
	if err != nil || string(next) != "o" || !slices.Equal(seen, []string{"c", "d", "e", "n"}) {
		t.Fatalf("ScanFunc limit 4: next %q, seen %v, %v", next, seen, err)
	}
	next, err = c.ScanFunc(ctx, []byte("o"), nil, ScanOptions{Limit: 4}, func(Entry) bool { return true })
	if err != nil || next != nil {
		t.Fatalf("ScanFunc to the end: next %q, %v", next, err)
	}
}

// DeleteRange deletes region by region, regrouping when the cached
// routing is stale (a region split that PD's answer does not show yet).
func TestDeleteRangeAcrossRegions(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	for _, k := range []string{"", "a", "g", "m", "q", "z"} {
		w.data[k] = []byte("v")
	}
	// The truth: region 1 split at "g" into 1 [, g) and 3 [g, m).
	w.setTruth([]*metapb.Region{region(1, "", "g", 2), region(3, "g", "m", 2), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 3: 1, 2: 2})
	c := w.client(Options{})
	ctx := testCtx(t)
	if err := c.DeleteRange(ctx, []byte("a"), []byte("q")); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	left := slices.Sorted(maps.Keys(w.data))
	w.mu.Unlock()
	if !slices.Equal(left, []string{"", "q", "z"}) {
		t.Fatalf("keys left = %q", left)
	}
	if err := c.DeleteRange(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if all, err := c.Scan(ctx, nil, nil, 0); err != nil || len(all) != 0 {
		t.Fatalf("after deleting everything: %v %v", all, err)
	}
}
