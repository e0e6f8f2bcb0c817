package conformance

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Blocking checks the blocking list and sorted-set commands against a server running in
// this process (the goroutine count is part of the check): wake-ups by
// another client's push, their order, timeouts, several keys, BLMOVE,
// pipelines behind a blocked command, CLIENT LIST/INFO/KILL, and a client
// that goes away while blocked. It is not part of Run: its timings need a
// server of its own.
func Blocking(t *testing.T, target Target) {
	timeout := target.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	wake := target.WakeBound
	if wake == 0 {
		wake = 500 * time.Millisecond
	}
	newClient := func(t *testing.T) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: target.Addr, Password: target.RequirePass, MaxRetries: -1,
			ReadTimeout: timeout, WriteTimeout: timeout, PoolSize: 4})
		t.Cleanup(func() { c.Close() })
		return c
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client)
	}{
		{"PipelineBehindABlockedCommand", func(t *testing.T, ctl *redis.Client, _ func(*testing.T) *redis.Client) {
			blockPipeline(t, ctl, target.Addr)
		}},
		{"ClientListInfoKill", func(t *testing.T, ctl *redis.Client, _ func(*testing.T) *redis.Client) {
			blockClientKill(t, ctl, target.Addr)
		}},
		{"DisconnectWhileBlocked", func(t *testing.T, ctl *redis.Client, _ func(*testing.T) *redis.Client) {
			blockDisconnect(t, ctl, target.Addr)
		}},
		{"WokenByAnotherClientsPush", func(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client) {
			blockWoken(t, ctl, newClient, wake)
		}},
		{"FIFO", blockFIFO},
		{"Timeouts", blockTimeouts},
		{"SeveralKeys", blockSeveralKeys},
		{"BLMOVEIntoAnotherList", blockLMove},
		{"SortedSets", func(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client) {
			blockZSets(t, ctl, newClient, wake)
		}},
		{"SortedSetDisconnectWhileBlocked", func(t *testing.T, ctl *redis.Client, _ func(*testing.T) *redis.Client) {
			blockZDisconnect(t, ctl, target.Addr)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl := newClient(t)
			if err := ctl.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			tc.f(t, ctl, newClient)
		})
	}
}

// blockedClients reads INFO's blocked_clients.
func blockedClients(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("INFO clients has no blocked_clients: %q", info)
	return 0
}

// waitBlocked waits until n clients are blocked.
func waitBlocked(t *testing.T, c *redis.Client, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for blockedClients(t, c) != n {
		if time.Now().After(deadline) {
			t.Fatalf("blocked_clients is %d, want %d", blockedClients(t, c), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type popResult struct {
	vals []string
	err  error
	at   time.Time
}

func bpop(c *redis.Client, keys ...string) chan popResult {
	ch := make(chan popResult, 1)
	go func() {
		v, err := c.BLPop(context.Background(), 0, keys...).Result()
		ch <- popResult{v, err, time.Now()}
	}()
	return ch
}

// A push by another client wakes the waiter at once (a few ms: the push's
// commit, a wake-up, the waiter's pop).
func blockWoken(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client, bound time.Duration) {
	ctx := context.Background()
	var worst, worstPush time.Duration
	for i := range 5 {
		got := bpop(newClient(t), "k")
		waitBlocked(t, ctl, 1)
		start := time.Now()
		if err := ctl.RPush(ctx, "k", fmt.Sprint(i)).Err(); err != nil {
			t.Fatal(err)
		}
		worstPush = max(worstPush, time.Since(start))
		r := <-got
		if r.err != nil || strings.Join(r.vals, " ") != fmt.Sprintf("k %d", i) {
			t.Fatalf("BLPOP: %q, %v", r.vals, r.err)
		}
		worst = max(worst, r.at.Sub(start))
	}
	// Both the push and the pop are fsynced writes (the embedded backend's
	// sync=always): the pushing client's own reply takes one of them.
	t.Logf("push to the blocked client's reply: at most %v (the push's own reply: at most %v)", worst, worstPush)
	if worst > bound {
		t.Fatalf("a push took %v to wake the blocked client", worst)
	}
	waitBlocked(t, ctl, 0)
}

// Several waiters on one key are served in the order they blocked, one
// element each; one that got nothing keeps waiting.
func blockFIFO(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client) {
	ctx := context.Background()
	const n = 4
	var waiters []chan popResult
	for i := range n {
		waiters = append(waiters, bpop(newClient(t), "q"))
		waitBlocked(t, ctl, i+1)
	}
	if err := ctl.RPush(ctx, "q", "e0", "e1", "e2").Err(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := <-waiters[i]
		if r.err != nil || strings.Join(r.vals, " ") != fmt.Sprintf("q e%d", i) {
			t.Fatalf("waiter %d: %q, %v", i, r.vals, r.err)
		}
	}
	waitBlocked(t, ctl, 1)
	if err := ctl.LPush(ctx, "q", "e3").Err(); err != nil {
		t.Fatal(err)
	}
	if r := <-waiters[3]; r.err != nil || strings.Join(r.vals, " ") != "q e3" {
		t.Fatalf("waiter 3: %q, %v", r.vals, r.err)
	}
	if n, err := ctl.Exists(ctx, "q").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS q: %d, %v", n, err)
	}
}

// Timeouts end the wait with a null reply, not much after they are due.
func blockTimeouts(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client) {
	ctx := context.Background()
	c := newClient(t)
	for _, tc := range []struct {
		args []any
		d    time.Duration
	}{
		{[]any{"BLPOP", "e", "0.01"}, 10 * time.Millisecond},
		{[]any{"BRPOP", "e", "f", "0.05"}, 50 * time.Millisecond},
		{[]any{"BLMOVE", "e", "f", "LEFT", "LEFT", "0.02"}, 20 * time.Millisecond},
		{[]any{"BRPOPLPUSH", "e", "f", "0.01"}, 10 * time.Millisecond},
		{[]any{"BLMPOP", "0.2", "2", "e", "f", "LEFT", "COUNT", "2"}, 200 * time.Millisecond},
		{[]any{"BLPOP", "e", "0.0001"}, time.Millisecond},
	} {
		start := time.Now()
		err := c.Do(ctx, tc.args...).Err()
		took := time.Since(start)
		if err != redis.Nil {
			t.Fatalf("%v: %v, want a null reply", tc.args, err)
		}
		t.Logf("%v: %v", tc.args, took)
		if took < tc.d || took > tc.d+time.Second {
			t.Fatalf("%v took %v, want %v", tc.args, took, tc.d)
		}
	}
	waitBlocked(t, ctl, 0)
}

// BLPOP on several keys pops from the first non-empty one in argument
// order; blocked, from the one pushed to.
func blockSeveralKeys(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client) {
	ctx := context.Background()
	c := newClient(t)
	ctl.RPush(ctx, "c", "3")
	ctl.RPush(ctx, "b", "2")
	if v, err := c.BLPop(ctx, 0, "a", "b", "c").Result(); err != nil || strings.Join(v, " ") != "b 2" {
		t.Fatalf("BLPOP a b c: %q, %v", v, err)
	}
	if v, err := c.BRPop(ctx, 0, "a", "b", "c").Result(); err != nil || strings.Join(v, " ") != "c 3" {
		t.Fatalf("BRPOP a b c: %q, %v", v, err)
	}
	got := bpop(c, "a", "b", "c")
	waitBlocked(t, ctl, 1)
	ctl.RPush(ctx, "c", "x")
	if r := <-got; r.err != nil || strings.Join(r.vals, " ") != "c x" {
		t.Fatalf("blocked BLPOP a b c: %q, %v", r.vals, r.err)
	}
	// BLMPOP with COUNT, blocked.
	ch := make(chan string, 1)
	go func() {
		k, v, err := c.BLMPop(ctx, 0, "right", 2, "a", "b").Result()
		ch <- fmt.Sprintf("%s %v %v", k, v, err)
	}()
	waitBlocked(t, ctl, 1)
	ctl.RPush(ctx, "b", "1", "2", "3")
	if r := <-ch; r != "b [3 2] <nil>" {
		t.Fatalf("BLMPOP: %s", r)
	}
}

// BLMOVE moves the element into the destination, which wakes a waiter of
// the destination in turn.
func blockLMove(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client) {
	ctx := context.Background()
	mover, reader := newClient(t), newClient(t)
	moved := make(chan string, 1)
	go func() {
		v, err := mover.BLMove(ctx, "src", "dst", "LEFT", "RIGHT", 0).Result()
		moved <- fmt.Sprintf("%s %v", v, err)
	}()
	waitBlocked(t, ctl, 1)
	if err := ctl.RPush(ctx, "src", "one", "two").Err(); err != nil {
		t.Fatal(err)
	}
	if r := <-moved; r != "one <nil>" {
		t.Fatalf("BLMOVE: %s", r)
	}
	if v, err := ctl.LRange(ctx, "dst", 0, -1).Result(); err != nil || strings.Join(v, " ") != "one" {
		t.Fatalf("dst: %q, %v", v, err)
	}
	got := bpop(reader, "dst2")
	waitBlocked(t, ctl, 1)
	if v, err := mover.BRPopLPush(ctx, "src", "dst2", 0).Result(); err != nil || v != "two" {
		t.Fatalf("BRPOPLPUSH: %q, %v", v, err)
	}
	if r := <-got; r.err != nil || strings.Join(r.vals, " ") != "dst2 two" {
		t.Fatalf("waiter of the destination: %q, %v", r.vals, r.err)
	}
}

// The replies before a blocked command go out at once; the commands after
// it wait for it, in order; other clients are served meanwhile.
func blockPipeline(t *testing.T, ctl *redis.Client, addr string) {
	ctx := context.Background()
	r := DialRaw(t, addr)
	var p []byte
	p = append(p, Encode("SET", "before", "1")...)
	p = append(p, Encode("BLPOP", "pk", "0")...)
	p = append(p, Encode("GET", "before")...)
	p = append(p, Encode("ECHO", "after")...)
	r.Send(p)
	if got := r.Read(); got != "+OK\r\n" {
		t.Fatalf("SET before the blocked command: %q", got)
	}
	waitBlocked(t, ctl, 1)
	for range 20 {
		if err := ctl.Ping(ctx).Err(); err != nil {
			t.Fatalf("another client while one is blocked: %v", err)
		}
	}
	if err := ctl.RPush(ctx, "pk", "v").Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"*2\r\n$2\r\npk\r\n$1\r\nv\r\n", "$1\r\n1\r\n", "$5\r\nafter\r\n"} {
		if got := r.Read(); got != want {
			t.Fatalf("pipeline after the blocked command: %q, want %q", got, want)
		}
	}
}

// CLIENT LIST and INFO show the blocked client; CLIENT KILL closes it.
func blockClientKill(t *testing.T, ctl *redis.Client, addr string) {
	ctx := context.Background()
	r := DialRaw(t, addr)
	id := strings.TrimSuffix(strings.TrimPrefix(r.Do("CLIENT", "ID"), ":"), "\r\n")
	r.Send(Encode("BLPOP", "kk", "0"))
	waitBlocked(t, ctl, 1)
	line, err := ctl.Do(ctx, "CLIENT", "LIST", "ID", id).Text()
	if err != nil || !strings.Contains(line, " flags=b ") || !strings.Contains(line, " cmd=blpop ") {
		t.Fatalf("CLIENT LIST of the blocked client: %q, %v", line, err)
	}
	if n, err := ctl.Do(ctx, "CLIENT", "KILL", "ID", id).Int(); err != nil || n != 1 {
		t.Fatalf("CLIENT KILL: %d, %v", n, err)
	}
	if got, err := r.ReadErr(); err == nil {
		t.Fatalf("the killed client read %q", got)
	}
	waitBlocked(t, ctl, 0)
	ctl.RPush(ctx, "kk", "x")
	if n, err := ctl.LLen(ctx, "kk").Result(); err != nil || n != 1 {
		t.Fatalf("LLEN after the blocked client was killed: %d, %v", n, err)
	}
}

// A client that goes away while blocked is dropped: nothing is popped for
// it afterwards, and no goroutine stays behind.
func blockDisconnect(t *testing.T, ctl *redis.Client, addr string) {
	ctx := context.Background()
	ctl.Ping(ctx)
	base := gatewayGoroutines()
	for i := range 10 {
		r := DialRaw(t, addr)
		r.Send(Encode("BLPOP", "gone", fmt.Sprint(i%2*100)))
		waitBlocked(t, ctl, 1)
		r.Close()
		waitBlocked(t, ctl, 0)
	}
	if err := ctl.RPush(ctx, "gone", "x").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := ctl.LLen(ctx, "gone").Result(); err != nil || n != 1 {
		t.Fatalf("LLEN after the blocked clients left: %d, %v", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for gatewayGoroutines() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d gateway goroutines, %d before the blocked clients:\n%s", gatewayGoroutines(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gatewayGoroutines counts the goroutines running the gateway's own code.
// A test process may also run a whole cluster (tests/gateway), whose gRPC
// connections and raft loops come and go on their own; a blocked client's
// goroutine always has the gateway's command layer or server on its stack.
func gatewayGoroutines() int {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("nokv/services/gateway/internal/command.")) ||
			bytes.Contains(g, []byte("nokv/services/gateway/gatewayserver.")) {
			n++
		}
	}
	return n
}

// bzpop runs BZPOPMIN (or BZPOPMAX) in the background: "key member score".
func bzpop(c *redis.Client, popMax bool, keys ...string) chan popResult {
	ch := make(chan popResult, 1)
	go func() {
		pop := c.BZPopMin
		if popMax {
			pop = c.BZPopMax
		}
		z, err := pop(context.Background(), 0, keys...).Result()
		var vals []string
		if err == nil {
			vals = []string{z.Key, fmt.Sprint(z.Member), fmt.Sprint(z.Score)}
		}
		ch <- popResult{vals, err, time.Now()}
	}()
	return ch
}

// BZPOPMIN, BZPOPMAX and BZMPOP: woken at once by another client's ZADD,
// waiters served in the order they blocked (one member each, the last
// woken by ZINCRBY), timeouts, several keys.
func blockZSets(t *testing.T, ctl *redis.Client, newClient func(*testing.T) *redis.Client, bound time.Duration) {
	ctx := context.Background()
	var worst time.Duration
	for i := range 5 {
		got := bzpop(newClient(t), i%2 == 1, "z")
		waitBlocked(t, ctl, 1)
		start := time.Now()
		if err := ctl.ZAdd(ctx, "z", redis.Z{Score: float64(i), Member: "m"}).Err(); err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil || strings.Join(r.vals, " ") != fmt.Sprintf("z m %d", i) {
			t.Fatalf("BZPOP: %q, %v", r.vals, r.err)
		}
		worst = max(worst, r.at.Sub(start))
	}
	t.Logf("ZADD to the blocked client's reply: at most %v", worst)
	if worst > bound {
		t.Fatalf("a ZADD took %v to wake the blocked client", worst)
	}
	waitBlocked(t, ctl, 0)

	// FIFO: three waiters, two members; the third waits on.
	var waiters []chan popResult
	for i := range 3 {
		waiters = append(waiters, bzpop(newClient(t), i == 1, "q"))
		waitBlocked(t, ctl, i+1)
	}
	if err := ctl.ZAdd(ctx, "q", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2, Member: "b"}).Err(); err != nil {
		t.Fatal(err)
	}
	// The first (BZPOPMIN) takes a, the second (BZPOPMAX) b.
	for i, want := range []string{"q a 1", "q b 2"} {
		if r := <-waiters[i]; r.err != nil || strings.Join(r.vals, " ") != want {
			t.Fatalf("waiter %d: %q, %v, want %q", i, r.vals, r.err, want)
		}
	}
	waitBlocked(t, ctl, 1)
	if err := ctl.ZIncrBy(ctx, "q", 2.5, "c").Err(); err != nil {
		t.Fatal(err)
	}
	if r := <-waiters[2]; r.err != nil || strings.Join(r.vals, " ") != "q c 2.5" {
		t.Fatalf("waiter 2: %q, %v", r.vals, r.err)
	}
	if n, err := ctl.Exists(ctx, "q").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS q: %d, %v", n, err)
	}

	// Timeouts: a null reply, not much after it is due.
	c := newClient(t)
	for _, tc := range []struct {
		args []any
		d    time.Duration
	}{
		{[]any{"BZPOPMIN", "e", "0.01"}, 10 * time.Millisecond},
		{[]any{"BZPOPMAX", "e", "f", "0.05"}, 50 * time.Millisecond},
		{[]any{"BZMPOP", "0.2", "2", "e", "f", "MIN", "COUNT", "2"}, 200 * time.Millisecond},
		{[]any{"BZPOPMIN", "e", "0.0001"}, time.Millisecond},
	} {
		start := time.Now()
		err := c.Do(ctx, tc.args...).Err()
		took := time.Since(start)
		if err != redis.Nil {
			t.Fatalf("%v: %v, want a null reply", tc.args, err)
		}
		if took < tc.d || took > tc.d+time.Second {
			t.Fatalf("%v took %v, want %v", tc.args, took, tc.d)
		}
	}

	// Several keys: the first non-empty in argument order; blocked, the
	// one written to. BZMPOP with COUNT, blocked.
	ctl.ZAdd(ctx, "zc", redis.Z{Score: 3, Member: "x"})
	ctl.ZAdd(ctx, "zb", redis.Z{Score: 2, Member: "y"}, redis.Z{Score: 5, Member: "w"})
	if z, err := c.BZPopMax(ctx, 0, "za", "zb", "zc").Result(); err != nil || z.Key != "zb" || z.Member != "w" {
		t.Fatalf("BZPOPMAX za zb zc: %+v, %v", z, err)
	}
	got := bzpop(c, false, "za", "zd")
	waitBlocked(t, ctl, 1)
	ctl.ZAdd(ctx, "zd", redis.Z{Score: 7, Member: "v"})
	if r := <-got; r.err != nil || strings.Join(r.vals, " ") != "zd v 7" {
		t.Fatalf("blocked BZPOPMIN za zd: %q, %v", r.vals, r.err)
	}
	ch := make(chan string, 1)
	go func() {
		k, v, err := c.BZMPop(ctx, 0, "max", 2, "za", "ze").Result()
		ch <- fmt.Sprintf("%s %v %v", k, v, err)
	}()
	waitBlocked(t, ctl, 1)
	ctl.ZAdd(ctx, "ze", redis.Z{Score: 1, Member: "p"}, redis.Z{Score: 2, Member: "q"}, redis.Z{Score: 3, Member: "r"})
	if r := <-ch; r != "ze [{3 r} {2 q}] <nil>" {
		t.Fatalf("BZMPOP: %s", r)
	}
	waitBlocked(t, ctl, 0)
}

// A client that goes away while blocked in BZPOPMIN is dropped: a later
// ZADD stays in the sorted set.
func blockZDisconnect(t *testing.T, ctl *redis.Client, addr string) {
	ctx := context.Background()
	for i := range 6 {
		r := DialRaw(t, addr)
		timeout := fmt.Sprint(i % 2 * 100)
		args := [][]string{{"BZPOPMIN", "gone", timeout}, {"BZPOPMAX", "gone", timeout},
			{"BZMPOP", timeout, "1", "gone", "MIN", "COUNT", "3"}}[i%3]
		r.Send(Encode(args...))
		waitBlocked(t, ctl, 1)
		r.Close()
		waitBlocked(t, ctl, 0)
	}
	if err := ctl.ZAdd(ctx, "gone", redis.Z{Score: 1, Member: "x"}).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := ctl.ZCard(ctx, "gone").Result(); err != nil || n != 1 {
		t.Fatalf("ZCARD after the blocked clients left: %d, %v", n, err)
	}
}
