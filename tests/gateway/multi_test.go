package gateway

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

// Transactions across two gateways on one cluster: WATCH sees another
// gateway's writes, and MULTI/EXEC blocks are serializable, not merely
// snapshot isolated.

func twoGateways(t *testing.T) (*redis.Client, *redis.Client) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	var clients []*redis.Client
	for range 2 {
		srv := startGateway(t, c)
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxRetries: -1, PoolSize: 16})
		t.Cleanup(func() { rc.Close() })
		clients = append(clients, rc)
	}
	return clients[0], clients[1]
}

// Increments through WATCH from clients of both gateways: an EXEC whose
// watched counter another gateway changed fails (and is retried), so none
// is lost.
func TestWatchAcrossGateways(t *testing.T) {
	g1, g2 := twoGateways(t)
	ctx := context.Background()
	const perClient = 10
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		rc := []*redis.Client{g1, g2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				if err := conformance.WatchedIncrement(ctx, rc, "counter"); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n, err := g1.Get(ctx, "counter").Int()
	if err != nil || n != 4*perClient {
		t.Fatalf("counter = %d (%v), want %d: an increment was lost", n, err, 4*perClient)
	}
}

// The write-skew test: two clients, one per gateway, each read both keys
// under WATCH and, if neither is set, set its own. Any serial order lets
// exactly one of them set its key; snapshot isolation alone would let both
// (each EXEC writes a key the other only read). Keys on both sides of the
// region boundary "m".
func TestMultiExecIsSerializableAcrossGateways(t *testing.T) {
	g1, g2 := twoGateways(t)
	ctx := context.Background()
	keys := []string{"a-skew", "z-skew"}
	both := 0
	for round := range 15 {
		if err := g1.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 2)
		for i, rc := range []*redis.Client{g1, g2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := rc.Watch(ctx, func(tx *redis.Tx) error {
					vals, err := tx.MGet(ctx, keys...).Result()
					if err != nil {
						return err
					}
					if vals[0] != nil || vals[1] != nil {
						return nil // the other one won
					}
					_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, keys[i], "taken", 0)
						return nil
					})
					return err
				}, keys...)
				if err != nil && !errors.Is(err, redis.TxFailedErr) {
					errs <- err
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		n, err := g2.Exists(ctx, keys...).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			both++
			t.Errorf("round %d: both EXECs committed after each read the other's key as absent (write skew)", round)
		}
	}
	if both > 0 {
		t.Fatalf("%d of 15 rounds were not serializable", both)
	}
}

// A WATCH through one gateway sees a write of a hash through another that
// changes a field's value alone (neither the field count nor the encoding):
// the hash's record carries a stamp redrawn at every write, which is what
// the watching gateway compares.
func TestWatchOfAHashAcrossGateways(t *testing.T) {
	g1, g2 := twoGateways(t)
	ctx := context.Background()
	if err := g1.HSet(ctx, "h", "f", "1", "g", "1").Err(); err != nil {
		t.Fatal(err)
	}
	for _, write := range []func() error{
		func() error { return g2.HSet(ctx, "h", "f", "2").Err() },
		func() error { return g2.HIncrBy(ctx, "h", "g", 1).Err() },
		func() error { return g2.HSet(ctx, "h", "f", "2").Err() }, // the same value again: still a write
	} {
		err := g1.Watch(ctx, func(tx *redis.Tx) error {
			if err := write(); err != nil {
				return err
			}
			_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.HSet(ctx, "h", "x", "from-exec")
				return nil
			})
			return err
		}, "h")
		if !errors.Is(err, redis.TxFailedErr) {
			t.Fatalf("EXEC after another gateway wrote the watched hash: %v, want a failed transaction", err)
		}
	}
	if n, err := g1.HExists(ctx, "h", "x").Result(); err != nil || n {
		t.Fatalf("the aborted EXEC wrote: %v %v", n, err)
	}
}
