package raft_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

func TestReplicationAndLeaderFailover(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	region := c.RegionFor([]byte("a")).GetId()
	for i := range 20 {
		c.MustPut(fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i))
	}
	// Every replica applies the same log.
	cluster.Eventually(t, 5*time.Second, func() error {
		var applied []uint64
		for _, id := range c.StoreIDs() {
			info, err := c.RegionInfo(id, region)
			if err != nil {
				return err
			}
			applied = append(applied, info.GetAppliedIndex())
		}
		for _, a := range applied[1:] {
			if a != applied[0] {
				return fmt.Errorf("applied indexes differ: %v", applied)
			}
		}
		return nil
	})

	old := c.WaitLeader(region)
	c.StopStore(old.GetStoreId())
	leader := c.WaitLeader(region)
	if leader.GetStoreId() == old.GetStoreId() {
		t.Fatalf("leader still on stopped store %d", old.GetStoreId())
	}
	for i := range 20 {
		if v, ok := c.MustGet(fmt.Sprintf("k%02d", i)); !ok || v != fmt.Sprintf("v%02d", i) {
			t.Fatalf("after failover k%02d = %q, %v", i, v, ok)
		}
	}
	c.MustPut("after", "failover")
	c.StartStore(old.GetStoreId())
	if v, ok := c.MustGet("after"); !ok || v != "failover" {
		t.Fatalf("after = %q, %v", v, ok)
	}
}

// A leader holds back the empty appends etcd raft broadcasts when its commit
// index moves: the next append to the follower carries the commit, and a
// held one goes out at the next tick. Writes one after another make such an
// append per follower per write, each superseded by the next write's; once
// the writes stop, the followers still learn the last commit and apply
// everything within a few ticks.
func TestEmptyAppendsHeldUntilTheNextAppendOrTick(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	region := c.RegionFor([]byte("a")).GetId()
	leader := c.WaitLeader(region)
	c.MustPut("warm", "up")
	skipped := storeCounter(t, c, leader.GetStoreId(), "raft_empty_appends_skipped")
	const writes = 40
	for i := range writes {
		c.MustPut(fmt.Sprintf("k%02d", i), "v")
	}
	if c.WaitLeader(region).GetStoreId() != leader.GetStoreId() {
		t.Skip("leadership moved during the writes")
	}
	// Two followers, one empty append each per write: most are superseded.
	if d := storeCounter(t, c, leader.GetStoreId(), "raft_empty_appends_skipped") - skipped; d < writes {
		t.Errorf("%d empty appends skipped over %d writes, want at least %d", d, writes, writes)
	}
	// The last commit reaches the followers without another write (the
	// held append at the tick; heartbeats carry it too).
	cluster.Eventually(t, 2*time.Second, func() error {
		var applied []uint64
		for _, id := range c.StoreIDs() {
			info, err := c.RegionInfo(id, region)
			if err != nil {
				return err
			}
			applied = append(applied, info.GetAppliedIndex())
		}
		for _, a := range applied[1:] {
			if a != applied[0] {
				return fmt.Errorf("applied indexes differ: %v", applied)
			}
		}
		return nil
	})
}
