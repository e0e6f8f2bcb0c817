package gateway

import (
	"context"
	"expvar"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
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

// combineVar reads a counter of /debug/vars' nokv_raft_combine (the
// gateway runs in this process).
func combineVar(t *testing.T, name string) int64 {
	return backendVar(t, "nokv_raft_combine", name)
}

// startBoomGateway starts a cluster split at db 0's "m" (records below it
// in region 1, their elements in region 2) and a gateway on it whose
// writes of the key "boom" panic after their function ran, and returns a
// go-redis client with a connection per each of clients.
func startBoomGateway(t *testing.T, clients int) (*gatewayserver.Server, *redis.Client) {
	t.Helper()
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	srv := startGateway(t, c, func(cfg *gatewayserver.Config) {
		cfg.TestingKnobs.PanicOn = func(k []byte) bool { return string(k) == "boom" }
	})
	rc := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), MaxRetries: -1, PoolSize: clients + 4, MinIdleConns: clients,
		ReadTimeout: 2 * time.Minute, WriteTimeout: time.Minute,
	})
	t.Cleanup(func() { rc.Close() })
	return srv, rc
}

// backendVar reads counter name of the raft backend's expvar map (the
// gateways run in this process); a counter not set yet is 0.
func backendVar(t *testing.T, mapName, name string) int64 {
	t.Helper()
	m, ok := expvar.Get(mapName).(*expvar.Map)
	if !ok {
		t.Fatalf("no %s in /debug/vars", mapName)
	}
	v, _ := m.Get(name).(*expvar.Int)
	if v == nil {
		return 0
	}
	return v.Value()
}

// TestCombinedCollectionWrites: 50 clients hammer a few collections at
// once, with commands that fail (WRONGTYPE, HINCRBY of text) mixed in.
// Collection writes are combined like string writes, so every reply must
// still be the one a serial order gives: HINCRBY and ZINCRBY of one
// field step 1..N with no value told twice, LPUSH of a list nobody pops
// answers every length once, an element pushed (or added) is popped at
// most once and the pops plus what is left are exactly what was pushed,
// SADD and SREM of members of one's own count each, and the failing
// commands change nothing. The keys below 'm' keep their records in
// region 1 and their elements in region 2 (two-region commits), the
// others both in region 2. The collection commands must have shared
// transactions (nokv_raft_combine's collection_commands).
func TestCombinedCollectionWrites(t *testing.T) {
	const clients, rounds = 50, 24
	// A write of "boom" panics after its function ran (its elements and
	// record written): the panic is the caller's alone, and nothing of
	// it commits.
	_, rc := startBoomGateway(t, clients)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := rc.Set(ctx, "str", "plain", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rc.HSet(ctx, "hash", "text", "abc").Err(); err != nil {
		t.Fatal(err)
	}
	combinedBefore := combineVar(t, "collection_commands")

	var (
		mu                   sync.Mutex
		hincr, zincr, pushes []int64
		pushed, popped       = map[string]bool{}, map[string]int{}
		zadded, zpopped      = map[string]bool{}, map[string]int{}
		members              = map[string]bool{}
		failure              []string
		done                 atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failure = append(failure, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	locked := func(f func()) {
		mu.Lock()
		f()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				elem := fmt.Sprintf("b:%d:%d", i, r)
				var err error
				switch r % 3 {
				case 0:
					err = rc.LPush(ctx, "boom", elem).Err()
				case 1:
					err = rc.HSet(ctx, "boom", elem, r).Err()
				case 2:
					err = rc.ZAdd(ctx, "boom", redis.Z{Score: 1, Member: elem}).Err()
				}
				if err == nil {
					fail("a write of boom succeeded, want it to panic")
				}
			}
		}()
	}
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				elem := fmt.Sprintf("e:%d:%d", i, r)
				switch (i + r) % 8 {
				case 0:
					v, err := rc.HIncrBy(ctx, "hc", "f", 1).Result()
					if err != nil {
						fail("HINCRBY hc f: %v", err)
						break
					}
					locked(func() { hincr = append(hincr, v) })
				case 1:
					n, err := rc.LPush(ctx, "pushonly", elem).Result()
					if err != nil {
						fail("LPUSH pushonly: %v", err)
						break
					}
					locked(func() { pushes = append(pushes, n) })
				case 2, 5:
					if err := rc.LPush(ctx, "queue", elem).Err(); err != nil {
						fail("LPUSH queue: %v", err)
						break
					}
					locked(func() { pushed[elem] = true })
				case 3, 6:
					v, err := rc.RPop(ctx, "queue").Result()
					if err == redis.Nil {
						break
					}
					if err != nil {
						fail("RPOP queue: %v", err)
						break
					}
					locked(func() { popped[v]++ })
				case 4:
					// A member of one's own: SADD adds it, SREM of the one
					// added the round before removes it.
					if n, err := rc.SAdd(ctx, "set", elem).Result(); err != nil || n != 1 {
						fail("SADD set %s = %d, %v; want 1", elem, n, err)
						break
					}
					locked(func() { members[elem] = true })
					if r >= 8 {
						old := fmt.Sprintf("e:%d:%d", i, r-8)
						if n, err := rc.SRem(ctx, "set", old).Result(); err != nil || n != 1 {
							fail("SREM set %s = %d, %v; want 1", old, n, err)
							break
						}
						locked(func() { delete(members, old) })
					}
				case 7:
					v, err := rc.ZIncrBy(ctx, "zc", 1, "m").Result()
					if err != nil {
						fail("ZINCRBY zc: %v", err)
						break
					}
					locked(func() { zincr = append(zincr, int64(v)) })
				}
				// Every round: a sorted-set push or pop, and a command that
				// fails by itself.
				if (i+r)%2 == 0 {
					if err := rc.ZAdd(ctx, "zq", redis.Z{Score: float64(r), Member: elem}).Err(); err != nil {
						fail("ZADD zq: %v", err)
					} else {
						locked(func() { zadded[elem] = true })
					}
				} else {
					zs, err := rc.ZPopMin(ctx, "zq").Result()
					if err != nil {
						fail("ZPOPMIN zq: %v", err)
					}
					locked(func() {
						for _, z := range zs {
							zpopped[z.Member.(string)]++
						}
					})
				}
				switch (i + r) % 3 {
				case 0:
					if err := rc.LPush(ctx, "str", elem).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
						fail("LPUSH str: %v, want WRONGTYPE", err)
					}
				case 1:
					if err := rc.HIncrBy(ctx, "hash", "text", 1).Err(); err == nil || err.Error() != "ERR hash value is not an integer" {
						fail("HINCRBY hash text: %v", err)
					}
				case 2:
					if err := rc.SAdd(ctx, "hash", elem).Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
						fail("SADD hash: %v, want WRONGTYPE", err)
					}
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	for _, f := range failure {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Counters: a serial order answers 1..N, each once.
	for name, replies := range map[string][]int64{"HINCRBY hc f": hincr, "ZINCRBY zc m": zincr, "LPUSH pushonly": pushes} {
		sort.Slice(replies, func(a, b int) bool { return replies[a] < replies[b] })
		for j, v := range replies {
			if v != int64(j+1) {
				t.Fatalf("%s: the replies sorted are %v: not 1..%d", name, replies, len(replies))
			}
		}
	}
	if got, err := rc.HGet(ctx, "hc", "f").Int64(); err != nil || got != int64(len(hincr)) {
		t.Fatalf("HGET hc f = %d, %v; want %d", got, err, len(hincr))
	}
	if n, err := rc.LLen(ctx, "pushonly").Result(); err != nil || n != int64(len(pushes)) {
		t.Fatalf("LLEN pushonly = %d, %v; want %d", n, err, len(pushes))
	}

	// Pushed = popped + left, each element once.
	conserved := func(name string, added map[string]bool, took map[string]int, left []string) {
		t.Helper()
		seen := map[string]int{}
		for e, n := range took {
			seen[e] += n
		}
		for _, e := range left {
			seen[e]++
		}
		for e, n := range seen {
			if n != 1 || !added[e] {
				t.Fatalf("%s: %q popped or left %d times (pushed: %v)", name, e, n, added[e])
			}
		}
		if len(seen) != len(added) {
			t.Fatalf("%s: %d pushed, %d popped or left", name, len(added), len(seen))
		}
	}
	left, err := rc.LRange(ctx, "queue", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	conserved("queue", pushed, popped, left)
	zleft, err := rc.ZRange(ctx, "zq", 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	conserved("zq", zadded, zpopped, zleft)
	got, err := rc.SMembers(ctx, "set").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := make([]string, 0, len(members))
	for m := range members {
		want = append(want, m)
	}
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("SMEMBERS set = %d members, want %d", len(got), len(want))
	}

	// The failing commands changed nothing.
	if v, err := rc.Get(ctx, "str").Result(); err != nil || v != "plain" {
		t.Fatalf("GET str = %q, %v", v, err)
	}
	if h, err := rc.HGetAll(ctx, "hash").Result(); err != nil || len(h) != 1 || h["text"] != "abc" {
		t.Fatalf("HGETALL hash = %v, %v", h, err)
	}
	if n, err := rc.Exists(ctx, "boom").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS boom = %d, %v: a panicking write committed", n, err)
	}

	combined := combineVar(t, "collection_commands") - combinedBefore
	t.Logf("%d rounds: %d collection commands ran in combined transactions", done.Load(), combined)
	// Each round makes about three collection commands, two of which
	// write; alone, none would be combined.
	if combined < done.Load() {
		t.Fatalf("only %d collection commands of %d rounds were combined", combined, done.Load())
	}
}
