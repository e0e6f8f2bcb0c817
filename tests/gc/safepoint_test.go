package gc_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nokv/nokv/pkg/kvclient"
)

// TestReadBelowSafePointFails: a snapshot is held while its keys are
// overwritten and GC passes it. Reading with it afterwards must fail with
// ErrDataNotAvailable, whatever the read (a get, a batch get, a scan, head
// reads), in both regions: GC has collected versions the snapshot sees, so
// any answer would be half-collected data (a key present at the snapshot
// reading as absent next to one that was never overwritten).
func TestReadBelowSafePointFails(t *testing.T) {
	c := startGCCluster(t)
	kc := newClient(t, c)
	changed := []string{"a/k", "z/k"} // one per region
	for _, k := range changed {
		mustSet(t, kc, k, "v1")
	}
	mustSet(t, kc, "a/keep", "kept")
	mustSet(t, kc, "z/keep", "kept")
	snap := kc.Snapshot(mustTS(t, c))
	if e, found, err := snap.Get(testCtx(t), []byte("a/k")); err != nil || !found || string(e.Value) != "v1" {
		t.Fatalf("the snapshot above the safe point reads a/k = %q (found %v), %v; want v1", e.Value, found, err)
	}
	for _, k := range changed {
		mustSet(t, kc, k, "v2")
	}
	waitGCPast(t, c, mustTS(t, c))

	keys := [][]byte{[]byte("a/k"), []byte("a/keep"), []byte("z/k"), []byte("z/keep")}
	reads := []struct {
		name string
		read func() (string, error) // what the read returned, and its error
	}{
		{"Get", func() (string, error) {
			e, found, err := snap.Get(testCtx(t), []byte("a/k"))
			return fmt.Sprintf("a/k = %q, found %v", e.Value, found), err
		}},
		{"GetHead", func() (string, error) {
			h, found, err := snap.GetHead(testCtx(t), []byte("z/k"), 1)
			return fmt.Sprintf("z/k head %q (len %d), found %v", h.Prefix, h.Len, found), err
		}},
		{"BatchGet", func() (string, error) {
			m, err := snap.BatchGet(testCtx(t), keys)
			return fmt.Sprintf("%d of 4 keys", len(m)), err
		}},
		{"BatchGetHeads", func() (string, error) {
			m, err := snap.BatchGetHeads(testCtx(t), keys, 1)
			return fmt.Sprintf("%d of 4 heads", len(m)), err
		}},
		{"Scan", func() (string, error) {
			es, err := snap.Scan(testCtx(t), nil, nil, 0)
			return fmt.Sprintf("%d of 4 keys", len(es)), err
		}},
		{"ScanFunc keys only", func() (string, error) {
			n := 0
			_, err := snap.ScanFunc(testCtx(t), []byte("z/"), nil, kvclient.ScanOptions{KeysOnly: true}, func(kvclient.Entry) bool { n++; return true })
			return fmt.Sprintf("%d of 2 keys", n), err
		}},
	}
	for _, r := range reads {
		got, err := r.read()
		if !errors.Is(err, kvclient.ErrDataNotAvailable) {
			t.Errorf("%s with a snapshot below the GC safe point: %s, err %v; want ErrDataNotAvailable", r.name, got, err)
		} else if kvclient.IsRetryable(err) {
			t.Errorf("%s: %v is retryable", r.name, err)
		}
	}
	// A new snapshot reads the current values.
	for _, k := range changed {
		wantValue(t, kc, k, "v2")
	}
	wantValue(t, kc, "z/keep", "kept")
}
