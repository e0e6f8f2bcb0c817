package gateway

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/tests/cluster"
)

// The raft backend combines concurrent writes of one region into one
// transaction (services/gateway/internal/backend/raft/combine.go). These
// tests drive it with many real clients at once and check what each client
// was told: every command's own reply, as if the commands had run one
// after another, and nothing lost or doubled.

// combineClients returns a client of a fresh gateway over a fresh cluster
// with a pool of n connections, and the cluster.
func combineClients(t *testing.T, n int) (*redis.Client, *cluster.Cluster) {
	t.Helper()
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	srv := startGateway(t, c)
	rc := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), MaxRetries: -1, PoolSize: n, MinIdleConns: n,
		ReadTimeout: 2 * time.Minute, WriteTimeout: time.Minute,
	})
	t.Cleanup(func() { rc.Close() })
	return rc, c
}

// TestCombinedIncrementsOfOneKey: 50 clients increment one key at once.
// Every acknowledged INCR/INCRBY is in the final value, every reply is the
// counter just after that command (so the replies, sorted by value, step
// by each command's own increment, with no value told twice), and the
// commands shared transactions: far fewer store requests than commands.
func TestCombinedIncrementsOfOneKey(t *testing.T) {
	const clients, each = 50, 40
	rc, c := combineClients(t, clients)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := storeRPCs(t, c)

	type reply struct{ by, value int64 }
	var (
		mu      sync.Mutex
		replies []reply
		wg      sync.WaitGroup
		errs    = make(chan error, clients)
	)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				// Every fifth client adds 7 with INCRBY, the others 1 with INCR.
				by := int64(1)
				var v int64
				var err error
				if i%5 == 0 {
					by = 7
					v, err = rc.IncrBy(ctx, "counter", by).Result()
				} else {
					v, err = rc.Incr(ctx, "counter").Result()
				}
				if err != nil {
					errs <- fmt.Errorf("client %d, command %d: %w", i, j, err)
					return
				}
				mu.Lock()
				replies = append(replies, reply{by, v})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var sum int64
	for _, r := range replies {
		sum += r.by
	}
	got, err := rc.Get(ctx, "counter").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if got != sum {
		t.Fatalf("counter = %d, the acknowledged increments sum to %d", got, sum)
	}
	sort.Slice(replies, func(a, b int) bool { return replies[a].value < replies[b].value })
	prev := int64(0)
	for _, r := range replies {
		if r.value != prev+r.by {
			t.Fatalf("a reply of %d after %d, from an increment by %d: not a serial order", r.value, prev, r.by)
		}
		prev = r.value
	}
	rpcs := storeRPCs(t, c) - before
	t.Logf("%d increments from %d clients: %d store RPCs", len(replies), clients, rpcs)
	// Alone, every INCR costs a read and a prewrite (two RPCs).
	if rpcs >= int64(len(replies)) {
		t.Fatalf("%d increments took %d store RPCs: not combined", len(replies), rpcs)
	}
}

// TestCombinedCommandsKeepTheirOwnReplies: commands combined with others
// that fail (INCR and INCRBYFLOAT of text, INCRBY past 2^63-1) fail
// alone with their own error, and the writes around them commit; SET NX of
// one key from every client succeeds for exactly one; GETSET from every
// client returns a chain (each old value was another client's new one,
// each at most once).
func TestCombinedCommandsKeepTheirOwnReplies(t *testing.T) {
	const clients, rounds = 40, 20
	rc, _ := combineClients(t, clients)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for k, v := range map[string]string{"text": "abc", "max": "9223372036854775807"} {
		if err := rc.Set(ctx, k, v, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	var (
		mu      sync.Mutex
		olds    = map[string]int{} // GETSET's old values, counted
		news    = map[string]bool{}
		nxWins  int
		failure []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failure = append(failure, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				key := fmt.Sprintf("k:%d:%d", i, r)
				switch (i + r) % 5 {
				case 0:
					if err := rc.Incr(ctx, "text").Err(); err == nil || err.Error() != "ERR value is not an integer or out of range" {
						fail("INCR text: %v", err)
					}
				case 1:
					if err := rc.IncrByFloat(ctx, "text", 1).Err(); err == nil || err.Error() != "ERR value is not a valid float" {
						fail("INCRBYFLOAT text: %v", err)
					}
				case 2:
					if err := rc.IncrBy(ctx, "max", 1).Err(); err == nil || err.Error() != "ERR increment or decrement would overflow" {
						fail("INCRBY max 1: %v", err)
					}
				case 3:
					ok, err := rc.SetNX(ctx, fmt.Sprintf("nx:%d", r), i, 0).Result()
					if err != nil {
						fail("SETNX: %v", err)
					} else if ok {
						mu.Lock()
						nxWins++
						mu.Unlock()
					}
				case 4:
					old, err := rc.SetArgs(ctx, "chain", key, redis.SetArgs{Get: true}).Result()
					if err != nil && err != redis.Nil {
						fail("SET chain GET: %v", err)
						break
					}
					mu.Lock()
					olds[old]++ // "" once: the first
					news[key] = true
					mu.Unlock()
				}
				// A blind write beside the failing ones: it must commit.
				if err := rc.Set(ctx, key, r, 0).Err(); err != nil {
					fail("SET %s: %v", key, err)
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range failure {
		t.Error(f)
	}
	for r := range rounds {
		for i := range clients {
			key := fmt.Sprintf("k:%d:%d", i, r)
			if (i+r)%5 == 4 {
				continue // its value is "r" too, but was also the chain's
			}
			if v, err := rc.Get(ctx, key).Result(); err != nil || v != fmt.Sprint(r) {
				t.Fatalf("GET %s = %q, %v; want %d", key, v, err, r)
			}
		}
	}
	// Every round r has clients with (i+r)%5 == 3; each round's key is set once.
	nxKeys := 0
	for r := range rounds {
		if n, _ := rc.Exists(ctx, fmt.Sprintf("nx:%d", r)).Result(); n == 1 {
			nxKeys++
		}
	}
	if nxWins != nxKeys {
		t.Fatalf("%d SETNX succeeded for %d keys: want one each", nxWins, nxKeys)
	}
	final, err := rc.Get(ctx, "chain").Result()
	if err != nil {
		t.Fatal(err)
	}
	for old, n := range olds {
		if n != 1 {
			t.Fatalf("GETSET chain returned %q %d times", old, n)
		}
		if old == final {
			t.Fatalf("the final value %q was also returned as an old one", final)
		}
	}
	if olds[""] != 1 {
		t.Fatalf("no GETSET found the chain empty")
	}
	// Serially, the old values are the empty one and every new value but
	// the last.
	if !news[final] || len(olds) != len(news) {
		t.Fatalf("%d GETSETs returned %d distinct old values; final %q written: %v", len(news), len(olds), final, news[final])
	}
	for old := range olds {
		if old != "" && !news[old] {
			t.Fatalf("GETSET returned %q, which no GETSET wrote", old)
		}
	}
	for _, v := range []string{"text", "max"} {
		if got, _ := rc.Get(ctx, v).Result(); got != map[string]string{"text": "abc", "max": "9223372036854775807"}[v] {
			t.Fatalf("%s = %q after failed increments", v, got)
		}
	}
}
