package txn_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

// TestRegionChanges moves regions under a client whose route cache is
// warm, so that its requests meet stale epochs, former leaders and a dead
// store, and checks that it keeps working without the caller noticing.
func TestRegionChanges(t *testing.T) {
	c := startCluster(t)
	kc := newClient(t, c, kvclient.Options{})

	t.Run("SplitUnderStaleCache", func(t *testing.T) {
		mustSet(t, kc, "c/split", "1")
		mustSet(t, kc, "h/split", "1")
		parent := c.RegionFor([]byte("c/split"))
		var resp *raftserverpb.SplitRegionResponse
		cluster.Eventually(t, 15*time.Second, func() error {
			leader := c.WaitLeader(parent.GetId())
			var err error
			resp, err = c.Client(leader.GetStoreId()).SplitRegion(testCtx(t), &raftserverpb.SplitRegionRequest{
				RegionId: parent.GetId(), SplitKey: []byte("f"),
			})
			if err != nil {
				return err
			}
			if re := resp.GetRegionError(); re != nil {
				return fmt.Errorf("split: region error %v", re)
			}
			return nil
		})
		right := resp.GetRight()
		if string(right.GetStartKey()) != "f" {
			t.Fatalf("split answered right region %v", right)
		}
		c.WaitLeader(right.GetId())

		before := kc.Stats()
		// The client still routes h/split to the parent's old epoch.
		wantValue(t, kc, "h/split", "1")
		wantValue(t, kc, "c/split", "1")
		// The keys now live in two regions: two-phase commit.
		err := kc.RunTxn(testCtx(t), func(txn *kvclient.Txn) error {
			_ = txn.Set([]byte("c/split"), []byte("2"), 0)
			return txn.Set([]byte("h/split"), []byte("2"), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
		after := kc.Stats()
		if after.RegionRetries <= before.RegionRetries {
			t.Fatalf("no region error met (retries %d → %d): the cache was not stale", before.RegionRetries, after.RegionRetries)
		}
		if after.TwoPC != before.TwoPC+1 {
			t.Fatalf("two-phase commits %d → %d, want one more across the new boundary", before.TwoPC, after.TwoPC)
		}
		got, err := kc.Scan(testCtx(t), []byte("c/split"), []byte("h/split0"), 0)
		if err != nil || len(got) != 2 || string(got[0].Value) != "2" || string(got[1].Value) != "2" {
			t.Fatalf("scan across the split = %v, %v", got, err)
		}
		// PD learned the split too (reported by the leader).
		cluster.Eventually(t, 15*time.Second, func() error {
			c.PDClient.Cache().InvalidateKey([]byte("h/split"))
			if r := c.RegionFor([]byte("h/split")); r.GetId() != right.GetId() {
				return fmt.Errorf("PD routes h/split to region %d, want %d", r.GetId(), right.GetId())
			}
			return nil
		})
	})

	t.Run("LeaderTransfer", func(t *testing.T) {
		mustSet(t, kc, "x/transfer", "1")
		region := c.RegionFor([]byte("x/transfer"))
		old := c.WaitLeader(region.GetId())
		var target *metapb.Peer
		for _, p := range region.GetPeers() {
			if p.GetStoreId() != old.GetStoreId() {
				target = p
				break
			}
		}
		cluster.Eventually(t, 15*time.Second, func() error {
			leader := c.Leader(region.GetId())
			if leader != nil && leader.GetStoreId() == target.GetStoreId() {
				return nil
			}
			if leader != nil {
				resp, err := c.Client(leader.GetStoreId()).TransferLeader(testCtx(t), &raftserverpb.TransferLeaderRequest{
					RegionId: region.GetId(), Peer: target,
				})
				if err != nil {
					return err
				}
				if re := resp.GetRegionError(); re != nil {
					return fmt.Errorf("transfer: region error %v", re)
				}
			}
			return fmt.Errorf("leader of region %d is %v, want store %d", region.GetId(), leader, target.GetStoreId())
		})
		before := kc.Stats().RegionRetries
		if err := incr(testCtx(t), kc, []byte("x/transfer"), 1); err != nil {
			t.Fatal(err)
		}
		wantValue(t, kc, "x/transfer", "2")
		if after := kc.Stats().RegionRetries; after <= before {
			t.Fatalf("no NotLeader met (retries %d → %d): the cache was not stale", before, after)
		}
	})

	t.Run("LeaderStopped", func(t *testing.T) {
		key := []byte("y/stop")
		region := c.RegionFor(key)
		leader := c.WaitLeader(region.GetId())
		ctx := testCtx(t)

		// A writer increments the counter throughout; every increment is
		// acknowledged, undetermined, or a test failure.
		var (
			acked, undetermined atomic.Int64
			stop                atomic.Bool
			wg                  sync.WaitGroup
		)
		wg.Go(func() {
			for !stop.Load() {
				err := incr(ctx, kc, key, 1)
				switch {
				case err == nil:
					acked.Add(1)
				case errors.Is(err, kvclient.ErrCommitUndetermined):
					undetermined.Add(1)
				default:
					t.Errorf("incr while the leader is down: %v", err)
					return
				}
			}
		})
		waitProgress := func(from int64, what string) {
			cluster.Eventually(t, 30*time.Second, func() error {
				if t.Failed() {
					t.FailNow()
				}
				if n := acked.Load(); n < from+10 {
					return fmt.Errorf("%s: %d increments acknowledged, want %d", what, n, from+10)
				}
				return nil
			})
		}
		waitProgress(0, "before the stop")
		c.StopStore(leader.GetStoreId())
		waitProgress(acked.Load(), "with the leader stopped")
		newLeader := c.WaitLeader(region.GetId())
		if newLeader.GetStoreId() == leader.GetStoreId() {
			t.Fatalf("leader still on stopped store %d", leader.GetStoreId())
		}
		c.StartStore(leader.GetStoreId())
		waitProgress(acked.Load(), "after the restart")
		stop.Store(true)
		wg.Wait()

		v, found := mustGet(t, kc, string(key))
		n, err := strconv.ParseInt(v, 10, 64)
		if !found || err != nil {
			t.Fatalf("counter = %q, %v", v, found)
		}
		if a, u := acked.Load(), undetermined.Load(); n < a || n > a+u {
			t.Fatalf("counter = %d, want between %d acknowledged and %d with the undetermined", n, a, a+u)
		}
		t.Logf("%d increments acknowledged, %d undetermined; stats %+v", acked.Load(), undetermined.Load(), kc.Stats())
	})

	t.Run("LeaderIsolated", func(t *testing.T) {
		// The leader's store is cut off from its peers but still answers
		// clients: requests to it hang or fail until it steps down, and
		// the client must move on (attempt timeout, NotLeader).
		fast := newClient(t, c, kvclient.Options{RPCTimeout: time.Second})
		key := []byte("y/isolated")
		if err := incr(testCtx(t), fast, key, 1); err != nil {
			t.Fatal(err)
		}
		region := c.RegionFor(key)
		old := c.WaitLeader(region.GetId())
		c.Isolate(old.GetStoreId())
		defer c.Heal()
		err := incr(testCtx(t), fast, key, 1)
		if errors.Is(err, kvclient.ErrCommitUndetermined) {
			t.Logf("increment undetermined: %v", err)
		} else if err != nil {
			t.Fatalf("incr with the leader isolated: %v", err)
		}
		leader := c.WaitLeader(region.GetId())
		if leader.GetStoreId() == old.GetStoreId() {
			t.Fatalf("the isolated store %d still leads", old.GetStoreId())
		}
		c.Heal()
		if err := incr(testCtx(t), fast, key, 1); err != nil {
			t.Fatal(err)
		}
		v, _ := mustGet(t, fast, string(key))
		if err == nil && v != "3" {
			t.Fatalf("counter = %s, want 3", v)
		}
	})
}
