package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/tests/cluster"
)

// TestGatewayOnClusterSurvivesKill9 runs the real nokv-redis with the raft
// backend against real nokv-pd and nokv-store processes and drives it with
// go-redis: SETs and INCRs under load while a store is killed with SIGKILL
// and restarted. Every acknowledged SET is readable afterwards, and the
// counter counts every acknowledged INCR (and at most the ones whose
// outcome the gateway reported as unknown on top).
func TestGatewayOnClusterSurvivesKill9(t *testing.T) {
	c := startProcCluster(t)
	addr := c.reserve("gateway")
	c.start("gateway", filepath.Join(c.bin, "nokv-redis"), "--backend", "raft", "--config", c.file,
		"--addr", addr, "--workdir", filepath.Join(c.dir, "gateway"))
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	cluster.Eventually(t, 30*time.Second, func() error { return rc.Set(ctx, "ready", "1", 0).Err() })

	var (
		acked     sync.Map
		sets      atomic.Int64
		incrs     atomic.Int64
		uncertain atomic.Int64
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := fmt.Sprintf("%c-gw%d-%05d", "dy"[i%2], w, i)
				if err := rc.Set(ctx, k, k, 0).Err(); err == nil {
					acked.Store(k, true)
					sets.Add(1)
				}
				switch err := rc.Incr(ctx, "counter").Err(); {
				case err == nil:
					incrs.Add(1)
				case strings.Contains(err.Error(), "may or may not have been applied") || errors.Is(err, context.DeadlineExceeded) || isNetErr(err):
					uncertain.Add(1)
				}
			}
		}()
	}

	// Collection writers: one list, set, hash and sorted set each, element
	// i written by command i, so what survives can be told apart.
	var (
		collAcked [4]sync.Map // element index -> true, per type
		collTried [4]atomic.Int64
		collN     atomic.Int64
	)
	collCmds := []func(i int) error{
		func(i int) error { return rc.RPush(ctx, "coll-list", i).Err() },
		func(i int) error { return rc.SAdd(ctx, "coll-set", fmt.Sprintf("m%05d", i)).Err() },
		func(i int) error { return rc.HSet(ctx, "coll-hash", fmt.Sprintf("f%05d", i), i).Err() },
		func(i int) error {
			return rc.ZAdd(ctx, "coll-zset", redis.Z{Score: float64(i), Member: fmt.Sprintf("m%05d", i)}).Err()
		},
	}
	for typ, cmd := range collCmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				collTried[typ].Store(int64(i + 1))
				if err := cmd(i); err == nil {
					collAcked[typ].Store(i, true)
					collN.Add(1)
				}
			}
		}()
	}

	waitCount(t, &sets, 50, "SETs")
	c.kill9("store-2")
	waitCount(t, &sets, sets.Load()+50, "SETs") // the other two stores carry on
	c.startStore(2)
	waitCount(t, &sets, sets.Load()+50, "SETs")
	stop.Store(true)
	wg.Wait()

	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		v, err := rc.Get(ctx, k.(string)).Result()
		if err != nil || v != k.(string) {
			t.Fatalf("acknowledged SET %s: GET = %q, %v", k, v, err)
		}
		return true
	})
	got, err := rc.Get(ctx, "counter").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if got < incrs.Load() || got > incrs.Load()+uncertain.Load() {
		t.Fatalf("counter = %d after %d acknowledged INCRs and %d of unknown outcome", got, incrs.Load(), uncertain.Load())
	}
	checkCollectionsAfterKill(t, rc, &collAcked, &collTried)

	t.Logf("%d SETs and %d INCRs acknowledged through nokv-redis on the cluster across kill -9 of a store (%d INCRs of unknown outcome), %d collection writes", n, incrs.Load(), uncertain.Load(), collN.Load())
}

// isNetErr reports a broken connection to the gateway: the command may or
// may not have run.
func isNetErr(err error) bool {
	return strings.Contains(err.Error(), "connection") || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "i/o timeout")
}

// checkCollectionsAfterKill checks the collections written across the kill:
// every acknowledged element is there, nothing was written that no command
// tried, and the list holds its elements once each, in push order (a push of
// unknown outcome may or may not be there).
func checkCollectionsAfterKill(t *testing.T, rc *redis.Client, acked *[4]sync.Map, tried *[4]atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	ackedCount := func(typ int) int {
		n := 0
		acked[typ].Range(func(_, _ any) bool { n++; return true })
		return n
	}
	for typ := range acked {
		if n := ackedCount(typ); n < 20 {
			t.Fatalf("only %d writes of collection type %d acknowledged across the kill; the test proves little", n, typ)
		}
	}

	list, err := rc.LRange(ctx, "coll-list", 0, -1).Result()
	if err != nil {
		t.Fatalf("LRANGE coll-list: %v", err)
	}
	inList := map[int]bool{}
	prev := -1
	for _, e := range list {
		var i int
		if _, err := fmt.Sscan(e, &i); err != nil || i <= prev || int64(i) >= tried[0].Load() {
			t.Fatalf("list element %q after %d (of %d pushes tried): out of order, repeated or never pushed", e, prev, tried[0].Load())
		}
		prev, inList[i] = i, true
	}
	members, err := rc.SMembers(ctx, "coll-set").Result()
	if err != nil {
		t.Fatalf("SMEMBERS coll-set: %v", err)
	}
	inSet := map[string]bool{}
	for _, m := range members {
		inSet[m] = true
	}
	hash, err := rc.HGetAll(ctx, "coll-hash").Result()
	if err != nil {
		t.Fatalf("HGETALL coll-hash: %v", err)
	}
	zs, err := rc.ZRangeWithScores(ctx, "coll-zset", 0, -1).Result()
	if err != nil {
		t.Fatalf("ZRANGE coll-zset: %v", err)
	}
	inZSet := map[string]float64{}
	for _, z := range zs {
		inZSet[z.Member.(string)] = z.Score
	}
	for typ := range acked {
		acked[typ].Range(func(k, _ any) bool {
			i := k.(int)
			m, f := fmt.Sprintf("m%05d", i), fmt.Sprintf("f%05d", i)
			switch {
			case typ == 0 && !inList[i]:
				t.Errorf("acknowledged RPUSH %d lost after kill -9", i)
			case typ == 1 && !inSet[m]:
				t.Errorf("acknowledged SADD %s lost after kill -9", m)
			case typ == 2 && hash[f] != fmt.Sprint(i):
				t.Errorf("acknowledged HSET %s %d lost after kill -9 (got %q)", f, i, hash[f])
			case typ == 3:
				if sc, ok := inZSet[m]; !ok || sc != float64(i) {
					t.Errorf("acknowledged ZADD %d %s lost after kill -9 (present %v, score %v)", i, m, ok, sc)
				}
			}
			return true
		})
	}
	for _, n := range []struct {
		name       string
		got, tried int64
	}{
		{"set", int64(len(members)), tried[1].Load()},
		{"hash", int64(len(hash)), tried[2].Load()},
		{"zset", int64(len(zs)), tried[3].Load()},
	} {
		if n.got > n.tried {
			t.Errorf("%s holds %d elements, more than the %d writes tried", n.name, n.got, n.tried)
		}
	}
	for typ, name := range []string{"RPUSH", "SADD", "HSET", "ZADD"} {
		t.Logf("%s: %d acknowledged of %d tried, all found", name, ackedCount(typ), tried[typ].Load())
	}
}
