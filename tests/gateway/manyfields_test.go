package gateway

import (
	"context"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// cpuTime is the CPU time this process has used: the cluster's stores, PD
// and the gateway all run in it.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// HSET, SADD and ZADD of 100 elements over an existing collection on the
// raft backend, half of them new: the replies count the new ones, the
// collection holds them all, and the figures (wall time and the process's
// CPU per command, logged) show what reading the elements' old state costs
// (one batched read per command, not one read per element).
func TestRaftManyFieldWrites(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	gw := startGateway(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rc := redis.NewClient(&redis.Options{Addr: gw.Addr(), MaxRetries: -1, ReadTimeout: time.Minute})
	defer rc.Close()
	const n, rounds = 100, 20
	for _, kind := range []string{"hset", "sadd", "zadd"} {
		key := kind + "-key"
		args := func(round int) []any {
			var out []any
			for i := range n {
				// Half the elements are the last round's, half new.
				e := "e" + strconv.Itoa(round*n/2+i)
				switch kind {
				case "hset":
					out = append(out, e, "v"+strconv.Itoa(round))
				case "zadd":
					out = append(out, redis.Z{Score: float64(round), Member: e})
				default:
					out = append(out, e)
				}
			}
			return out
		}
		write := func(round int) (int64, error) {
			a := args(round)
			switch kind {
			case "hset":
				return rc.HSet(ctx, key, a...).Result()
			case "zadd":
				zs := make([]redis.Z, len(a))
				for i := range a {
					zs[i] = a[i].(redis.Z)
				}
				return rc.ZAdd(ctx, key, zs...).Result()
			default:
				return rc.SAdd(ctx, key, a...).Result()
			}
		}
		var wall, cpu time.Duration
		for round := range rounds + 1 {
			start, cpu0 := time.Now(), cpuTime(t)
			added, err := write(round)
			if round > 0 { // round 0 creates the collection
				wall += time.Since(start)
				cpu += cpuTime(t) - cpu0
			}
			if err != nil {
				t.Fatalf("%s round %d: %v", kind, round, err)
			}
			want := int64(n / 2)
			if round == 0 {
				want = n
			}
			if added != want {
				t.Fatalf("%s round %d added %d, want %d", kind, round, added, want)
			}
		}
		var size int64
		var err error
		switch kind {
		case "hset":
			size, err = rc.HLen(ctx, key).Result()
			if v, err := rc.HGet(ctx, key, "e"+strconv.Itoa(rounds*n/2)).Result(); err != nil || v != "v"+strconv.Itoa(rounds) {
				t.Fatalf("HGET = %q, %v", v, err)
			}
		case "zadd":
			size, err = rc.ZCard(ctx, key).Result()
			if s, err := rc.ZScore(ctx, key, "e"+strconv.Itoa(rounds*n/2)).Result(); err != nil || s != rounds {
				t.Fatalf("ZSCORE = %v, %v", s, err)
			}
		default:
			size, err = rc.SCard(ctx, key).Result()
		}
		if want := int64(n + rounds*n/2); err != nil || size != want {
			t.Fatalf("%s: %d elements, %v; want %d", kind, size, err, want)
		}
		t.Logf("%s of %d elements (half new) over an existing collection: %v wall, %v CPU per command",
			kind, n, (wall / rounds).Round(time.Microsecond), (cpu / rounds).Round(time.Microsecond))
	}
}

// The job-queue pattern on the raft backend (RPUSH one, LPOP it: the list
// dies every cycle) leaves no reclaim-queue entry, hence no region range
// deletion to come, and nothing behind; the figures per cycle are logged.
func TestRaftQueueCycle(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	gw := startGateway(t, c, func(cfg *gatewayserver.Config) {
		cfg.RaftReclaimInterval, cfg.RaftSweepInterval = -1, -1 // keep what is queued
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc, err := kvclient.New(ctx, c.PDAddr(), kvclient.Options{MaxRetries: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	rc := redis.NewClient(&redis.Options{Addr: gw.Addr(), MaxRetries: -1, ReadTimeout: time.Minute})
	defer rc.Close()
	const cycles = 300
	start, cpu0 := time.Now(), cpuTime(t)
	for i := range cycles {
		job := "job" + strconv.Itoa(i)
		if err := rc.RPush(ctx, "q", job).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rc.LPop(ctx, "q").Result(); err != nil || v != job {
			t.Fatalf("LPOP = %q, %v; want %q", v, err, job)
		}
	}
	wall, cpu := time.Since(start), cpuTime(t)-cpu0
	t.Logf("RPUSH+LPOP cycle: %v wall, %v CPU", (wall / cycles).Round(time.Microsecond), (cpu / cycles).Round(time.Microsecond))
	if n := mustQueueLen(ctx, t, kc); n != 0 {
		t.Fatalf("%d cycles left %d reclaim-queue entries, want 0", cycles, n)
	}
	subs, err := subVersions(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 0 {
		t.Fatalf("sub-keys left: %v", subs)
	}
}
