package txn_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// TestSizes: what the client accepts it can read back, in full, through
// every read path; what is over the limits is refused before it is sent.
func TestSizes(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})

	t.Run("LargestValue", func(t *testing.T) {
		v := bytes.Repeat([]byte("v"), limits.MaxValueSize)
		key := bytes.Repeat([]byte("k"), limits.MaxKeySize)
		mustSetBytes(t, kc, key, v, 0)
		e, found, err := kc.Get(testCtx(t), key)
		if err != nil || !found || !bytes.Equal(e.Value, v) {
			t.Fatalf("get: %d bytes, found %v, %v", len(e.Value), found, err)
		}
		if err := kc.Set(testCtx(t), []byte("over"), make([]byte, limits.MaxValueSize+1), 0); !errors.Is(err, kvclient.ErrTooLarge) {
			t.Fatalf("set over the limit: %v", err)
		}
		wantAbsent(t, kc, "over")
	})

	t.Run("ManyLargeValues", func(t *testing.T) {
		// 12 MiB in one transaction, more than one raft entry takes, in
		// both regions: prewrites cut by bytes, reads paged.
		const n = 12
		var ks [][]byte
		for i := range n {
			ks = append(ks, fmt.Appendf(nil, "%c/many/%02d", "bx"[i%2], i))
		}
		val := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 1<<20) }
		var before kvclient.Stats
		err := determined(t, "12 MiB transaction", func(ctx context.Context) error {
			before = kc.Stats() // the attempt that answers counts
			return kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
				for i, k := range ks {
					if err := txn.Set(k, val(i), 0); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if after := kc.Stats(); after.TwoPC != before.TwoPC+1 {
			t.Fatalf("two-phase commits %d → %d", before.TwoPC, after.TwoPC)
		}
		got, err := kc.BatchGet(testCtx(t), ks)
		if err != nil || len(got) != n {
			t.Fatalf("batch get: %d of %d, %v", len(got), n, err)
		}
		for i, k := range ks {
			if !bytes.Equal(got[string(k)].Value, val(i)) {
				t.Fatalf("batch get %s: %d bytes", k, len(got[string(k)].Value))
			}
		}
		all, err := kc.Scan(testCtx(t), []byte("b/many/"), []byte("b/many0"), 0)
		if err != nil {
			t.Fatal(err)
		}
		right, err := kc.Scan(testCtx(t), []byte("x/many/"), []byte("x/many0"), 0)
		if all = append(all, right...); err != nil || len(all) != n {
			t.Fatalf("scan: %d of %d, %v", len(all), n, err)
		}
		for _, e := range all {
			if len(e.Value) != 1<<20 {
				t.Fatalf("scan %s: %d bytes", e.Key, len(e.Value))
			}
		}
		var keysOnly int
		if _, err := kc.ScanFunc(testCtx(t), []byte("b/many/"), []byte("x/many0"), kvclient.ScanOptions{KeysOnly: true}, func(e kvclient.Entry) bool {
			if e.Value != nil {
				t.Errorf("keys-only scan returned a value for %s", e.Key)
			}
			if bytes.Contains(e.Key, []byte("/many/")) {
				keysOnly++
			}
			return true
		}); err != nil || keysOnly != n {
			t.Fatalf("keys-only scan: %d, %v", keysOnly, err)
		}
	})

	t.Run("EmptyKey", func(t *testing.T) {
		// "" and a key of the other region: a two-phase commit whose
		// primary is the empty key.
		err := determined(t, "two-phase commit of the empty key", func(ctx context.Context) error {
			return kc.RunTxn(ctx, func(txn *kvclient.Txn) error {
				_ = txn.Set(nil, []byte("empty"), 0)
				return txn.Set([]byte("z/empty"), []byte("z"), 0)
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		wantValue(t, kc, "", "empty")
		all, err := kc.Scan(testCtx(t), nil, []byte("\x00"), 0)
		if err != nil || len(all) != 1 || len(all[0].Key) != 0 {
			t.Fatalf("scan [\"\", \"\\x00\") = %v, %v", all, err)
		}
		if err := determined(t, "delete the empty key", func(ctx context.Context) error { return kc.Delete(ctx, []byte{}) }); err != nil {
			t.Fatal(err)
		}
		wantAbsent(t, kc, "")
	})

	t.Run("VisitLimit", func(t *testing.T) {
		// 40 keys, 30 of them deleted: a scan bounded to 8 visits per
		// call still finds the 10 live ones, over several calls, each
		// looking at no more than 8 keys.
		err := kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			for i := range 40 {
				if err := txn.Set(fmt.Appendf(nil, "v/%02d", i), []byte("x"), 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		err = kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			for i := range 40 {
				if i%4 != 0 {
					if err := txn.Delete(fmt.Appendf(nil, "v/%02d", i)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var live []string
		from, calls := []byte("v/"), 0
		for from != nil {
			calls++
			var page int
			from, err = kc.ScanFunc(testCtx(t), from, []byte("v0"), kvclient.ScanOptions{MaxVisit: 8, KeysOnly: true}, func(e kvclient.Entry) bool {
				live = append(live, string(e.Key))
				page++
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if page > 8 {
				t.Fatalf("call %d returned %d keys for 8 visits", calls, page)
			}
		}
		if len(live) != 10 || calls < 5 {
			t.Fatalf("%d calls found %v", calls, live)
		}
	})
}

// TestDeleteRange: every region's data goes, locks and long values
// included, across a split the client has not heard of; a transaction
// whose lock was deleted cannot commit afterwards; the cluster takes
// writes again at once.
func TestDeleteRange(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})
	long := strings.Repeat("l", 1000) // stored in the default column family
	for _, k := range []string{"", "a", "d/1", "g", "m", "q/1", "z"} {
		mustSet(t, kc, k, long)
	}
	// A transaction that prewrote and never committed (yet).
	startTS := mustTS(t, c)
	c.RawPrewrite(t, startTS, "d/locked", 60_000, map[string]string{"d/locked": long, "q/locked": "short"})
	if len(locksIn(t, c, "d/locked")) == 0 || len(locksIn(t, c, "q/locked")) == 0 {
		t.Fatal("no locks to delete")
	}
	// Split the first region where the client's cache does not know it.
	parent := c.RegionFor([]byte("d"))
	cluster.Eventually(t, 15*time.Second, func() error {
		leader := c.WaitLeader(parent.GetId())
		resp, err := c.Client(leader.GetStoreId()).SplitRegion(testCtx(t), &raftserverpb.SplitRegionRequest{RegionId: parent.GetId(), SplitKey: []byte("f")})
		if err != nil {
			return err
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("split: %v", re)
		}
		return nil
	})

	if err := kc.DeleteRange(testCtx(t), nil, nil); err != nil {
		t.Fatal(err)
	}
	if all, err := kc.Scan(testCtx(t), nil, nil, 0); err != nil || len(all) != 0 {
		t.Fatalf("after DeleteRange: %d keys, %v", len(all), err)
	}
	for _, k := range []string{"", "a", "g", "z", "d/locked", "q/locked"} {
		wantAbsent(t, kc, k)
		if locks := locksIn(t, c, k); len(locks) != 0 {
			t.Fatalf("locks left in the region of %q: %v", k, locks)
		}
	}
	// The transaction's commit finds nothing to commit, and commits
	// nothing.
	if kerr := c.RawCommit(t, startTS, mustTS(t, c), "d/locked"); kerr == nil || kerr.GetTxnNotFound() == nil {
		t.Fatalf("commit after the deletion = %v, want txn_not_found", kerr)
	}
	wantAbsent(t, kc, "d/locked")
	// Every replica applied it: a follower made leader has no "z" either.
	region := c.RegionFor([]byte("z")).GetId()
	old := c.WaitLeader(region)
	cluster.Eventually(t, 30*time.Second, func() error {
		leader := c.WaitLeader(region)
		if leader.GetStoreId() != old.GetStoreId() {
			return nil
		}
		info, err := c.RegionInfo(leader.GetStoreId(), region)
		if err != nil {
			return err
		}
		for _, p := range info.GetRegion().GetPeers() {
			if p.GetStoreId() != leader.GetStoreId() {
				if _, err := c.Client(leader.GetStoreId()).TransferLeader(testCtx(t), &raftserverpb.TransferLeaderRequest{RegionId: region, Peer: p}); err != nil {
					return err
				}
				break
			}
		}
		return errors.New("leadership not moved yet")
	})
	wantAbsent(t, kc, "z")
	mustSet(t, kc, "a", "again")
	wantValue(t, kc, "a", "again")
	// Part of the key space only.
	mustSet(t, kc, "b", "1")
	mustSet(t, kc, "y", "1")
	if err := kc.DeleteRange(testCtx(t), []byte("a"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, kc, "a")
	wantAbsent(t, kc, "b")
	wantValue(t, kc, "y", "1")
}
