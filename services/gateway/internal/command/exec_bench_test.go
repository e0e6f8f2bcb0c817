package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	"github.com/nokv/nokv/services/gateway/internal/metrics"
)

// Benchmarks of the command path without the network: what one GET or SET costs
// in the gateway and the embedded store (run with -benchmem to see allocations).
// The network side is measured by scripts/bench-embedded.sh.

func benchExecutor(b *testing.B, sync embedded.SyncPolicy) (*Executor, *Client) {
	b.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := embedded.Open(embedded.Options{Dir: b.TempDir(), Sync: sync, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	// Observe as the server does: per-command metrics kept by command ID.
	m := metrics.New()
	per := make([]*metrics.Command, len(Commands()))
	e := New(st, Options{Logger: log, Observe: func(c *Command, d time.Duration, failed bool) {
		if per[c.ID] == nil {
			per[c.ID] = m.Command(c.Name)
		}
		per[c.ID].Observe(d, failed)
	}})
	return e, e.NewClient("127.0.0.1:1", "127.0.0.1:2")
}

func argv(args ...string) [][]byte {
	v := make([][]byte, len(args))
	for i, a := range args {
		v[i] = []byte(a)
	}
	return v
}

// benchSetup runs one command outside the measurement.
func benchSetup(b *testing.B, e *Executor, c *Client, args ...string) {
	b.Helper()
	if err := e.Exec(context.Background(), c, argv(args...), true); err != nil {
		b.Fatal(err)
	}
	c.Out.Reset()
}

// benchExec measures one command, run with the given last-of-pipeline flag.
func benchExec(b *testing.B, e *Executor, c *Client, last bool, args ...string) {
	b.Helper()
	benchSetup(b, e, c, args...)
	argv := argv(args...)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := e.Exec(context.Background(), c, argv, last); err != nil {
			b.Fatal(err)
		}
		c.Out.Reset()
	}
}

// BenchmarkExecGet is redis-benchmark's GET: one key, a 3-byte value.
func BenchmarkExecGet(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncAlways)
	benchSetup(b, e, c, "SET", "key:__rand_int__", "xxx")
	benchExec(b, e, c, true, "GET", "key:__rand_int__")
}

// BenchmarkExecSetPipelined is a SET inside a pipeline: its fsync is deferred to
// the end of the pipeline, so this is the CPU cost of a durable SET.
func BenchmarkExecSetPipelined(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncAlways)
	benchExec(b, e, c, false, "SET", "key:__rand_int__", "xxx")
}

// BenchmarkExecSetNoSync is a SET under --sync no.
func BenchmarkExecSetNoSync(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncNo)
	benchExec(b, e, c, true, "SET", "key:__rand_int__", "xxx")
}

// BenchmarkExecRPushNoSync is an RPUSH under --sync no: the list path, with
// the check for blocked clients every push makes (signalKeyAsReady) when
// no one is blocked.
func BenchmarkExecRPushNoSync(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncNo)
	benchExec(b, e, c, true, "RPUSH", "list", "xxx")
}

// BenchmarkQueueCycle is the job-queue pattern: RPUSH one element, LPOP it,
// so the list is created and emptied every cycle (BLPOP consumers do the
// same). Each sub-benchmark first runs `after` cycles, then measures: the
// cost per cycle must not grow with the number of cycles already run
// (docs/benchmarks.md, "Collections").
func BenchmarkQueueCycle(b *testing.B) {
	for _, after := range []int{1_000, 10_000, 30_000} {
		b.Run(fmt.Sprintf("after=%d", after), func(b *testing.B) {
			e, c := benchExecutor(b, embedded.SyncNo)
			push, pop := argv("RPUSH", "queue", "job"), argv("LPOP", "queue")
			cycle := func() {
				for _, a := range [][][]byte{push, pop} {
					if err := e.Exec(context.Background(), c, a, true); err != nil {
						b.Fatal(err)
					}
					c.Out.Reset()
				}
			}
			for range after {
				cycle()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cycle()
			}
		})
	}
}

// benchCollection measures a collection command the way the event loop runs
// it: under the store's batch context (backend.Batcher), each command the
// last of its pipeline, perIteration commands per iteration of the loop
// (whose batch is then committed), --sync no so that
// the figure is the CPU of the command, not the disk's fsync. args' "%d" is
// replaced by a pseudo-random number below keyspace, as redis-benchmark -r
// does (KEYSPACE 100000 in scripts/bench-collections.sh), and "%r" by a
// second one, drawn apart as redis-benchmark draws each __rand_int__.
func benchCollection(b *testing.B, setup [][]string, keyspace int, args ...string) {
	e, c := benchExecutor(b, embedded.SyncNo)
	ctx := e.be.(backend.Batcher).Batch(context.Background())
	for i, s := range setup {
		if err := e.Exec(ctx, c, argv(s...), true); err != nil {
			b.Fatal(err)
		}
		c.Out.Reset()
		if (i+1)%perIteration == 0 {
			if err := e.be.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := e.be.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	// Precomputed argument vectors: the benchmark measures the command, not
	// the formatting of its random member. As many as redis-benchmark's
	// -n 100000 draws, so that as many of them are new (63 % over 100 000
	// draws below 100 000): with 4096 vectors all but the first few
	// thousand commands found their member, and the existence read missed
	// almost never (it misses 63 % of the time under redis-benchmark).
	const variants = 1 << 17
	vs := make([][][]byte, variants)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range vs {
		n, m := rng.IntN(max(keyspace, 1)), rng.IntN(max(keyspace, 1))
		a := make([]string, len(args))
		for j, s := range args {
			a[j] = strings.ReplaceAll(strings.ReplaceAll(s, "%d", fmt.Sprintf("%012d", n)), "%r", fmt.Sprint(m))
		}
		vs[i] = argv(a...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		if err := e.Exec(ctx, c, vs[i%variants], true); err != nil {
			b.Fatal(err)
		}
		i++
		// The end of the loop's iteration: its batch is committed.
		if i%perIteration == 0 {
			if err := e.be.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
		c.Out.Reset()
	}
	// CPU time of the whole process (Pebble's goroutines included) per
	// command: on a shared machine ns/op is wall time, inflated by others.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// perIteration is how many commands the benchmarks' event loop serves per
// iteration, i.e. per commit of its batch: redis-benchmark's 50 clients,
// one request each in flight, arrive a few at a time on a busy 2-core machine.
var perIteration = 8

// cpuTime is the process's user and system CPU time, in nanoseconds (0
// where cpuUsage cannot tell).
func cpuTime() int64 {
	self, _ := cpuUsage()
	return int64(self[0] + self[1])
}

// The collection commands of scripts/bench-collections.sh, as
// redis-benchmark sends them (docs/benchmarks.md, "Collections").
func BenchmarkCollSAdd(b *testing.B) {
	benchCollection(b, nil, 100_000, "SADD", "myset", "element:%d")
}

func BenchmarkCollHSet(b *testing.B) {
	benchCollection(b, nil, 100_000, "HSET", "myhash", "element:%d", "xxx")
}

func BenchmarkCollZAdd(b *testing.B) {
	// redis-benchmark's score is a random number of its own: a member found
	// again (37 % of the time) moves in the score index.
	benchCollection(b, nil, 100_000, "ZADD", "myzset", "%r", "element:%d")
}

func BenchmarkCollLPush(b *testing.B) {
	benchCollection(b, nil, 0, "LPUSH", "mylist", "xxx")
}

// BenchmarkCollRPop is RPOP mylist after redis-benchmark's LPUSH (run it
// with -benchtime of at most 100000x: past that the list is empty), with
// and without pop batches.
func BenchmarkCollRPop(b *testing.B) {
	benchPops(b, redisBenchFill("LPUSH", "mylist", "xxx"), "RPOP", "mylist")
}

// BenchmarkCollLPop is BenchmarkCollRPop's LPOP.
func BenchmarkCollLPop(b *testing.B) {
	benchPops(b, redisBenchFill("LPUSH", "mylist", "xxx"), "LPOP", "mylist")
}

// BenchmarkCollLRange100 is LRANGE mylist 0 99 on a list of 600 elements.
func BenchmarkCollLRange100(b *testing.B) { benchLRange100(b, 600) }

// BenchmarkCollLRange100Pushed is LRANGE mylist 0 99 after 100 000 LPUSH,
// as redis-benchmark's LRANGE_100 reads the list its LPUSH test filled: a
// young store then holds the list in several memtables (docs/benchmarks.md,
// "Collection reads").
func BenchmarkCollLRange100Pushed(b *testing.B) { benchLRange100(b, 100_000) }

func benchLRange100(b *testing.B, n int) {
	setup := make([][]string, 0, n)
	for range n {
		setup = append(setup, []string{"LPUSH", "mylist", "xxx"})
	}
	benchCollection(b, setup, 0, "LRANGE", "mylist", "0", "99")
}

// redisBenchFill is what redis-benchmark's -t TEST -n 100000 -r 100000
// leaves in the key its pop tests pop from: "%d" in args is a random
// number below 100 000 (about 63 000 distinct members).
func redisBenchFill(args ...string) [][]string {
	rng := rand.New(rand.NewPCG(3, 4))
	setup := make([][]string, 0, 100_000)
	for range 100_000 {
		n := fmt.Sprintf("%012d", rng.IntN(100_000))
		a := make([]string, len(args))
		for j, s := range args {
			a[j] = strings.ReplaceAll(s, "%d", n)
		}
		setup = append(setup, a)
	}
	return setup
}

// BenchmarkCollZPopMin is ZPOPMIN myzset after redis-benchmark's ZADD
// (run it with -benchtime of at most 60000x: past that the set is empty),
// with and without pop batches (popcache.go).
func BenchmarkCollZPopMin(b *testing.B) {
	benchPops(b, redisBenchFill("ZADD", "myzset", "%d", "element:%d"), "ZPOPMIN", "myzset")
}

// BenchmarkCollZPopMax is BenchmarkCollZPopMin's ZPOPMAX.
func BenchmarkCollZPopMax(b *testing.B) {
	benchPops(b, redisBenchFill("ZADD", "myzset", "%d", "element:%d"), "ZPOPMAX", "myzset")
}

// BenchmarkCollSPop is SPOP myset after redis-benchmark's SADD
// (scripts/bench-collections.sh pops 2000: -benchtime 2000x).
func BenchmarkCollSPop(b *testing.B) {
	benchPops(b, redisBenchFill("SADD", "myset", "element:%d"), "SPOP", "myset")
}

func benchPops(b *testing.B, setup [][]string, args ...string) {
	for _, batches := range []bool{false, true} {
		b.Run(fmt.Sprintf("batches=%v", batches), func(b *testing.B) {
			defer func(old bool) { usePopBatches = old }(usePopBatches)
			usePopBatches = batches
			benchCollection(b, setup, 0, args...)
		})
	}
}

// BenchmarkCollSPopQueue is a job queue on one set of 30 000 members: an
// SADD of a new member, then an SPOP, per op (popcache.go keeps the SPOP
// sample across the SADDs; before, every SPOP after a write walked).
func BenchmarkCollSPopQueue(b *testing.B) {
	e, c := benchExecutor(b, embedded.SyncNo)
	ctx := e.be.(backend.Batcher).Batch(context.Background())
	run := func(args ...string) {
		if err := e.Exec(ctx, c, argv(args...), true); err != nil {
			b.Fatal(err)
		}
		c.Out.Reset()
	}
	const n = 30000
	for i := 0; i < n; i += 1000 {
		args := []string{"SADD", "q"}
		for j := i; j < i+1000; j++ {
			args = append(args, fmt.Sprintf("m:%d", j))
		}
		run(args...)
	}
	run("SPOP", "q")
	if err := e.be.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	adds := make([][][]byte, 1<<16)
	for i := range adds {
		adds[i] = argv("SADD", "q", fmt.Sprintf("n:%d", i))
	}
	pop := argv("SPOP", "q")
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		for _, cmd := range [][][]byte{adds[i%len(adds)], pop} {
			if err := e.Exec(ctx, c, cmd, true); err != nil {
				b.Fatal(err)
			}
			c.Out.Reset()
		}
		if i++; i%(perIteration/2) == 0 {
			if err := e.be.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}
