// Package bench measures transactions through pkg/kvclient against a
// three-store cluster on this machine (in-process stores on 127.0.0.1,
// each with its own Pebble and fsyncs, production tick settings).
//
//	cd tests && go test -run '^$' -bench . -benchtime 10s ./bench/
//
// Each benchmark reports throughput (ops/s) and latency percentiles
// (p50-ms, p99-ms) over all operations of its run.
package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/tests/cluster"
)

var (
	once   sync.Once
	shared *cluster.Cluster
	client *kvclient.Client
)

// setup starts one cluster for all benchmarks: regions split at "m" so a
// transaction can span two regions (2PC) or stay in one (1PC).
func setup(b *testing.B) *kvclient.Client {
	once.Do(func() {
		shared = cluster.Start(&keepAlive{TB: b}, cluster.Options{SplitKeys: []string{"m"}, Tick: 100 * time.Millisecond})
		var err error
		client, err = kvclient.NewWithPD(shared.PDClient, kvclient.Options{})
		if err != nil {
			b.Fatal(err)
		}
	})
	return client
}

// keepAlive lets the shared cluster outlive the benchmark that starts it:
// its cleanups and temporary directories are released by TestMain.
type keepAlive struct{ testing.TB }

var (
	cleanups []func()
	tempDirs []string
)

func (k *keepAlive) Cleanup(f func()) { cleanups = append(cleanups, f) }

func (k *keepAlive) TempDir() string {
	dir, err := os.MkdirTemp("", "nokv-bench")
	if err != nil {
		k.Fatal(err)
	}
	tempDirs = append(tempDirs, dir)
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if client != nil {
		client.Close()
	}
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// latencies collects per-operation durations from parallel workers.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(ds []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, ds...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	pct := func(p float64) float64 {
		return float64(l.all[int(p*float64(len(l.all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(l.all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

var seq atomic.Int64

// run drives op from 32 concurrent workers for b.N operations in total.
func run(b *testing.B, op func(ctx context.Context, i int64) error) {
	const workers = 32
	var (
		lat  latencies
		next atomic.Int64
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for next.Add(1) <= int64(b.N) {
				i := seq.Add(1)
				t0 := time.Now()
				if err := op(context.Background(), i); err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := errs.Load(); n > 0 {
		b.Fatalf("%d of %d operations failed", n, b.N)
	}
	lat.report(b, elapsed)
}

func value(i int64) []byte { return fmt.Appendf(nil, "value-%064d", i) }

// BenchmarkWrite1PC: one key per transaction, committed in one phase.
func BenchmarkWrite1PC(b *testing.B) {
	c := setup(b)
	run(b, func(ctx context.Context, i int64) error {
		txn, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if err := txn.Set(fmt.Appendf(nil, "a-%d", i), value(i), 0); err != nil {
			return err
		}
		return txn.Commit(ctx)
	})
}

// BenchmarkWrite2PC: two keys in two regions per transaction: prewrite,
// commit primary, commit secondary.
func BenchmarkWrite2PC(b *testing.B) {
	c := setup(b)
	run(b, func(ctx context.Context, i int64) error {
		txn, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if err := txn.Set(fmt.Appendf(nil, "b-%d", i), value(i), 0); err != nil {
			return err
		}
		if err := txn.Set(fmt.Appendf(nil, "z-%d", i), value(i), 0); err != nil {
			return err
		}
		return txn.Commit(ctx)
	})
}

// BenchmarkRead: a linearizable point read of one of 1000 existing keys.
func BenchmarkRead(b *testing.B) {
	c := setup(b)
	ctx := context.Background()
	for i := range int64(1000) {
		if err := c.RunTxn(ctx, func(txn *kvclient.Txn) error {
			return txn.Set(fmt.Appendf(nil, "r-%d", i), value(i), 0)
		}); err != nil {
			b.Fatal(err)
		}
	}
	run(b, func(ctx context.Context, i int64) error {
		_, found, err := c.Get(ctx, fmt.Appendf(nil, "r-%d", i%1000))
		if err == nil && !found {
			return fmt.Errorf("r-%d missing", i%1000)
		}
		return err
	})
}
