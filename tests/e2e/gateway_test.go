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
	t.Logf("%d SETs and %d INCRs acknowledged through nokv-redis on the cluster across kill -9 of a store (%d INCRs of unknown outcome)", n, incrs.Load(), uncertain.Load())
}

// isNetErr reports a broken connection to the gateway: the command may or
// may not have run.
func isNetErr(err error) bool {
	return strings.Contains(err.Error(), "connection") || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "i/o timeout")
}
