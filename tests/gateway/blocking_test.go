package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// The blocking list (and sorted-set) commands on the raft backend: the go-redis checks
// through one gateway, a push through a second gateway waking a client
// blocked on the first within the poll bound (--block-poll), and a queue
// served with BLPOP through two gateways that delivers every element
// exactly once.

func TestBlockingListsOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	// A wake-up that went missing would leave the waiter blocked until
	// Timeout; the waiter's pop itself is a cluster transaction, which
	// took over a second under the race detector on a loaded machine.
	conformance.Blocking(t, conformance.Target{Addr: srv.Addr(), Timeout: time.Minute, WakeBound: 5 * time.Second})
}

func TestPushThroughAnotherGatewayWakesTheBlockedClient(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	const poll = 50 * time.Millisecond
	setPoll := func(cfg *gatewayserver.Config) { cfg.BlockPoll = poll }
	gw1, gw2 := startGateway(t, c, setPoll), startGateway(t, c, setPoll)
	opts := func(addr string) *redis.Options {
		return &redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute}
	}
	waiter, pusher, ctl := redis.NewClient(opts(gw1.Addr())), redis.NewClient(opts(gw2.Addr())), redis.NewClient(opts(gw1.Addr()))
	t.Cleanup(func() { waiter.Close(); pusher.Close(); ctl.Close() })
	ctx := context.Background()
	var worst time.Duration
	for i := range 5 {
		type result struct {
			v   []string
			err error
			at  time.Time
		}
		got := make(chan result, 1)
		go func() {
			v, err := waiter.BLPop(ctx, 0, "k"+fmt.Sprint(i%2), "other").Result()
			got <- result{v, err, time.Now()}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(ctl.Info(ctx, "clients").Val(), "blocked_clients:1\r\n") {
			if time.Now().After(deadline) {
				t.Fatal("the client did not block")
			}
			time.Sleep(time.Millisecond)
		}
		if err := pusher.RPush(ctx, "k"+fmt.Sprint(i%2), fmt.Sprint(i)).Err(); err != nil {
			t.Fatal(err)
		}
		pushed := time.Now()
		r := <-got
		if r.err != nil || strings.Join(r.v, " ") != fmt.Sprintf("k%d %d", i%2, i) {
			t.Fatalf("BLPOP: %q, %v", r.v, r.err)
		}
		worst = max(worst, r.at.Sub(pushed))
	}
	// The poll bound, plus the waiter's pop (a cluster transaction).
	t.Logf("push through the other gateway to the blocked client's reply: at most %v (poll %v)", worst, poll)
	if worst > poll+2*time.Second {
		t.Fatalf("a push through another gateway took %v to reach the blocked client (poll %v)", worst, poll)
	}

	// The same for BZPOPMIN/BZPOPMAX and a ZADD through the other gateway
	// (the poller does not look at types).
	worst = 0
	for i := range 4 {
		type result struct {
			z   *redis.ZWithKey
			err error
			at  time.Time
		}
		got := make(chan result, 1)
		key := "z" + fmt.Sprint(i%2)
		go func() {
			pop := waiter.BZPopMin
			if i%2 == 1 {
				pop = waiter.BZPopMax
			}
			z, err := pop(ctx, 0, key, "other").Result()
			got <- result{z, err, time.Now()}
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(ctl.Info(ctx, "clients").Val(), "blocked_clients:1\r\n") {
			if time.Now().After(deadline) {
				t.Fatal("the client did not block")
			}
			time.Sleep(time.Millisecond)
		}
		if err := pusher.ZAdd(ctx, key, redis.Z{Score: float64(i), Member: "m"}).Err(); err != nil {
			t.Fatal(err)
		}
		added := time.Now()
		r := <-got
		if r.err != nil || r.z.Key != key || r.z.Member != "m" || r.z.Score != float64(i) {
			t.Fatalf("BZPOP: %+v, %v", r.z, r.err)
		}
		worst = max(worst, r.at.Sub(added))
	}
	t.Logf("ZADD through the other gateway to the blocked client's reply: at most %v (poll %v)", worst, poll)
	if worst > poll+2*time.Second {
		t.Fatalf("a ZADD through another gateway took %v to reach the blocked client (poll %v)", worst, poll)
	}
}

// Producers RPUSH through both gateways, consumers BLPOP through both:
// every element is delivered exactly once, each producer's in its order
// per consumer.
func TestBlockingQueueAcrossTwoRaftGateways(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	gws := []string{startGateway(t, c).Addr(), startGateway(t, c).Addr()}
	producers, perProducer, consumers := 4, 50, 4
	if raceEnabled {
		perProducer = 20
	}
	notWritten := func(err error) bool {
		return err != nil && (strings.HasPrefix(err.Error(), "ERR too many concurrent writes") ||
			strings.HasPrefix(err.Error(), "ERR cluster unavailable"))
	}
	var (
		mu       sync.Mutex
		popped   = map[string]int{}
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	ctx := context.Background()
	done := make(chan struct{})
	var consWG sync.WaitGroup
	for k := range consumers {
		consWG.Add(1)
		go func() {
			defer consWG.Done()
			cl := redis.NewClient(&redis.Options{Addr: gws[k%2], MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute, PoolSize: 1})
			defer cl.Close()
			last := map[string]int{}
			for {
				v, err := cl.BLPop(ctx, 500*time.Millisecond, "q1", "q2").Result()
				switch {
				case errors.Is(err, redis.Nil):
					select {
					case <-done:
						return
					default:
					}
				case notWritten(err):
				case err != nil:
					fail("BLPOP: %v", err)
					return
				default:
					mu.Lock()
					popped[v[1]]++
					mu.Unlock()
					var prod, i int
					fmt.Sscanf(v[1], "%d:%d", &prod, &i)
					if l, ok := last[v[0]+fmt.Sprint(prod)]; ok && i < l {
						fail("consumer %d: %s popped after %d", k, v[1], l)
					}
					last[v[0]+fmt.Sprint(prod)] = i
				}
			}
		}()
	}
	var prodWG sync.WaitGroup
	for p := range producers {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			cl := redis.NewClient(&redis.Options{Addr: gws[p%2], MaxRetries: -1, ReadTimeout: time.Minute, WriteTimeout: time.Minute, PoolSize: 1})
			defer cl.Close()
			for i := 0; i < perProducer; {
				err := cl.RPush(ctx, fmt.Sprint("q", p%2+1), fmt.Sprintf("%d:%03d", p, i)).Err()
				switch {
				case err == nil:
					i++
				case !notWritten(err):
					fail("RPUSH: %v", err)
					return
				}
			}
		}()
	}
	prodWG.Wait()
	close(done)
	consWG.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	for p := range producers {
		for i := range perProducer {
			if n := popped[fmt.Sprintf("%d:%03d", p, i)]; n != 1 {
				t.Errorf("element %d:%03d popped %d times", p, i, n)
			}
		}
	}
	if len(popped) != producers*perProducer {
		t.Fatalf("%d distinct elements popped, %d pushed", len(popped), producers*perProducer)
	}
	for _, k := range []string{"q1", "q2"} {
		if rest := conformance.DialRaw(t, gws[0]).Do("LLEN", k); rest != ":0\r\n" {
			t.Errorf("%s not drained: %q", k, rest)
		}
	}
}

// The blocking list commands byte for byte against redis-server, through a
// raft gateway (conformance.CompareBlocking; SWAPDB is refused here).
func TestBlockingListsMatchRedisServerOnTheRaftBackend(t *testing.T) {
	redisAddr := startRedis(t)
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	conformance.CompareBlocking(t, conformance.Target{Addr: srv.Addr(), NoSwapDB: true}, redisAddr)
}
