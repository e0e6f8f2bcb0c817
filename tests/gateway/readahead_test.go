package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// readAheadVar reads one counter of the raft backend's read ahead
// (nokv_raft_read_ahead in /debug/vars).
func readAheadVar(t *testing.T, name string) int64 {
	return backendVar(t, "nokv_raft_read_ahead", name)
}

// TestCombinedReadAhead: 50 clients SADD, HSET, ZADD and RPOP a few
// collections at once, half of the members and fields there already, so
// that the combined transactions read their commands' sub-keys ahead in
// one batch (raft/readahead.go) and both answers of each read occur.
// Every reply must be the one the serial order gives (1 for a new member
// or field, 0 for one that was there; each element popped once, every
// client's pops in list order, a pop of an emptied list nil), and
// WRONGTYPE and panicking commands run ahead with the others must leave
// nothing behind. The read-ahead counters must show batches read and
// reads answered from them.
func TestCombinedReadAhead(t *testing.T) {
	const clients, rounds = 50, 8
	const n = clients * rounds
	srv, rc := startBoomGateway(t, clients)
	// The panicking writes have their own client: the gateway answers
	// one with an error and then closes its connection, which go-redis
	// would otherwise hand to the next command of the pool.
	boom := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: 2 * time.Minute})
	t.Cleanup(func() { boom.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Member, field and element j belong to client j%clients; the even ones
	// are there before.
	var setArgs, hashArgs []any
	var zs []redis.Z
	var list, short []any
	for j := 0; j < n; j++ {
		if j%2 == 0 {
			setArgs = append(setArgs, fmt.Sprintf("m:%d", j))
			hashArgs = append(hashArgs, fmt.Sprintf("f:%d", j), "old")
			zs = append(zs, redis.Z{Score: -1, Member: fmt.Sprintf("z:%d", j)})
			short = append(short, fmt.Sprintf("s:%d", j))
		}
		list = append(list, fmt.Sprintf("l:%d", j))
	}
	for _, err := range []error{
		rc.SAdd(ctx, "rs", setArgs...).Err(),
		rc.HSet(ctx, "rh", hashArgs...).Err(),
		rc.ZAdd(ctx, "rz", zs...).Err(),
		rc.RPush(ctx, "rl", list...).Err(),
		rc.RPush(ctx, "short", short...).Err(),
		rc.Set(ctx, "str", "plain", 0).Err(),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	batchesBefore, hitsBefore := readAheadVar(t, "batches"), readAheadVar(t, "hits")

	var (
		mu      sync.Mutex
		failure []string
		popped  = map[string]int{}
		shorts  = map[string]int{}
		nils    int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failure = append(failure, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	want01 := func(j int) int64 { return int64(j % 2) }
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lastPop := n
			for r := range rounds {
				j := r*clients + i
				if got, err := rc.SAdd(ctx, "rs", fmt.Sprintf("m:%d", j)).Result(); err != nil || got != want01(j) {
					fail("SADD rs m:%d = %d, %v; want %d", j, got, err, want01(j))
				}
				if got, err := rc.HSet(ctx, "rh", fmt.Sprintf("f:%d", j), fmt.Sprintf("new:%d", j)).Result(); err != nil || got != want01(j) {
					fail("HSET rh f:%d = %d, %v; want %d", j, got, err, want01(j))
				}
				if got, err := rc.ZAdd(ctx, "rz", redis.Z{Score: float64(j), Member: fmt.Sprintf("z:%d", j)}).Result(); err != nil || got != want01(j) {
					fail("ZADD rz z:%d = %d, %v; want %d", j, got, err, want01(j))
				}
				v, err := rc.RPop(ctx, "rl").Result()
				if err != nil {
					fail("RPOP rl: %v", err)
				} else {
					var k int
					if _, err := fmt.Sscanf(v, "l:%d", &k); err != nil || k >= lastPop {
						fail("RPOP rl = %q after l:%d: not in list order", v, lastPop)
					}
					lastPop = k
					mu.Lock()
					popped[v]++
					mu.Unlock()
				}
				v, err = rc.RPop(ctx, "short").Result()
				mu.Lock()
				switch {
				case err == redis.Nil:
					nils++
				case err != nil:
					failure = append(failure, fmt.Sprintf("RPOP short: %v", err))
				default:
					shorts[v]++
				}
				mu.Unlock()
				if err := rc.SAdd(ctx, "str", "x").Err(); err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
					fail("SADD str: %v, want WRONGTYPE", err)
				}
				if r%4 == 0 {
					if err := boom.HSet(ctx, "boom", "f", "v").Err(); err == nil {
						fail("HSET boom succeeded, want it to panic")
					}
				}
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

	members, err := rc.SMembers(ctx, "rs").Result()
	if err != nil || len(members) != n {
		t.Fatalf("SMEMBERS rs: %d members, %v; want %d", len(members), err, n)
	}
	if card, err := rc.SCard(ctx, "rs").Result(); err != nil || card != n {
		t.Fatalf("SCARD rs = %d, %v; want %d", card, err, n)
	}
	h, err := rc.HGetAll(ctx, "rh").Result()
	if err != nil || len(h) != n {
		t.Fatalf("HGETALL rh: %d fields, %v; want %d", len(h), err, n)
	}
	if hlen, err := rc.HLen(ctx, "rh").Result(); err != nil || hlen != n {
		t.Fatalf("HLEN rh = %d, %v; want %d", hlen, err, n)
	}
	for j := 0; j < n; j++ {
		if v := h[fmt.Sprintf("f:%d", j)]; v != fmt.Sprintf("new:%d", j) {
			t.Fatalf("HGET rh f:%d = %q, want new:%d", j, v, j)
		}
	}
	z, err := rc.ZRangeWithScores(ctx, "rz", 0, -1).Result()
	if err != nil || len(z) != n {
		t.Fatalf("ZRANGE rz: %d members, %v; want %d", len(z), err, n)
	}
	for j, m := range z {
		if m.Member != fmt.Sprintf("z:%d", j) || m.Score != float64(j) {
			t.Fatalf("ZRANGE rz [%d] = %v %v, want z:%d %d", j, m.Member, m.Score, j, j)
		}
	}
	if len(popped) != n {
		t.Fatalf("RPOP rl: %d elements popped, want %d", len(popped), n)
	}
	for e, k := range popped {
		if k != 1 {
			t.Fatalf("RPOP rl: %s popped %d times", e, k)
		}
	}
	if len(shorts) != len(short) || nils != n-len(short) {
		t.Fatalf("RPOP short: %d elements, %d nil; want %d and %d", len(shorts), nils, len(short), n-len(short))
	}
	for e, k := range shorts {
		if k != 1 {
			t.Fatalf("RPOP short: %s popped %d times", e, k)
		}
	}
	for _, key := range []string{"rl", "short", "boom"} {
		if k, err := rc.Exists(ctx, key).Result(); err != nil || k != 0 {
			t.Fatalf("EXISTS %s = %d, %v; want 0", key, k, err)
		}
	}
	if v, err := rc.Get(ctx, "str").Result(); err != nil || v != "plain" {
		t.Fatalf("GET str = %q, %v", v, err)
	}

	batches, hits := readAheadVar(t, "batches")-batchesBefore, readAheadVar(t, "hits")-hitsBefore
	t.Logf("%d commands: %d batches read ahead, %d reads answered from them, %d keys read ahead, %d runs ahead stopped",
		n*6, batches, hits, readAheadVar(t, "keys"), readAheadVar(t, "stopped"))
	// 50 clients make combined transactions of many commands; each
	// command's sub-key read is one of a batch unless a guess missed.
	if batches == 0 || hits < int64(n) {
		t.Fatalf("%d batches read ahead and %d reads answered from them, want some and at least %d", batches, hits, n)
	}
}
