package kvclient

import (
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/metapb"
)

// twoRegionTxn commits a=1, z=1 across regions 1 ("", "m") and 2 ("m", "").
func twoRegionTxn(t *testing.T, c *Client) {
	t.Helper()
	err := c.RunTxn(testCtx(t), func(txn *Txn) error {
		_ = txn.Set([]byte("a"), []byte("1"), 0)
		return txn.Set([]byte("z"), []byte("1"), 0)
	})
	if err != nil {
		t.Fatalf("RunTxn = %v; a failed secondary must not fail the transaction", err)
	}
}

// failSecondaryCommits makes the first n commits in region 2 fail (n < 0:
// all) and returns the number of commits region 2 was sent.
func failSecondaryCommits(w *world, n int64) *atomic.Int64 {
	var calls atomic.Int64
	w.inject = func(_ uint64, method string, rc *kvrpcpb.Context, _ proto.Message) (*kvrpcpb.RegionError, error) {
		if method == "Commit" && rc.GetRegionId() == 2 {
			if k := calls.Add(1); n < 0 || k <= n {
				return nil, status.Error(codes.Internal, "disk on fire")
			}
		}
		return nil, nil
	}
	return &calls
}

func TestSecondaryCommitRetriedInBackground(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	calls := failSecondaryCommits(w, 3)
	c := w.client(Options{})
	twoRegionTxn(t, c)
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		z := string(w.data["z"])
		w.mu.Unlock()
		if z == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("secondary never committed; %d commits sent to its region", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The counter moves just after the commit that succeeded.
	for c.Stats().SecondaryCommitsRecovered == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s := c.Stats(); s.SecondaryCommitFailures != 1 || s.SecondaryCommitsRecovered != 1 || s.SecondaryCommitsAbandoned != 0 || s.Txns != 1 {
		t.Fatalf("stats %+v", s)
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("%d commits sent to the secondary's region, want 4 (3 failed, 1 succeeded)", n)
	}
}

func TestCloseStopsSecondaryRetries(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	calls := failSecondaryCommits(w, -1)
	c := w.client(Options{})
	twoRegionTxn(t, c)
	// Let a retry or two happen, then close: the retries stop, and Close
	// returns only once they have.
	time.Sleep(200 * time.Millisecond)
	c.Close()
	after := calls.Load()
	time.Sleep(500 * time.Millisecond)
	if n := calls.Load(); n != after {
		t.Fatalf("%d commits sent after Close returned", n-after)
	}
	if s := c.Stats(); s.SecondaryCommitFailures != 1 || s.SecondaryCommitsRecovered != 0 || s.SecondaryCommitsAbandoned != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSecondaryRetriesAreBounded(t *testing.T) {
	w := newWorld(t, 3)
	w.setRegions([]*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}, map[uint64]uint64{1: 1, 2: 2})
	calls := failSecondaryCommits(w, -1)
	c := w.client(Options{})
	// Fill every retry slot: the next failure is abandoned at once.
	for range maxSecondaryRetriers {
		c.bgSlots <- struct{}{}
	}
	twoRegionTxn(t, c)
	if s := c.Stats(); s.SecondaryCommitFailures != 1 || s.SecondaryCommitsAbandoned != 1 {
		t.Fatalf("stats %+v", s)
	}
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d commits sent to the secondary's region, want only the first attempt", n)
	}
	for range maxSecondaryRetriers {
		<-c.bgSlots
	}
}
