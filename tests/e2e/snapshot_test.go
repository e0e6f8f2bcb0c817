package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/tests/cluster"
)

// snapFiles lists the snapshot SST files in a store's workdir.
func snapFiles(c *procCluster, id uint64) []string {
	files, _ := filepath.Glob(filepath.Join(c.dir, fmt.Sprintf("store-%d", id), "snap", "*", "*.sst"))
	return files
}

func regionInfo(r *router, store, region uint64) (*raftserverpb.RegionInfoResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return r.stores[store].RegionInfo(ctx, &raftserverpb.RegionInfoRequest{RegionId: region})
}

// leaderOf finds the store whose peer leads the region.
func leaderOf(r *router, region uint64) (uint64, *raftserverpb.RegionInfoResponse, error) {
	for id := range r.stores {
		info, err := regionInfo(r, id, region)
		if err == nil && info.GetLeader().GetStoreId() == id {
			return id, info, nil
		}
	}
	return 0, nil, fmt.Errorf("region %d: no leader yet", region)
}

// TestKill9DuringSnapshotReceive: a store process is killed with SIGKILL
// while it writes a region snapshot's files. It restarts (the half-written
// files are removed), gets a fresh snapshot, applies it and serves every
// value; no snapshot files are left behind.
func TestKill9DuringSnapshotReceive(t *testing.T) {
	const (
		region    = 1 // ["", "m")
		values    = 48
		valueSize = 1 << 20
	)
	c := startProcCluster(t, "--raft-log-keep", "5")
	r := newRouter(t, c)
	put := func(k, v string) {
		t.Helper()
		cluster.Eventually(t, 60*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return r.put(ctx, k, v)
		})
	}
	value := func(i int) string {
		return fmt.Sprintf("%05d", i) + strings.Repeat(string(rune('a'+i%26)), valueSize-5)
	}
	put("a-first", "v")
	c.kill9("store-3")
	before, err := regionInfo(r, 1, region)
	if err != nil {
		t.Fatal(err)
	}
	for i := range values {
		put(fmt.Sprintf("c%03d", i), value(i))
	}
	// More entries than the leader keeps for a lagging follower
	// (20 x raft_log_keep), so store 3 needs a snapshot.
	for i := range 120 {
		put(fmt.Sprintf("d%03d", i), "small")
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		_, info, err := leaderOf(r, region)
		if err != nil {
			return err
		}
		if info.GetTruncatedIndex() <= before.GetAppliedIndex()+1 {
			return fmt.Errorf("leader truncated at %d, not past store 3's %d", info.GetTruncatedIndex(), before.GetAppliedIndex())
		}
		return nil
	})

	c.startStore(3)
	deadline := time.Now().Add(60 * time.Second)
	for len(snapFiles(c, 3)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("store 3 never started writing snapshot files")
		}
		time.Sleep(time.Millisecond)
	}
	c.kill9("store-3")
	t.Logf("killed store 3 with %d snapshot files on disk", len(snapFiles(c, 3)))

	c.startStore(3)
	cluster.Eventually(t, 90*time.Second, func() error {
		_, lead, err := leaderOf(r, region)
		if err != nil {
			return err
		}
		st, err := regionInfo(r, 3, region)
		if err != nil {
			return err
		}
		if st.GetAppliedIndex() < lead.GetAppliedIndex() {
			return fmt.Errorf("store 3 applied %d, leader %d", st.GetAppliedIndex(), lead.GetAppliedIndex())
		}
		if left := snapFiles(c, 3); len(left) > 0 {
			return fmt.Errorf("snapshot files still on disk: %v", left)
		}
		return nil
	})
	if ents, err := os.ReadDir(filepath.Join(c.dir, "store-3", "snap")); err != nil || len(ents) != 0 {
		t.Fatalf("snapshot directory after the apply: %v, %v", ents, err)
	}

	// Store 3's replica holds every value: make it the leader and read.
	cluster.Eventually(t, 30*time.Second, func() error {
		lead, info, err := leaderOf(r, region)
		if err != nil {
			return err
		}
		if lead == 3 {
			return nil
		}
		var target *metapb.Peer
		for _, p := range info.GetRegion().GetPeers() {
			if p.GetStoreId() == 3 {
				target = p
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := r.stores[lead].TransferLeader(ctx, &raftserverpb.TransferLeaderRequest{RegionId: region, Peer: target}); err != nil {
			return err
		}
		return fmt.Errorf("leadership moving from store %d to store 3", lead)
	})
	for i := range values {
		k := fmt.Sprintf("c%03d", i)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, ok, err := r.get(ctx, k)
		cancel()
		if err != nil || !ok || v != value(i) {
			t.Fatalf("%s read from store 3's replica: found %v, %d bytes, right value %v, err %v", k, ok, len(v), v == value(i), err)
		}
	}
}
