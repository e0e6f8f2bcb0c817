package amnesia_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/tests/cluster"
)

// TestReplaceStoreThatLostItsDisk follows the documented procedure: the
// wiped store is refused; the operator removes it (PD refuses while it is
// still up); a node with an empty disk joins as a new store with an id from
// PD; PD re-replicates the dead store's regions onto it; every write is
// readable and each region has three voters again, one of them on the new
// store, which holds a real replica (reads survive losing another store).
func TestReplaceStoreThatLostItsDisk(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"m"}})
	want := map[string]string{}
	for i := range 30 {
		k, v := fmt.Sprintf("%c%02d", 'a'+i%26, i), fmt.Sprintf("v%02d", i)
		c.MustPut(k, v)
		want[k] = v
	}

	c.StopStore(1)
	c.WipeStore(1)
	if err := c.TryStartStore(1); err == nil || !strings.Contains(err.Error(), "already started with data") {
		t.Fatalf("wiped store 1 restarted: %v", err)
	}

	// PD marks store 1 DOWN after 2s without heartbeats; only then may it
	// be removed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cluster.Eventually(t, 20*time.Second, func() error {
		return c.PDClient.RemoveStore(ctx, 1)
	})
	if st, err := c.PDClient.GetStore(ctx, 1); err != nil || st.GetState() != metapb.StoreState_TOMBSTONE {
		t.Fatalf("store 1 after removal: %v, %v", st, err)
	}
	if err := c.TryStartStore(1); !errors.Is(err, pdclient.ErrStoreTombstone) {
		t.Fatalf("removed store 1 started again: %v", err)
	}

	newID := c.StartJoinStore()
	if newID <= 3 {
		t.Fatalf("the new store got id %d, an id of the cluster file", newID)
	}
	for _, region := range []uint64{100, 200} {
		cluster.Eventually(t, 60*time.Second, func() error {
			// A context per attempt: the removal's (above) may have run
			// out by now, and a stale one fails every attempt at once.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, _, err := c.PDClient.GetRegionByID(ctx, region)
			if err != nil {
				return err
			}
			var voters []uint64
			for _, p := range r.GetPeers() {
				if p.GetRole() == metapb.PeerRole_VOTER {
					voters = append(voters, p.GetStoreId())
				}
			}
			slices.Sort(voters)
			if !slices.Equal(voters, []uint64{2, 3, newID}) {
				return fmt.Errorf("region %d has voters on stores %v, want [2 3 %d]", region, voters, newID)
			}
			info, err := c.RegionInfo(newID, region)
			if err != nil || info.GetRegionError() != nil {
				return fmt.Errorf("new store %d has no peer of region %d yet: %v %v", newID, region, err, info.GetRegionError())
			}
			return nil
		})
	}
	check := func() {
		t.Helper()
		for k, v := range want {
			if got, found := c.MustGet(k); !found || got != v {
				t.Fatalf("%s reads %q (found %v), want %q", k, got, found, v)
			}
		}
	}
	check()
	// The new store's replica is real: with store 2 gone, stores 3 and the
	// new one still serve every key.
	c.StopStore(2)
	check()
}
