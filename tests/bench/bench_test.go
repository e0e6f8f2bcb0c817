// Package bench measures transactions through pkg/kvclient against a
// three-store cluster on this machine (in-process stores on 127.0.0.1,
// each with its own Pebble and fsyncs, production tick settings).
//
//	cd tests && go test -run '^$' -bench . -benchtime 10s ./bench/
//
// Each benchmark reports throughput (ops/s) and latency percentiles
// (p50-ms, p99-ms) over all operations of its run, ns/op (wall time per
// operation: the inverse of throughput with 32 workers, the latency of one
// operation in the Serial variants) and allocs/op and B/op, counted over
// the whole process: the in-process stores and PD allocate on behalf of
// every operation too, which is the point of measuring them.
//
// The benchmarks go down the layers, so a regression shows where it comes
// from: BenchmarkGateway* (a Redis command through nokv-redis),
// BenchmarkWrite1PC/Write2PC/Read (a transaction through pkg/kvclient), and
// BenchmarkStoreRaftRound (one 1PC prewrite sent straight to the region
// leader: the store's gRPC, kvsvc and one raft round of propose, replicate
// to two followers, fsync and apply, with no client library).
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

	"github.com/nokv/nokv/api/kvrpcpb"
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
}

var seq atomic.Int64

// run drives op from 32 concurrent workers for b.N operations in total.
func run(b *testing.B, op func(ctx context.Context, i int64) error) { runWorkers(b, 32, op) }

// runSerial drives op from one worker: ns/op is then one operation's latency.
func runSerial(b *testing.B, op func(ctx context.Context, i int64) error) { runWorkers(b, 1, op) }

func runWorkers(b *testing.B, workers int, op func(ctx context.Context, i int64) error) {
	b.ReportAllocs()
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

// write1PC is one single-key transaction through kvclient.
func write1PC(c *kvclient.Client, prefix string) func(ctx context.Context, i int64) error {
	return func(ctx context.Context, i int64) error {
		txn, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if err := txn.Set(fmt.Appendf(nil, "%s-%d", prefix, i), value(i), 0); err != nil {
			return err
		}
		return txn.Commit(ctx)
	}
}

// BenchmarkWrite1PCSerial: BenchmarkWrite1PC from one worker, so ns/op is
// the latency of one transaction and allocs/op its allocations, undisturbed
// by batching across concurrent writers.
func BenchmarkWrite1PCSerial(b *testing.B) {
	runSerial(b, write1PC(setup(b), "as"))
}

// raftRound returns an operation that writes one key of the region from "m"
// in a one-phase prewrite sent straight to the region's leader over the
// store's gRPC API: a timestamp from PD (batched TSO, in process), then one
// raft round on the leader. The route is resolved once, before the clock.
func raftRound(b *testing.B) func(ctx context.Context, i int64) error {
	setup(b)
	rc, store := shared.MustLeaderContext([]byte("s-0"))
	cli := shared.Client(store)
	return func(ctx context.Context, i int64) error {
		key := fmt.Appendf(nil, "s-%d", i)
		ts, err := shared.PDClient.GetTS(ctx)
		if err != nil {
			return fmt.Errorf("get ts: %w", err)
		}
		resp, err := cli.KvPrewrite(ctx, &kvrpcpb.PrewriteRequest{
			Context: rc, Mutations: []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_PUT, Key: key, Value: value(i)}},
			PrimaryLock: key, StartVersion: ts, LockTtl: 3000, TxnSize: 1, TryOnePc: true, OnePcCommitTs: ts + 1,
		})
		if err != nil {
			return fmt.Errorf("prewrite %s: %w", key, err)
		}
		if re := resp.GetRegionError(); re != nil {
			return fmt.Errorf("prewrite %s: region error: %s", key, re.GetMessage())
		}
		if len(resp.GetErrors()) > 0 {
			return fmt.Errorf("prewrite %s: key error: %v", key, resp.GetErrors()[0])
		}
		if resp.GetOnePcCommitTs() == 0 {
			return fmt.Errorf("prewrite %s: one-phase commit not taken", key)
		}
		return nil
	}
}

// BenchmarkStoreRaftRound: one-key 1PC writes straight to the leader from
// 32 workers; the store batches their raft rounds (one fsync per loop
// round for all of them).
func BenchmarkStoreRaftRound(b *testing.B) { run(b, raftRound(b)) }

// BenchmarkStoreRaftRoundSerial: the same from one worker: ns/op is one
// raft round's latency (propose, replicate, fsync on three stores, apply).
func BenchmarkStoreRaftRoundSerial(b *testing.B) { runSerial(b, raftRound(b)) }
