package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/tests/cluster"
)

// storeRPCs is the number of unary RPCs the cluster's stores have served.
func storeRPCs(t *testing.T, c *cluster.Cluster) int64 {
	t.Helper()
	var n int64
	for _, id := range c.StoreIDs() {
		if st := c.StoreStats(id); st != nil {
			v, ok := st["rpc_total"].(int64)
			if !ok {
				t.Fatalf("store %d: rpc_total is %T", id, st["rpc_total"])
			}
			n += v
		}
	}
	return n
}

// TestRaftBackendManyKeys: on the raft backend, a command naming many keys
// reads their heads in one head-only batch read at its start timestamp,
// not one request per key, and a key's head never carries its value. Each
// command's store requests are counted: before, DEL of 100k absent keys
// made 100k sequential reads (~30 s) and DEL of a 6 MiB key named 1000
// times read the value 1000 times.
func TestRaftBackendManyKeys(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00many:5"}})
	srv := startGateway(t, c)
	rc := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 10 * time.Second,
		ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute,
	})
	t.Cleanup(func() { rc.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)

	keys := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s:%d", prefix, i)
		}
		return out
	}
	pairs := func(prefix string, n int) []any {
		out := make([]any, 0, 2*n)
		for i := range n {
			out = append(out, fmt.Sprintf("%s:%d", prefix, i), fmt.Sprint(i))
		}
		return out
	}
	repeat := func(n int, elems ...string) []any {
		out := make([]any, 0, n*len(elems))
		for range n {
			for _, e := range elems {
				out = append(out, e)
			}
		}
		return out
	}
	// run runs one command, checks its reply, and checks that the stores
	// served at most maxRPCs requests for it (with room for the commit,
	// retries and the cluster's own traffic).
	run := func(t *testing.T, name string, want any, maxRPCs int64, args ...any) {
		t.Helper()
		before, start := storeRPCs(t, c), time.Now()
		got, err := rc.Do(ctx, args...).Result()
		took, rpcs := time.Since(start), storeRPCs(t, c)-before
		t.Logf("%s: %v, %d store requests", name, took.Round(time.Millisecond), rpcs)
		if wantErr, ok := want.(error); ok {
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("%s = %v, %v; want error %v", name, got, err, want)
			}
		} else if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s = %v, %v; want %v", name, got, err, want)
		}
		if rpcs > maxRPCs {
			t.Errorf("%s made %d store requests, want at most %d", name, rpcs, maxRPCs)
		}
	}
	strs := func(ss []string) []any {
		out := make([]any, len(ss))
		for i, s := range ss {
			out[i] = s
		}
		return out
	}
	cmd := func(name string, rest ...any) []any { return append([]any{name}, rest...) }
	// The sizes of the old slow cases (30 s for 100k keys, 15 s for 50k),
	// smaller under the race detector. Keys are read in batches of 256 per
	// region and written likewise: a command of n keys makes a few times
	// n/256 requests, where it made one per key. The bounds leave room for
	// retries on a loaded machine and the cluster's own traffic.
	n := 100_000
	if raceEnabled {
		n = 10_000
	}
	half := n / 2
	bulkRPCs := int64(n / 10)
	const fewRPCs = 200

	t.Run("DEL-absent", func(t *testing.T) {
		run(t, fmt.Sprintf("DEL of %d absent keys", n), 0, bulkRPCs, cmd("DEL", strs(keys("many", n))...)...)
	})
	t.Run("DEL-existing", func(t *testing.T) {
		run(t, "MSET", "OK", bulkRPCs, cmd("MSET", pairs("many", half)...)...)
		run(t, fmt.Sprintf("DEL of %d existing keys", half), half, bulkRPCs, cmd("DEL", strs(keys("many", half))...)...)
		if n := rc.Exists(ctx, "many:0", fmt.Sprintf("many:%d", half-1)).Val(); n != 0 {
			t.Fatalf("EXISTS after DEL = %d", n)
		}
	})
	t.Run("UNLINK-existing", func(t *testing.T) {
		run(t, "MSET", "OK", bulkRPCs, cmd("MSET", pairs("many", half)...)...)
		// Half absent, some named twice: each key deleted and counted once.
		args := append(strs(keys("many", n)), "many:7", fmt.Sprintf("many:%d", half-1), fmt.Sprintf("many:%d", half))
		run(t, fmt.Sprintf("UNLINK of %d existing and %d absent keys", half, n-half), half, bulkRPCs, cmd("UNLINK", args...)...)
	})
	t.Run("MSETNX", func(t *testing.T) {
		run(t, fmt.Sprintf("MSETNX of %d new pairs", half), 1, bulkRPCs, cmd("MSETNX", pairs("nx", half)...)...)
		if v := rc.MGet(ctx, "nx:0", fmt.Sprintf("nx:%d", half-1)).Val(); fmt.Sprint(v) != fmt.Sprintf("[0 %d]", half-1) {
			t.Fatalf("MGET after MSETNX = %v", v)
		}
		// One key exists: nothing is set.
		args := append(pairs("nx2", half), "nx:123", "x")
		run(t, "MSETNX, one key existing", 0, bulkRPCs, cmd("MSETNX", args...)...)
		if n := rc.Exists(ctx, "nx2:0", fmt.Sprintf("nx2:%d", half-1)).Val(); n != 0 {
			t.Fatalf("MSETNX that failed wrote %d keys", n)
		}
		run(t, fmt.Sprintf("MSETNX of one key %d times", half), 1, fewRPCs, cmd("MSETNX", repeat(half, "repnx", "x")...)...)
		run(t, "again", 0, fewRPCs, cmd("MSETNX", repeat(half, "repnx", "y")...)...)
		if v := rc.Get(ctx, "repnx").Val(); v != "x" {
			t.Fatalf("GET repnx = %q", v)
		}
	})
	t.Run("OwnWritesWin", func(t *testing.T) {
		// The command's own deletion of a key it prefetched answers its
		// next look at the key.
		if err := rc.Set(ctx, "own", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		run(t, "DEL own own absent own", 1, fewRPCs, "DEL", "own", "own", "absent", "own")
		run(t, "MSETNX own 1 own 2", 1, fewRPCs, "MSETNX", "own", "1", "own", "2")
		if v := rc.Get(ctx, "own").Val(); v != "2" {
			t.Fatalf("GET own = %q, want the last of MSETNX's values", v)
		}
		if err := rc.Set(ctx, "src", "s", 0).Err(); err != nil {
			t.Fatal(err)
		}
		run(t, "RENAME src dst", "OK", fewRPCs, "RENAME", "src", "dst")
		run(t, "RENAMENX dst src", 1, fewRPCs, "RENAMENX", "dst", "src")
		run(t, "RENAME absent dst", errors.New("ERR no such key"), fewRPCs, "RENAME", "absent", "dst")
	})
	t.Run("6MiB-value-named-1000-times", func(t *testing.T) {
		const size = 6 << 20
		big := strings.Repeat("b", size)
		if err := rc.Set(ctx, "big", big, 0).Err(); err != nil {
			t.Fatal(err)
		}
		named := repeat(1000, "big")
		run(t, "EXISTS big x1000", 1000, fewRPCs, cmd("EXISTS", named...)...)
		run(t, "TOUCH big x1000", 1000, fewRPCs, cmd("TOUCH", named...)...)
		run(t, "STRLEN big", size, fewRPCs, "STRLEN", "big")
		run(t, "TYPE big", "string", fewRPCs, "TYPE", "big")
		run(t, "TTL big", -1, fewRPCs, "TTL", "big")
		run(t, "PEXPIRE big", 1, fewRPCs, "PEXPIRE", "big", 100_000)
		if ttl := rc.PTTL(ctx, "big").Val(); ttl <= 0 || ttl > 100*time.Second {
			t.Fatalf("PTTL big = %v", ttl)
		}
		if v := rc.Get(ctx, "big").Val(); v != big {
			t.Fatalf("GET big: %d bytes", len(v))
		}
		run(t, "DEL big x1000 absent", 1, fewRPCs, cmd("DEL", append(named, "absent")...)...)
		run(t, "EXISTS big", 0, fewRPCs, "EXISTS", "big")
		run(t, "STRLEN big", 0, fewRPCs, "STRLEN", "big")
		run(t, "TYPE big", "none", fewRPCs, "TYPE", "big")
		run(t, "TTL big", -2, fewRPCs, "TTL", "big")
	})
}
