package amnesia_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// TestWipedStoreCannotUndoCommittedWrites is the scenario. Store 3
// is cut off and lags; writes are acknowledged by stores 1 and 2; both stop
// together and store 1 loses its disk; store 1 restarts with the same
// command line and store 3 is reconnected. A store that re-created its
// peers from the cluster file would have an empty log and no vote record:
// it would vote for the lagging store 3, which becomes leader without the
// acknowledged writes and later overwrites them on store 2. The wiped store
// must be refused instead, and once the intact store 2 is back every
// acknowledged write must be readable.
//
// On the code before the fix the wiped store started and the writes made
// while store 3 lagged were not found.
func TestWipedStoreCannotUndoCommittedWrites(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	c.MustPut("before", "v0")

	c.Isolate(3)
	acked := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("k%02d", i), fmt.Sprintf("v%02d", i)
		c.MustPut(k, v)
		acked[k] = v
	}
	c.StopStore(1)
	c.StopStore(2)
	c.WipeStore(1)
	c.Heal()

	err := c.TryStartStore(1)
	if err == nil {
		// Show what the wiped store does: with store 3 it elects a leader
		// that lacks the acknowledged writes.
		var lost []string
		cluster.Eventually(t, 20*time.Second, func() error {
			lost = lost[:0]
			for k := range acked {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, found, err := c.TryGet(ctx, []byte(k))
				cancel()
				if err != nil {
					return err
				}
				if !found {
					lost = append(lost, k)
				}
			}
			return nil
		})
		t.Fatalf("the store whose data directory was wiped started again under its old id; acknowledged writes not found: %v", lost)
	}
	for _, want := range []string{"store 1 was already started with data", "nokv-config store remove 1", "--join"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal of the wiped store does not say %q: %v", want, err)
		}
	}
	if c.Running(1) {
		t.Fatal("refused store is running")
	}
	// Store 3 alone has no quorum: nothing is served, nothing is lost.
	time.Sleep(time.Second)
	if l := c.Leader(100); l != nil {
		t.Fatalf("region 100 has leader %v with only store 3 up", l)
	}

	c.StartStore(2)
	for k, v := range acked {
		if got, found := c.MustGet(k); !found || got != v {
			t.Fatalf("acknowledged write %s=%s reads %q (found %v) after the intact store returned", k, v, got, found)
		}
	}
	// The refusal is permanent, not a race with PD: a second try is refused
	// too.
	if err := c.TryStartStore(1); err == nil || !strings.Contains(err.Error(), "already started with data") {
		t.Fatalf("second start of the wiped store: %v", err)
	}
}
