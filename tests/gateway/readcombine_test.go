package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// readCombineVar returns a counter of the raft backend's combined reads
// (/debug/vars nokv_raft_read_combine; the gateways run in this process).
func readCombineVar(t *testing.T, name string) int64 {
	return backendVar(t, "nokv_raft_read_combine", name)
}

// TestCombinedReadsSeeEveryAcknowledgedWrite: writers increment counters
// and set markers through one gateway while 40 connections of another
// gateway (and of the writers' own) read them with GET, MGET and EXISTS,
// which that gateway combines into shared reads. No read may return a
// value older than a write acknowledged before the read started, nor
// older than what another read returned before it started
// (linearizable), whichever connection's read it shared.
func TestCombinedReadsSeeEveryAcknowledgedWrite(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	writeGW := startGateway(t, c)
	readGW := startGateway(t, c)
	const readers = 40
	client := func(srv *gatewayserver.Server, n int) *redis.Client {
		rc := redis.NewClient(&redis.Options{
			Addr: srv.Addr(), MaxRetries: -1, PoolSize: n, MinIdleConns: n,
			ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		})
		t.Cleanup(func() { rc.Close() })
		return rc
	}
	wc, rcs := client(writeGW, 8), []*redis.Client{client(readGW, readers), client(writeGW, readers)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Counters "a" and "b" (region 1, below "m") and markers "mark:N"
	// (region 2). acked[k] is the highest value of counter k a writer was
	// told; marks the highest N whose marker's SET was acknowledged (all
	// below it too: one writer sets them in order).
	var acked [2]atomic.Int64
	var marks atomic.Int64
	// seen[k] is the highest value of counter k a read returned.
	var seen [2]atomic.Int64
	raise := func(v *atomic.Int64, to int64) {
		for {
			cur := v.Load()
			if to <= cur || v.CompareAndSwap(cur, to) {
				return
			}
		}
	}
	counters := []string{"a", "b"}

	batchesBefore, readsBefore := readCombineVar(t, "batches"), readCombineVar(t, "reads")
	stop := make(chan struct{})
	errs := make(chan error, 2*readers+4)
	var writers, wg sync.WaitGroup
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := wc.Incr(ctx, counters[w]).Result()
				if err != nil {
					errs <- fmt.Errorf("INCR %s: %w", counters[w], err)
					return
				}
				raise(&acked[w], v)
			}
		}()
	}
	writers.Add(1)
	go func() {
		defer writers.Done()
		for n := int64(1); ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := wc.Set(ctx, fmt.Sprintf("mark:%d", n), n, 0).Err(); err != nil {
				errs <- fmt.Errorf("SET mark:%d: %w", n, err)
				return
			}
			marks.Store(n)
		}
	}()

	// check is one read of counter k: v must be at least what was
	// acknowledged or read before the read started.
	check := func(who string, k int, floorAcked, floorSeen int64, got string) error {
		v := int64(0)
		if got != "" {
			var err error
			if v, err = strconv.ParseInt(got, 10, 64); err != nil {
				return fmt.Errorf("%s: counter %s = %q", who, counters[k], got)
			}
		}
		if v < floorAcked {
			return fmt.Errorf("%s: read %s = %d, but INCR had acknowledged %d before the read started", who, counters[k], v, floorAcked)
		}
		if v < floorSeen {
			return fmt.Errorf("%s: read %s = %d, but another read had returned %d before this one started", who, counters[k], v, floorSeen)
		}
		raise(&seen[k], v)
		return nil
	}
	var reads atomic.Int64
	for i := range 2 * readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := rcs[i%2]
			who := fmt.Sprintf("reader %d", i)
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				k := (i + j) % 2
				fa, fs := [2]int64{acked[0].Load(), acked[1].Load()}, [2]int64{seen[0].Load(), seen[1].Load()}
				var err error
				switch j % 3 {
				case 0: // GET: one key, values
					var got string
					got, err = rc.Get(ctx, counters[k]).Result()
					if errors.Is(err, redis.Nil) {
						got, err = "", nil
					}
					if err == nil {
						err = check(who+" GET", k, fa[k], fs[k], got)
					}
				case 1: // MGET of both counters: one snapshot of one region
					var got []any
					got, err = rc.MGet(ctx, "a", "b").Result()
					for k := 0; err == nil && k < 2; k++ {
						s, _ := got[k].(string)
						err = check(who+" MGET", k, fa[k], fs[k], s)
					}
				case 2: // EXISTS: a head read of region 2
					m := marks.Load()
					if m == 0 {
						continue
					}
					var n int64
					n, err = rc.Exists(ctx, fmt.Sprintf("mark:%d", m)).Result()
					if err == nil && n != 1 {
						err = fmt.Errorf("%s: EXISTS mark:%d = %d after its SET was acknowledged", who, m, n)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				reads.Add(1)
			}
		}()
	}
	time.Sleep(5 * time.Second)
	close(stop)
	wg.Wait()
	writers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	batches, combined := readCombineVar(t, "batches")-batchesBefore, readCombineVar(t, "reads")-readsBefore
	t.Logf("%d reads, %d of them in %d combined reads; counters reached %d and %d, markers %d",
		reads.Load(), combined, batches, acked[0].Load(), acked[1].Load(), marks.Load())
	if acked[0].Load() == 0 || acked[1].Load() == 0 || marks.Load() == 0 {
		t.Fatal("the writers wrote nothing")
	}
	if batches == 0 || combined < 2*batches {
		t.Fatalf("reads were not combined: %d combined reads carried %d reads", batches, combined)
	}
}
