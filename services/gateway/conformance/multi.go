package conformance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Transactions through a real client library: go-redis's TxPipelined
// (MULTI/EXEC) and Watch (WATCH, optimistic retries), under concurrency,
// on any backend.
func init() {
	cases = append(cases,
		testCase{"MultiExecPipeline", func(t *testing.T, s *suite) {
			c := s.client(t)
			var incr *redis.IntCmd
			var get *redis.StringCmd
			cmds, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
				p.Set(bg, "a", "10", 0)
				incr = p.Incr(bg, "a")
				p.Set(bg, "b", "x", 0)
				p.Incr(bg, "b") // fails alone
				get = p.Get(bg, "b")
				return nil
			})
			if len(cmds) != 5 {
				t.Fatalf("%d replies, want 5 (err %v)", len(cmds), err)
			}
			expect(t, incr.Val(), incr.Err(), int64(11))
			expect(t, get.Val(), get.Err(), "x")
			if e := cmds[3].Err(); e == nil || e.Error() != "ERR value is not an integer or out of range" {
				t.Fatalf("INCR of a non-integer inside EXEC: %v", e)
			}
		}},
		// The canonical optimistic-locking loop: no increment is lost,
		// because EXEC fails whenever another client changed the key after
		// WATCH.
		testCase{"WatchedIncrementsAreNotLost", func(t *testing.T, s *suite) {
			c := s.client(t)
			clients, each := 8, 25
			if s.target.IncrClients > 0 {
				clients, each = 4, 10
			}
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						if err := WatchedIncrement(bg, c, "counter"); err != nil {
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
			n, err := c.Get(bg, "counter").Int()
			expect(t, n, err, clients*each)
		}},
		// EXEC is atomic and isolated: blocks that increment two keys
		// together, run concurrently with blocks that read both, never let a
		// reader see one increment without the other.
		testCase{"MultiExecIsIsolated", func(t *testing.T, s *suite) {
			c := s.client(t)
			writers, each, readers := 4, 25, 2
			if s.target.IncrClients > 0 {
				writers, each = 3, 8
			}
			var wg sync.WaitGroup
			errs := make(chan error, writers+readers)
			done := make(chan struct{})
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						if _, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
							p.Incr(bg, "{t}x")
							p.Incr(bg, "{t}y")
							return nil
						}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			var rg sync.WaitGroup
			for range readers {
				rg.Add(1)
				go func() {
					defer rg.Done()
					for {
						select {
						case <-done:
							return
						default:
						}
						var x, y *redis.StringCmd
						if _, err := c.TxPipelined(bg, func(p redis.Pipeliner) error {
							x, y = p.Get(bg, "{t}x"), p.Get(bg, "{t}y")
							return nil
						}); err != nil && !errors.Is(err, redis.Nil) {
							errs <- err
							return
						}
						if x.Val() != y.Val() {
							errs <- fmt.Errorf("EXEC read x=%q y=%q: not isolated", x.Val(), y.Val())
							return
						}
					}
				}()
			}
			wg.Wait()
			close(done)
			rg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			vals, err := c.MGet(bg, "{t}x", "{t}y").Result()
			if err != nil || fmt.Sprint(vals) != fmt.Sprintf("[%d %d]", writers*each, writers*each) {
				t.Fatalf("after the writers: %v %v, want both %d", vals, err, writers*each)
			}
		}},
	)
}

// WatchedIncrement adds 1 to key the optimistic way (WATCH, GET, MULTI,
// SET, EXEC), retrying while EXEC fails because the key changed: the
// canonical go-redis Watch loop, for tests of WATCH through one gateway or
// several.
func WatchedIncrement(ctx context.Context, rc *redis.Client, key string) error {
	for range 1000 {
		err := rc.Watch(ctx, func(tx *redis.Tx) error {
			n, err := tx.Get(ctx, key).Int()
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, strconv.Itoa(n+1), 0)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("no EXEC of %s succeeded in 1000 attempts", key)
}
