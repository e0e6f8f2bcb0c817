package txn_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
)

// TestHeadReads: head reads through the stores answer what value reads
// answer (the length, first bytes and expiry of the same version), resolve
// locks as reads do, read a key named many times once, fit many more keys
// in a response page, and carry no value.
func TestHeadReads(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})
	big := bytes.Repeat([]byte("0123456789"), (6<<20)/10) // stored outside the write record
	values := map[string][]byte{
		"a/head/small": []byte("small"),
		"a/head/big":   big,
		"z/head/long":  bytes.Repeat([]byte("L"), 1000),
		"z/head/empty": {},
	}
	for k, v := range values {
		mustSetBytes(t, kc, []byte(k), v, 0)
	}
	bs := func(ss ...string) [][]byte {
		out := make([][]byte, len(ss))
		for i, s := range ss {
			out[i] = []byte(s)
		}
		return out
	}
	type delta struct{ reads, bytes uint64 }
	measure := func(fn func()) delta {
		before := kc.Stats()
		fn()
		after := kc.Stats()
		return delta{after.Reads - before.Reads, after.ValueBytesRead - before.ValueBytesRead}
	}

	t.Run("MatchValues", func(t *testing.T) {
		ks := bs("z/head/long", "a/head/big", "a/head/small", "a/head/absent", "z/head/empty", "a/head/big", "z/head/long")
		var heads map[string]kvclient.Head
		d := measure(func() {
			var err error
			if heads, err = kc.BatchGetHeads(testCtx(t), ks, 3); err != nil {
				t.Fatal(err)
			}
		})
		if d.reads != 2 || d.bytes > 3*3 {
			t.Errorf("head reads of both regions: %d responses, %d value bytes; want 2 (one per region) of the prefixes only", d.reads, d.bytes)
		}
		if len(heads) != len(values) {
			t.Errorf("%d heads, want %d", len(heads), len(values))
		}
		for k, v := range values {
			h, ok := heads[k]
			if !ok || h.Len != len(v) || !bytes.Equal(h.Prefix, v[:min(3, len(v))]) || h.ExpiresAt != 0 || string(h.Key) != k {
				t.Errorf("head %s = %+v (found %v), want %d bytes starting %q", k, h, ok, len(v), v[:min(3, len(v))])
			}
			g, found, err := kc.GetHead(testCtx(t), []byte(k), 1)
			if err != nil || !found || g.Len != len(v) || !bytes.Equal(g.Prefix, v[:min(1, len(v))]) {
				t.Errorf("GetHead %s = %+v, %v, %v", k, g, found, err)
			}
		}
		if _, found, err := kc.GetHead(testCtx(t), []byte("a/head/absent"), 1); err != nil || found {
			t.Errorf("GetHead of an absent key = %v, %v", found, err)
		}
		// A 6 MiB value named 1000 times: one request, one byte of it.
		named := make([][]byte, 1000)
		for i := range named {
			named[i] = []byte("a/head/big")
		}
		d = measure(func() {
			heads, err := kc.BatchGetHeads(testCtx(t), named, 1)
			if err != nil || len(heads) != 1 || heads["a/head/big"].Len != len(big) {
				t.Fatalf("heads of a/head/big x1000 = %v, %v", len(heads), err)
			}
		})
		if d.reads != 1 || d.bytes != 1 {
			t.Errorf("a 6 MiB key named 1000 times: %d responses of %d value bytes, want 1 of 1", d.reads, d.bytes)
		}
		// What a value read of it costs, for comparison.
		d = measure(func() {
			if m, err := kc.BatchGet(testCtx(t), named); err != nil || len(m) != 1 {
				t.Fatalf("BatchGet = %d, %v", len(m), err)
			}
		})
		if d.bytes != uint64(len(big)) {
			t.Errorf("value read: %d bytes, want %d", d.bytes, len(big))
		}
	})

	t.Run("Pages", func(t *testing.T) {
		// 12 MiB of values in one region: a value read takes several
		// 4 MiB pages, a head read one response.
		var ks [][]byte
		for i := range 12 {
			k := fmt.Sprintf("a/page/%02d", i)
			mustSetBytes(t, kc, []byte(k), bytes.Repeat([]byte{byte('A' + i)}, 1<<20), 0)
			ks = append(ks, []byte(k))
		}
		d := measure(func() {
			if m, err := kc.BatchGet(testCtx(t), ks); err != nil || len(m) != len(ks) {
				t.Fatalf("BatchGet = %d, %v", len(m), err)
			}
		})
		if d.reads < 3 {
			t.Errorf("value read of 12 MiB: %d responses, want pages of about 4 MiB", d.reads)
		}
		d = measure(func() {
			heads, err := kc.BatchGetHeads(testCtx(t), ks, 1)
			if err != nil || len(heads) != len(ks) {
				t.Fatalf("BatchGetHeads = %d, %v", len(heads), err)
			}
			for i, k := range ks {
				if h := heads[string(k)]; h.Len != 1<<20 || h.Prefix[0] != byte('A'+i) {
					t.Errorf("head %s = %d bytes, %q", k, h.Len, h.Prefix)
				}
			}
		})
		if d.reads != 1 {
			t.Errorf("head read of 12 MiB: %d responses, want 1", d.reads)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		var fakeNow atomic.Int64
		fakeNow.Store(time.Now().UnixMilli())
		fc := newClient(t, c, kvclient.Options{NowMs: fakeNow.Load})
		expiresAt := fakeNow.Load() + 10_000
		for _, k := range []string{"a/head/ttl", "z/head/ttl"} {
			mustSetBytes(t, fc, []byte(k), bytes.Repeat([]byte("t"), 400), expiresAt)
		}
		ks := bs("a/head/ttl", "z/head/ttl")
		heads, err := fc.BatchGetHeads(testCtx(t), ks, 1)
		if err != nil || len(heads) != 2 || heads["z/head/ttl"].ExpiresAt != expiresAt || heads["a/head/ttl"].Len != 400 {
			t.Fatalf("heads before expiry = %+v, %v", heads, err)
		}
		if h, found, err := fc.GetHead(testCtx(t), ks[0], 1); err != nil || !found || h.ExpiresAt != expiresAt {
			t.Fatalf("GetHead before expiry = %+v, %v, %v", h, found, err)
		}
		fakeNow.Add(10_000)
		if heads, err := fc.BatchGetHeads(testCtx(t), ks, 1); err != nil || len(heads) != 0 {
			t.Fatalf("heads at expiry = %+v, %v", heads, err)
		}
		if _, found, err := fc.GetHead(testCtx(t), ks[1], 1); err != nil || found {
			t.Fatalf("GetHead at expiry = %v, %v", found, err)
		}
	})

	t.Run("LocksResolvedAsForReads", func(t *testing.T) {
		// A committed primary whose secondaries were left locked: the head
		// read commits them and sees the new values.
		for _, k := range []string{"a/hlock/p", "z/hlock/1", "z/hlock/2"} {
			mustSet(t, kc, k, "old")
		}
		startTS := mustTS(t, c)
		c.RawPrewrite(t, startTS, "a/hlock/p", 600_000, map[string]string{
			"a/hlock/p": "newer", "z/hlock/1": "newer!", "z/hlock/2": "newer!!",
		})
		commitTS := mustTS(t, c)
		if kerr := c.RawCommit(t, startTS, commitTS, "a/hlock/p"); kerr != nil {
			t.Fatalf("commit primary: %v", kerr)
		}
		before := kc.Stats().LocksResolved
		if h, found, err := kc.GetHead(testCtx(t), []byte("z/hlock/1"), 1); err != nil || !found || h.Len != len("newer!") {
			t.Fatalf("GetHead of a locked secondary = %+v, %v, %v", h, found, err)
		}
		heads, err := kc.BatchGetHeads(testCtx(t), bs("z/hlock/1", "z/hlock/2", "a/hlock/p"), 1)
		if err != nil || heads["z/hlock/2"].Len != len("newer!!") || heads["a/hlock/p"].Len != len("newer") {
			t.Fatalf("BatchGetHeads over locks = %+v, %v", heads, err)
		}
		if kc.Stats().LocksResolved <= before {
			t.Fatal("no lock was resolved")
		}
		if locks := locksIn(t, c, "z/hlock/2"); len(locks) != 0 {
			t.Fatalf("locks left after head reads: %v", locks)
		}
		// An old snapshot still sees the old heads.
		if h, found, err := kc.Snapshot(commitTS-1).GetHead(testCtx(t), []byte("z/hlock/2"), 1); err != nil || !found || h.Len != len("old") {
			t.Fatalf("head below the commit = %+v, %v, %v", h, found, err)
		}

		// An abandoned transaction's lock: the head read waits for its TTL
		// and rolls it back, as a read does.
		mustSet(t, kc, "z/hlock/abandoned", "old")
		startTS = mustTS(t, c)
		c.RawPrewrite(t, startTS, "a/hlock/abandoned", 300, map[string]string{"a/hlock/abandoned": "x", "z/hlock/abandoned": "abandoned"})
		heads, err = kc.BatchGetHeads(testCtx(t), bs("z/hlock/abandoned", "a/hlock/abandoned"), 1)
		if err != nil || len(heads) != 1 || heads["z/hlock/abandoned"].Len != len("old") {
			t.Fatalf("heads over an abandoned lock = %+v, %v", heads, err)
		}
		if kerr := c.RawCommit(t, startTS, mustTS(t, c), "a/hlock/abandoned"); kerr == nil {
			t.Fatal("a late commit of the rolled-back primary succeeded")
		}
	})

	t.Run("TxnOwnWrites", func(t *testing.T) {
		txn, err := kc.Begin(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		defer txn.Rollback()
		_ = txn.Set([]byte("a/head/small"), []byte("changed!"), txn.Now()+60_000)
		_ = txn.Delete([]byte("z/head/long"))
		ks := []string{"a/head/small", "z/head/long", "a/head/big", "z/head/empty"}
		heads, err := txn.BatchGetHeads(testCtx(t), bs(ks...), 2)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range ks {
			if h, ok := heads[k]; ok {
				got = append(got, fmt.Sprintf("%s=%s:%d", k, h.Prefix, h.Len))
			}
		}
		if g, want := strings.Join(got, " "), fmt.Sprintf("a/head/small=ch:8 a/head/big=01:%d z/head/empty=:0", len(big)); g != want {
			t.Errorf("heads in the transaction = %s, want %s", g, want)
		}
		txn.Rollback()
		wantValue(t, kc, "a/head/small", "small")
	})
}
