package raft_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/tests/cluster"
)

func TestPartitionedMinorityCannotCommit(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("before", "1")
	old := c.WaitLeader(region)

	// Cut the leader off: it keeps believing it leads for a while, but
	// nothing it proposes can commit.
	c.Isolate(old.GetStoreId())
	info, err := c.RegionInfo(old.GetStoreId(), region)
	if err != nil {
		t.Fatal(err)
	}
	oldCtx := regionContext(info.GetRegion(), old)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = putVia(ctx, c, old.GetStoreId(), oldCtx, "minority", "x")
	cancel()
	if err == nil {
		t.Fatal("the isolated leader committed a write")
	}

	// The majority elects a new leader and goes on.
	cluster.Eventually(t, 10*time.Second, func() error {
		l := c.Leader(region)
		if l == nil || l.GetStoreId() == old.GetStoreId() {
			return fmt.Errorf("no new leader yet (have %v)", l)
		}
		return nil
	})
	c.MustPut("majority", "2")

	c.Heal()
	// The old leader steps down, catches up, and the minority write never appears.
	cluster.Eventually(t, 10*time.Second, func() error {
		st, err := c.RegionInfo(old.GetStoreId(), region)
		if err != nil {
			return err
		}
		lead, err := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
		if err != nil {
			return err
		}
		if st.GetAppliedIndex() < lead.GetAppliedIndex() {
			return fmt.Errorf("old leader applied %d, leader %d", st.GetAppliedIndex(), lead.GetAppliedIndex())
		}
		return nil
	})
	if _, ok := c.MustGet("minority"); ok {
		t.Fatal("write proposed in the minority became visible")
	}
	if v, ok := c.MustGet("majority"); !ok || v != "2" {
		t.Fatalf("majority = %q, %v", v, ok)
	}
}

func TestLaggingPeerCatchesUpBySnapshot(t *testing.T) {
	c := cluster.Start(t, cluster.Options{RaftLogKeep: 5})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("k-first", "v")
	lagging := c.StoreIDs()[2]
	if c.WaitLeader(region).GetStoreId() == lagging {
		lagging = c.StoreIDs()[1]
	}
	before, err := c.RegionInfo(lagging, region)
	if err != nil {
		t.Fatal(err)
	}
	c.StopStore(lagging)
	for i := range 120 {
		c.MustPut(fmt.Sprintf("k%03d", i), fmt.Sprintf("v%03d", i))
	}
	leader := c.WaitLeader(region)
	cluster.Eventually(t, 5*time.Second, func() error {
		info, err := c.RegionInfo(leader.GetStoreId(), region)
		if err != nil {
			return err
		}
		// With a follower down the leader still truncates once the log
		// passes raft_log_max, so the returning follower needs a snapshot.
		if info.GetTruncatedIndex() <= before.GetAppliedIndex()+1 {
			return fmt.Errorf("leader log not truncated past the stopped peer's %d yet (truncated %d, applied %d)", before.GetAppliedIndex(), info.GetTruncatedIndex(), info.GetAppliedIndex())
		}
		return nil
	})
	c.StartStore(lagging)
	cluster.Eventually(t, 15*time.Second, func() error {
		lead, err := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
		if err != nil {
			return err
		}
		st, err := c.RegionInfo(lagging, region)
		if err != nil {
			return err
		}
		if st.GetAppliedIndex() < lead.GetAppliedIndex() {
			return fmt.Errorf("lagging peer applied %d, leader %d", st.GetAppliedIndex(), lead.GetAppliedIndex())
		}
		return nil
	})
	// The caught-up peer holds the data: make it the leader and read.
	transferTo(t, c, region, lagging)
	for _, k := range []string{"k-first", "k000", "k119"} {
		if _, ok := c.MustGet(k); !ok {
			t.Fatalf("%s missing after snapshot catch-up", k)
		}
	}
}

func TestSplitUnderWriteLoad(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	parent := c.RegionFor([]byte("a")).GetId()
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		written sync.Map
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := fmt.Sprintf("w%d-%04d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				if err := c.TryPut(ctx, []byte(k), []byte(k)); err == nil {
					written.Store(k, true)
				}
				cancel()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	leader := c.WaitLeader(parent)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := c.Client(leader.GetStoreId()).SplitRegion(ctx, &raftserverpb.SplitRegionRequest{RegionId: parent, SplitKey: []byte("w2")})
	cancel()
	if err != nil || resp.GetRegionError() != nil {
		t.Fatalf("split: %v %v", err, resp.GetRegionError())
	}
	left, right := resp.GetLeft(), resp.GetRight()
	if string(left.GetEndKey()) != "w2" || string(right.GetStartKey()) != "w2" || left.GetRegionEpoch().GetVersion() != 2 {
		t.Fatalf("split gave %v | %v", left, right)
	}
	time.Sleep(500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	c.WaitLeader(right.GetId())
	// PD learns both halves.
	cluster.Eventually(t, 5*time.Second, func() error {
		c.PDClient.Cache().Clear()
		r := c.RegionFor([]byte("w3"))
		if r.GetId() != right.GetId() {
			return fmt.Errorf("PD routes w3 to region %d, want %d", r.GetId(), right.GetId())
		}
		return nil
	})
	n := 0
	written.Range(func(k, _ any) bool {
		n++
		if v, ok := c.MustGet(k.(string)); !ok || v != k.(string) {
			t.Errorf("acknowledged write %s = %q, %v", k, v, ok)
		}
		return true
	})
	if n == 0 {
		t.Fatal("no write succeeded")
	}
	t.Logf("%d acknowledged writes survived the split", n)
}

func TestAddAndRemovePeer(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Stores: 4, ExcludeStores: []uint64{4}})
	region := c.RegionFor([]byte("a")).GetId()
	c.MustPut("a", "1")
	leader := c.WaitLeader(region)
	admin := func(typ pdpb.ConfChangeType, p *metapb.Peer) *metapb.Region {
		t.Helper()
		var out *metapb.Region
		cluster.Eventually(t, 10*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			l := c.WaitLeader(region)
			resp, err := c.Client(l.GetStoreId()).ChangePeer(ctx, &raftserverpb.ChangePeerAdminRequest{RegionId: region, ChangeType: typ, Peer: p})
			if err != nil {
				return err
			}
			if re := resp.GetRegionError(); re != nil {
				return fmt.Errorf("%s", re.GetMessage())
			}
			out = resp.GetRegion()
			return nil
		})
		return out
	}
	r := admin(pdpb.ConfChangeType_ADD_LEARNER, &metapb.Peer{StoreId: 4})
	var learner *metapb.Peer
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == 4 {
			learner = p
		}
	}
	if learner == nil || learner.GetRole() != metapb.PeerRole_LEARNER {
		t.Fatalf("region after add learner: %v", r)
	}
	// The learner receives a snapshot and catches up.
	cluster.Eventually(t, 10*time.Second, func() error {
		st, err := c.RegionInfo(4, region)
		if err != nil {
			return err
		}
		if st.GetRegionError() != nil {
			return fmt.Errorf("%s", st.GetRegionError().GetMessage())
		}
		lead, err := c.RegionInfo(c.WaitLeader(region).GetStoreId(), region)
		if err != nil {
			return err
		}
		if st.GetAppliedIndex() < lead.GetAppliedIndex() {
			return fmt.Errorf("learner applied %d, leader %d", st.GetAppliedIndex(), lead.GetAppliedIndex())
		}
		return nil
	})
	r = admin(pdpb.ConfChangeType_PROMOTE_LEARNER, learner)
	// Remove a follower that is not the leader.
	var victim *metapb.Peer
	for _, p := range r.GetPeers() {
		if p.GetStoreId() != leader.GetStoreId() && p.GetStoreId() != 4 {
			victim = p
		}
	}
	r = admin(pdpb.ConfChangeType_REMOVE_PEER, victim)
	if len(r.GetPeers()) != 3 || r.GetRegionEpoch().GetConfVer() != 4 {
		t.Fatalf("region after changes: %v", r)
	}
	// The removed store drops its replica.
	cluster.Eventually(t, 10*time.Second, func() error {
		st, err := c.RegionInfo(victim.GetStoreId(), region)
		if err != nil {
			return err
		}
		if st.GetRegionError().GetRegionNotFound() == nil {
			return fmt.Errorf("store %d still holds region %d", victim.GetStoreId(), region)
		}
		return nil
	})
	// The new voter counts toward the quorum: stop another original store.
	c.MustPut("b", "2")
	transferTo(t, c, region, 4)
	if v, ok := c.MustGet("a"); !ok || v != "1" {
		t.Fatalf("a = %q, %v on the new peer", v, ok)
	}
}

func TestRestartAllStoresKeepsData(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"m"}})
	for i := range 30 {
		c.MustPut(fmt.Sprintf("%c%02d", 'a'+i%26, i), fmt.Sprint(i))
	}
	for _, id := range c.StoreIDs() {
		c.StopStore(id)
	}
	for _, id := range c.StoreIDs() {
		c.StartStore(id)
	}
	for i := range 30 {
		k := fmt.Sprintf("%c%02d", 'a'+i%26, i)
		if v, ok := c.MustGet(k); !ok || v != fmt.Sprint(i) {
			t.Fatalf("%s = %q, %v after restart", k, v, ok)
		}
	}
}

func regionContext(r *metapb.Region, leader *metapb.Peer) *kvContext {
	return &kvContext{RegionId: r.GetId(), RegionEpoch: r.GetRegionEpoch(), Peer: leader}
}

func transferTo(t *testing.T, c *cluster.Cluster, region, store uint64) {
	t.Helper()
	transferWithin(t, c, region, store, 10*time.Second)
}

// transferWithin is transferTo, waiting up to timeout.
func transferWithin(t *testing.T, c *cluster.Cluster, region, store uint64, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, func() error {
		l := c.WaitLeader(region)
		if l.GetStoreId() == store {
			return nil
		}
		info, err := c.RegionInfo(store, region)
		if err != nil {
			return err
		}
		var target *metapb.Peer
		for _, p := range info.GetRegion().GetPeers() {
			if p.GetStoreId() == store {
				target = p
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := c.Client(l.GetStoreId()).TransferLeader(ctx, &raftserverpb.TransferLeaderRequest{RegionId: region, Peer: target}); err != nil {
			return err
		}
		return fmt.Errorf("leadership moving to store %d", store)
	})
}

func TestSizeSplit(t *testing.T) {
	c := cluster.Start(t, cluster.Options{RegionSplitSize: 64 << 10})
	parent := c.RegionFor([]byte("k")).GetId()
	value := string(make([]byte, 1024))
	for i := range 200 {
		c.MustPut(fmt.Sprintf("k%04d", i), value)
	}
	// The leader notices the size at its next check, splits at the middle
	// key, and PD learns both halves.
	var regions int
	cluster.Eventually(t, 15*time.Second, func() error {
		c.PDClient.Cache().Clear()
		rs, err := c.PDClient.ScanRegions(context.Background(), nil, nil, 0)
		if err != nil {
			return err
		}
		if regions = len(rs); regions < 2 {
			return fmt.Errorf("still %d region(s)", regions)
		}
		return nil
	})
	if r := c.RegionFor([]byte("k0000")); r.GetId() != parent || r.GetRegionEpoch().GetVersion() < 2 {
		t.Fatalf("left half %v: want region %d with a bumped version", r, parent)
	}
	for _, k := range []string{"k0000", "k0100", "k0199"} {
		if v, ok := c.MustGet(k); !ok || len(v) != 1024 {
			t.Fatalf("%s after size split: %d bytes, %v", k, len(v), ok)
		}
	}
	t.Logf("%d regions after writing 200 KiB with a 64 KiB split size", regions)
}
