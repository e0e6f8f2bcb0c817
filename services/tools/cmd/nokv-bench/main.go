// Command nokv-bench is the load generator scripts/bench-cluster.sh drives
// against etcd, the anchor NoKV's cluster is compared with (issue 14).
// NoKV itself is driven by redis-benchmark; etcd's own benchmark tool is not
// packaged by Debian, so this one speaks etcd's KV API through the official
// client (go.etcd.io/etcd/client/v3) and reports what redis-benchmark
// reports: throughput and latency percentiles.
//
//	nokv-bench etcd --endpoints 127.0.0.1:2379,... --op put|get|incr
//	                [--clients 50] [--conns 50] [-n 100000] [--keyspace 100000]
//	                [--value-size 3] [--timeout 5s (per request)]
//
// `nokv-bench split ...` creates many regions in a running NoKV cluster
// through the stores' admin split (see split.go), for
// scripts/bench-regions.sh.
//
// `nokv-bench ports COUNT` prints COUNT free loopback TCP ports, one a line,
// for the script to give its servers.
//
// put writes random keys of the keyspace (like redis-benchmark -t set -r);
// get reads random keys with linearizable reads (etcd's default, the
// serializable=false the comparison needs); incr increments one hot key by
// get + compare-and-swap on its mod revision, retried on conflict, which is
// how an etcd client gets INCR's semantics. Every client runs its operations
// one after another, as a redis-benchmark client does without pipelining.
//
// The result is one line of key=value pairs on stdout, e.g.
//
//	ops=100000 errors=0 retries=0 secs=16.2 rps=6172.8 p50_ms=7.1 p99_ms=19.0 max_ms=80.3
//
// Exit status: 0 on success, 1 if the run failed or any operation failed,
// 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == "ports" {
		return ports(args[1], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "split" {
		return split(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "etcd" {
		fmt.Fprintln(stderr, "Usage: nokv-bench etcd [flags] (nokv-bench etcd --help lists them), or nokv-bench ports COUNT")
		return 2
	}
	fs := flag.NewFlagSet("nokv-bench etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("endpoints", "127.0.0.1:2379", "etcd client endpoints, comma-separated")
	op := fs.String("op", "put", "workload: put (random keys), get (random keys, linearizable), incr (one hot key, CAS)")
	clients := fs.Int("clients", 50, "concurrent clients, each issuing one request at a time")
	conns := fs.Int("conns", 0, "gRPC connections shared round-robin by the clients (0: one per client)")
	n := fs.Int("n", 100000, "total operations")
	keyspace := fs.Int("keyspace", 100000, "random keys are drawn from this many (like redis-benchmark -r)")
	valueSize := fs.Int("value-size", 3, "bytes per value (redis-benchmark's default is 3)")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline of one request")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *clients < 1 || *n < 1 || *keyspace < 1 || *valueSize < 0 {
		fmt.Fprintln(stderr, "nokv-bench: --clients, -n and --keyspace must be positive")
		return 2
	}
	if *conns <= 0 || *conns > *clients {
		*conns = *clients
	}
	cfg := benchConfig{
		endpoints: strings.Split(*endpoints, ","),
		op:        *op,
		clients:   *clients,
		conns:     *conns,
		n:         *n,
		keyspace:  *keyspace,
		value:     strings.Repeat("x", *valueSize),
		timeout:   *timeout,
	}
	switch cfg.op {
	case "put", "get", "incr":
	default:
		fmt.Fprintf(stderr, "nokv-bench: unknown --op %q (put, get or incr)\n", cfg.op)
		return 2
	}
	res, err := bench(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(stderr, "nokv-bench: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, res)
	if res.errors > 0 {
		fmt.Fprintf(stderr, "nokv-bench: %d operations failed; first error: %v\n", res.errors, res.firstErr)
		return 1
	}
	return 0
}

type benchConfig struct {
	endpoints []string
	op        string
	clients   int
	conns     int
	n         int
	keyspace  int
	value     string
	timeout   time.Duration
}

type result struct {
	ops, errors, retries int64
	elapsed              time.Duration
	latencies            []time.Duration // sorted
	firstErr             error
}

func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.latencies)-1))
	return r.latencies[i]
}

func (r result) String() string {
	ms := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 2, 64) }
	secs := r.elapsed.Seconds()
	return fmt.Sprintf("ops=%d errors=%d retries=%d secs=%.2f rps=%.1f p50_ms=%s p99_ms=%s max_ms=%s",
		r.ops, r.errors, r.retries, secs, float64(r.ops)/secs,
		ms(r.percentile(0.50)), ms(r.percentile(0.99)), ms(r.percentile(1)))
}

// key names a key of the keyspace the way redis-benchmark does, so both
// systems store keys of the same length.
func key(i int) string { return fmt.Sprintf("key:%012d", i) }

func bench(ctx context.Context, cfg benchConfig) (result, error) {
	cls := make([]*clientv3.Client, cfg.conns)
	defer func() {
		for _, c := range cls {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range cls {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   cfg.endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			return result{}, fmt.Errorf("connect to etcd at %v: %w", cfg.endpoints, err)
		}
		cls[i] = c
	}
	// One request before the clock starts, so connection set-up is not timed.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := cls[0].Get(wctx, "nokv-bench-warmup")
	cancel()
	if err != nil {
		return result{}, fmt.Errorf("first request to etcd at %v: %w", cfg.endpoints, err)
	}

	var (
		next     atomic.Int64 // operations handed out
		errs     atomic.Int64
		retries  atomic.Int64
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	lat := make([][]time.Duration, cfg.clients)
	start := time.Now()
	for w := 0; w < cfg.clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cli := cls[w%len(cls)]
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			own := make([]time.Duration, 0, cfg.n/cfg.clients+1)
			for next.Add(1) <= int64(cfg.n) {
				t0 := time.Now()
				r, err := one(ctx, cli, cfg, rng)
				own = append(own, time.Since(t0))
				retries.Add(int64(r))
				if err != nil {
					errs.Add(1)
					errOnce.Do(func() { firstErr = err })
				}
			}
			lat[w] = own
		}(w)
	}
	wg.Wait()
	res := result{
		ops:      int64(cfg.n),
		errors:   errs.Load(),
		retries:  retries.Load(),
		elapsed:  time.Since(start),
		firstErr: firstErr,
	}
	for _, l := range lat {
		res.latencies = append(res.latencies, l...)
	}
	slices.Sort(res.latencies)
	return res, nil
}

// one runs one operation and returns how many times it had to retry. Each
// request gets cfg.timeout; an incr may take many requests.
func one(ctx context.Context, cli *clientv3.Client, cfg benchConfig, rng *rand.Rand) (int, error) {
	switch cfg.op {
	case "put":
		rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		_, err := cli.Put(rctx, key(rng.IntN(cfg.keyspace)), cfg.value)
		return 0, err
	case "get":
		rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		_, err := cli.Get(rctx, key(rng.IntN(cfg.keyspace))) // linearizable by default
		return 0, err
	default:
		return incr(ctx, cli, "counter", cfg.timeout)
	}
}

var errIncrGaveUp = errors.New("incr: compare-and-swap kept losing")

// incr increments a decimal counter by reading it and writing it back on the
// condition that nobody wrote it since: etcd's way to a correct INCR.
// Under contention most attempts lose and retry: that cost is the point of
// the hot-key comparison.
func incr(ctx context.Context, cli *clientv3.Client, k string, timeout time.Duration) (int, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 100000 {
			return attempt, fmt.Errorf("incr %s: %w", k, errIncrGaveUp)
		}
		if won, err := incrOnce(ctx, cli, k, timeout); err != nil || won {
			return attempt, err
		}
	}
}

// incrOnce is one attempt of incr: it reports whether its swap won.
func incrOnce(ctx context.Context, cli *clientv3.Client, k string, timeout time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g, err := cli.Get(ctx, k)
	if err != nil {
		return false, fmt.Errorf("incr %s: get: %w", k, err)
	}
	var v int64
	var rev int64 // 0 means "the key does not exist", which Compare understands
	if len(g.Kvs) == 1 {
		rev = g.Kvs[0].ModRevision
		if v, err = strconv.ParseInt(string(g.Kvs[0].Value), 10, 64); err != nil {
			return false, fmt.Errorf("incr %s: value %q is not an integer: %w", k, g.Kvs[0].Value, err)
		}
	}
	t, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
		Then(clientv3.OpPut(k, strconv.FormatInt(v+1, 10))).
		Commit()
	if err != nil {
		return false, fmt.Errorf("incr %s: txn: %w", k, err)
	}
	return t.Succeeded, nil
}

// ports prints count distinct free ports of 127.0.0.1: all are held open
// until all are chosen, so none is printed twice.
func ports(arg string, stdout, stderr io.Writer) int {
	count, err := strconv.Atoi(arg)
	if err != nil || count < 1 {
		fmt.Fprintf(stderr, "nokv-bench ports: %q is not a positive count\n", arg)
		return 2
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range count {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "nokv-bench ports: %v\n", err)
			return 1
		}
		ls = append(ls, l)
	}
	for _, l := range ls {
		fmt.Fprintln(stdout, l.Addr().(*net.TCPAddr).Port)
	}
	return 0
}
