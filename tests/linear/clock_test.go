package linear

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/tests/cluster"
)

// TestRedisTTLWithStoreClockAhead runs the cluster with store 1's wall
// clock 30 s ahead (the test's skewstore binary: nokv-store with the
// storeserver clock knob set from NOKV_TEST_CLOCK_AHEAD) while store 1
// leads region 1 and collects garbage there every 100 ms with a GC life
// time of 1 s. Keys set with a 20 s TTL (PX) through the gateway, among
// the usual workload, must stay readable until their TTL by TSO time has
// run out: a store judging expiry by its own clock would think they
// expired 10 s ago and collect them. Keys with a 300 ms TTL must go, and
// store 1 must report deleted keys, which shows GC did run there.
func TestRedisTTLWithStoreClockAhead(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	const fast = 1
	c := startProcCluster(t, procOptions{
		storeBin: "skewstore", gcLifeTime: time.Second, gcInterval: 100 * time.Millisecond,
		storeEnv: func(id uint64) []string {
			if id == fast {
				return []string{"NOKV_TEST_CLOCK_AHEAD=30s"}
			}
			return []string{}
		},
	})
	c.moveLeader(1, fast)
	w := startWorkload(t, c, "clock", 15)
	defer w.halt()
	w.waitProgress(20, 60*time.Second, "before the TTL keys")

	rc := newRedis(c.gwAddrs[0])
	defer rc.Close()
	const ttl = 20 * time.Second
	ctx := context.Background()
	var firstSet time.Time
	const live = 20
	for i := range live {
		k := fmt.Sprintf("a/ttl/%d", i) // region 1, led by the fast store
		cluster.Eventually(t, 30*time.Second, func() error {
			if firstSet.IsZero() {
				firstSet = time.Now()
			}
			return rc.Set(ctx, k, "live", ttl).Err()
		})
	}
	for i := range 5 {
		k := fmt.Sprintf("a/short/%d", i)
		cluster.Eventually(t, 30*time.Second, func() error { return rc.Set(ctx, k, "gone", 300*time.Millisecond).Err() })
	}
	// GC rounds on the fast store with safe points past every set, and
	// the short keys collected there.
	before := storeStat(t, c, fast, "gc_deleted_keys")
	cluster.Eventually(t, 20*time.Second, func() error {
		if d := storeStat(t, c, fast, "gc_deleted_keys"); d <= before {
			return fmt.Errorf("store %d deleted no keys by GC yet (%v)", fast, d)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // more rounds, with the safe point past the TTL sets

	for i := range 5 {
		if n, err := rc.Exists(ctx, fmt.Sprintf("a/short/%d", i)).Result(); err != nil || n != 0 {
			t.Errorf("a/short/%d, expired by TSO time: EXISTS = %d, %v", i, n, err)
		}
	}
	lost := 0
	for i := range live {
		k := fmt.Sprintf("a/ttl/%d", i)
		var v string
		cluster.Eventually(t, 10*time.Second, func() error {
			var err error
			v, err = rc.Get(ctx, k).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			return nil
		})
		if v != "live" {
			lost++
		}
	}
	if since := time.Since(firstSet); since > ttl-2*time.Second {
		t.Skipf("the checks ran %v after the TTL keys were set, too close to their TTL of %v to judge", since, ttl)
	}
	if lost > 0 {
		t.Errorf("%d of %d keys set with a %v TTL were gone before it ran out (store %d's clock is 30 s ahead)", lost, live, ttl, fast)
	}
	if l := c.leader(1); l != fast {
		t.Logf("leadership of region 1 moved to store %d during the test", l)
	}
	w.finish()
}

// storeStat reads one of a store's NoKV.Stats.store counters from its
// metrics endpoint.
func storeStat(t *testing.T, c *procCluster, id uint64, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.metrics[id]+"/debug/vars", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var vars struct {
		Stats struct {
			Store map[string]any `json:"store"`
		} `json:"NoKV.Stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		return -1
	}
	v, _ := vars.Stats.Store[name].(float64)
	return v
}

// TestRedisAmnesiaOfOneStore: a store loses its whole data directory (a
// disk replaced, a volume not mounted) and comes back with the same id,
// at the worst moment: one follower of region 1 ("lagging") was cut off
// while the leader and the other follower ("forgetful") acknowledged
// writes; then the leader and the forgetful store are killed, the
// forgetful one restarts with an empty directory, and the partition heals.
// The forgetful store must not help the lagging one form a majority that
// lacks the acknowledged writes (a raft voter that forgot its log and its
// votes). No acknowledged write may be lost and the history must stay
// linearizable, whatever the amnesiac store does (refuse to start, or
// rejoin without a vote until it has caught up).
func TestRedisAmnesiaOfOneStore(t *testing.T) {
	c := startProcCluster(t, procOptions{})
	w := startWorkload(t, c, "amnesia", 15)
	defer w.halt()
	w.waitProgress(20, 60*time.Second, "before the fault")
	const region = 1
	leader := c.waitLeader(region)
	lagging := leader%3 + 1
	forgetful := lagging%3 + 1
	t.Logf("store %d leads region %d; store %d is cut off, store %d will forget", leader, region, lagging, forgetful)
	c.isolate(lagging)
	w.waitProgress(50, 60*time.Second, "while a follower is cut off")
	c.kill9(storeName(leader))
	c.kill9(storeName(forgetful))
	if err := os.RemoveAll(filepath.Join(c.dir, storeName(forgetful))); err != nil {
		t.Fatal(err)
	}
	c.heal()
	c.startStore(forgetful)
	// The forgetful store must be refused before it opens a raft peer
	// (PD knows its id was started with data): it exits, and never votes.
	name := storeName(forgetful)
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	select {
	case <-p.Exited():
		c.mu.Lock()
		log := c.logs[name].String()
		c.mu.Unlock()
		if p.Err() == nil || !strings.Contains(log, "already started with data") {
			t.Fatalf("store %d restarted on an empty data directory exited with %v, want a refusal naming the lost data; log:\n%s", forgetful, p.Err(), lastLines(log, 20))
		}
		c.mu.Lock()
		delete(c.procs, name)
		c.mu.Unlock()
	case <-time.After(60 * time.Second):
		t.Fatalf("store %d restarted on an empty data directory is still running: it should have been refused", forgetful)
	}
	time.Sleep(5 * time.Second) // the lagging store alone (with the refused one gone)
	c.startStore(leader)
	w.waitProgress(30, 60*time.Second, "after the fault")
	w.finish()
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
