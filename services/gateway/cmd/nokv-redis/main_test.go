package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// binary is the nokv-redis built once for this package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nokv-redis-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "nokv-redis")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nokv-redis:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	addr   string
	done   chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs nokv-redis with args and waits until it answers PING.
func start(t *testing.T, addr string, args ...string) *proc {
	t.Helper()
	p := startNoWait(t, append([]string{"--addr", addr}, args...)...)
	p.addr = addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("nokv-redis exited early: %v\n%s", p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nokv-redis did not listen on %s:\n%s", addr, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startNoWait(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stderr = p.stderr
	p.cmd.Stdout = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("nokv-redis did not exit within %v:\n%s", d, p.stderr)
		return nil
	}
}

// TestAcknowledgedWritesSurviveKill9 writes under load with --sync always, kills
// the process with SIGKILL mid-stream, restarts it on the same workdir and checks
// that every write that got a reply is there.
func TestAcknowledgedWritesSurviveKill9(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := start(t, addr, "--workdir", dir, "--sync", "always")
	ctx := context.Background()

	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 32, MaxRetries: -1})
	defer c.Close()
	const writers = 18
	var (
		mu       sync.Mutex
		acked    = map[string]string{}
		fields   = map[string]map[string]string{} // hash -> field -> value
		members  = map[string][]string{}          // set -> members
		pushed   = map[string]int{}               // list -> last acknowledged RPUSH
		zlast    = map[string]int{}               // zset -> last acknowledged ZADD
		maxIncr  int64
		maxHIncr int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		failures int
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				switch w % 6 {
				case 0: // single SETs
					k, v := fmt.Sprintf("w%d:%d", w, i), strconv.Itoa(i)
					if err = c.Set(ctx, k, v, 0).Err(); err == nil {
						mu.Lock()
						acked[k] = v
						mu.Unlock()
					}
				case 1: // pipelines: the fsync is deferred to the end of the batch
					pipe := c.Pipeline()
					kv := map[string]string{}
					for j := 0; j < 8; j++ {
						k := fmt.Sprintf("w%d:%d:%d", w, i, j)
						kv[k] = k
						pipe.Set(ctx, k, k, 0)
					}
					if _, err = pipe.Exec(ctx); err == nil {
						mu.Lock()
						for k, v := range kv {
							acked[k] = v
						}
						mu.Unlock()
					}
				case 2: // multi-key atomic writes
					k1, k2 := fmt.Sprintf("w%d:%d:a", w, i), fmt.Sprintf("w%d:%d:b", w, i)
					if err = c.MSet(ctx, k1, "a", k2, "b").Err(); err == nil {
						mu.Lock()
						acked[k1], acked[k2] = "a", "b"
						mu.Unlock()
					}
				case 3: // read-modify-write
					var n int64
					if n, err = c.Incr(ctx, "counter").Result(); err == nil {
						mu.Lock()
						maxIncr = max(maxIncr, n)
						mu.Unlock()
					}
				case 4: // hash fields, several per HSET, pipelined (one hash per writer)
					h := fmt.Sprintf("hash%d", w)
					pipe := c.Pipeline()
					kv := map[string]string{}
					for j := 0; j < 4; j++ {
						f := fmt.Sprintf("f%d:%d", i, j)
						kv[f] = strconv.Itoa(i * j)
					}
					pipe.HSet(ctx, h, kv)
					pipe.HSet(ctx, h, "last", strconv.Itoa(i))
					set := fmt.Sprintf("set%d", w)
					pipe.SAdd(ctx, set, i, fmt.Sprint("m", i))
					list := fmt.Sprintf("list%d", w)
					pipe.RPush(ctx, list, i)
					zset := fmt.Sprintf("zset%d", w)
					// Scores that sort against the members' order, so the
					// score index and the member sub-keys must agree.
					pipe.ZAdd(ctx, zset, redis.Z{Score: float64(-i), Member: fmt.Sprint("m", i)})
					if _, err = pipe.Exec(ctx); err == nil {
						mu.Lock()
						pushed[list] = i
						zlast[zset] = i
						members[set] = append(members[set], strconv.Itoa(i), fmt.Sprint("m", i))
						mu.Unlock()
						mu.Lock()
						if fields[h] == nil {
							fields[h] = map[string]string{}
						}
						for f, v := range kv {
							fields[h][f] = v
						}
						fields[h]["last"] = strconv.Itoa(i)
						mu.Unlock()
					}
				case 5: // a hash field's read-modify-write, shared by writers
					var n int64
					if n, err = c.HIncrBy(ctx, "hcounter", "n", 1).Result(); err == nil {
						mu.Lock()
						maxHIncr = max(maxHIncr, n)
						mu.Unlock()
					}
				}
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					return
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.wait(t, 10*time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	if nAcked < 100 {
		t.Fatalf("only %d writes acknowledged before the kill; the test proves nothing", nAcked)
	}
	t.Logf("%d keys and INCR up to %d acknowledged before kill -9 (%d writers cut off)", nAcked, maxIncr, failures)

	start(t, addr, "--workdir", dir, "--sync", "always")
	c2 := redis.NewClient(&redis.Options{Addr: addr})
	defer c2.Close()
	keys := make([]string, 0, len(acked))
	for k := range acked {
		keys = append(keys, k)
	}
	for i := 0; i < len(keys); i += 500 {
		batch := keys[i:min(i+500, len(keys))]
		vals, err := c2.MGet(ctx, batch...).Result()
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range batch {
			if vals[j] != acked[k] {
				t.Fatalf("acknowledged write %q=%q lost after kill -9 (got %v)", k, acked[k], vals[j])
			}
		}
	}
	n, err := c2.Get(ctx, "counter").Int64()
	if err != nil && maxIncr > 0 {
		t.Fatalf("counter lost: %v", err)
	}
	if n < maxIncr {
		t.Fatalf("counter went back from acknowledged %d to %d", maxIncr, n)
	}
	// Acknowledged hash fields are there, and each hash's count (its
	// metadata) agrees with the fields stored (its sub-keys).
	nFields := 0
	for h, want := range fields {
		got, err := c2.HGetAll(ctx, h).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range want {
			if f == "last" {
				// A pipeline cut off by the kill may have been applied
				// without its reply: "last" may be newer, never older.
				a, _ := strconv.Atoi(v)
				b, err := strconv.Atoi(got[f])
				if err != nil || b < a {
					t.Fatalf("HSET %s last went back from acknowledged %s to %q after kill -9", h, v, got[f])
				}
				continue
			}
			if got[f] != v {
				t.Fatalf("acknowledged HSET %s %s %s lost after kill -9 (got %q)", h, f, v, got[f])
			}
		}
		if hlen, err := c2.HLen(ctx, h).Result(); err != nil || hlen != int64(len(got)) {
			t.Fatalf("HLEN %s = %d (%v) but HGETALL has %d fields", h, hlen, err, len(got))
		}
		nFields += len(want)
	}
	for set, want := range members {
		got, err := c2.SMembers(ctx, set).Result()
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, m := range got {
			have[m] = true
		}
		for _, m := range want {
			if !have[m] {
				t.Fatalf("acknowledged SADD %s %s lost after kill -9", set, m)
			}
		}
		if n, err := c2.SCard(ctx, set).Result(); err != nil || n != int64(len(got)) {
			t.Fatalf("SCARD %s = %d (%v) but SMEMBERS has %d members", set, n, err, len(got))
		}
	}
	// Each writer's list holds 0, 1, 2, ... in order up to at least its
	// last acknowledged RPUSH (one more, unacknowledged, may have landed),
	// and LLEN (the metadata's head and tail) agrees with the elements.
	nPushed := 0
	for list, last := range pushed {
		nPushed += last + 1
		got, err := c2.LRange(ctx, list, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < last+1 || len(got) > last+2 {
			t.Fatalf("list %s holds %d elements after kill -9, the last acknowledged RPUSH was element %d", list, len(got), last)
		}
		for i, e := range got {
			if e != strconv.Itoa(i) {
				t.Fatalf("list %s element %d is %q after kill -9", list, i, e)
			}
		}
		if n, err := c2.LLen(ctx, list).Result(); err != nil || n != int64(len(got)) {
			t.Fatalf("LLEN %s = %d (%v) but LRANGE has %d elements", list, n, err, len(got))
		}
	}
	if nPushed < 50 {
		t.Fatalf("only %d list pushes acknowledged before the kill; the test proves little", nPushed)
	}
	t.Logf("%d list pushes acknowledged before kill -9, all found in order", nPushed)
	// Each writer's sorted set holds m0..m<last> (one more may have
	// landed) with scores 0, -1, ..., in score order, and ZCARD (the
	// metadata) agrees with the score index and every ZSCORE.
	nZAdded := 0
	for zset, last := range zlast {
		nZAdded += last + 1
		got, err := c2.ZRangeWithScores(ctx, zset, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) < last+1 || len(got) > last+2 {
			t.Fatalf("zset %s holds %d members after kill -9, the last acknowledged ZADD was member %d", zset, len(got), last)
		}
		for j, z := range got {
			i := len(got) - 1 - j
			if z.Member != fmt.Sprint("m", i) || z.Score != float64(-i) {
				t.Fatalf("zset %s rank %d is %v after kill -9, want m%d with score %d", zset, j, z, i, -i)
			}
			if s, err := c2.ZScore(ctx, zset, z.Member.(string)).Result(); err != nil || s != z.Score {
				t.Fatalf("ZSCORE %s %v = %v (%v), the index says %v", zset, z.Member, s, err, z.Score)
			}
		}
		if n, err := c2.ZCard(ctx, zset).Result(); err != nil || n != int64(len(got)) {
			t.Fatalf("ZCARD %s = %d (%v) but ZRANGE has %d members", zset, n, err, len(got))
		}
	}
	if nZAdded < 50 {
		t.Fatalf("only %d ZADDs acknowledged before the kill; the test proves little", nZAdded)
	}
	t.Logf("%d ZADDs acknowledged before kill -9, all found in score order", nZAdded)
	hn, err := c2.HGet(ctx, "hcounter", "n").Int64()
	if (err != nil && maxHIncr > 0) || hn < maxHIncr {
		t.Fatalf("hash counter went back from acknowledged %d to %d (%v)", maxHIncr, hn, err)
	}
	if nFields < 50 || maxHIncr < 10 {
		t.Fatalf("only %d hash fields and %d HINCRBYs acknowledged before the kill; the test proves little", nFields, maxHIncr)
	}
	t.Logf("%d hash fields and HINCRBY up to %d acknowledged before kill -9", nFields, maxHIncr)
	// The store is usable and the key counter (DBSIZE) agrees with the data.
	size, err := c2.DBSize(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	all, err := c2.Keys(ctx, "*").Result()
	if err != nil || int64(len(all)) != size {
		t.Fatalf("DBSIZE %d but KEYS returns %d (%v)", size, len(all), err)
	}
}

func TestSIGTERMShutsDownCleanlyAndKeepsData(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			p := start(t, addr, "--workdir", dir, "--sync", "no")
			c := redis.NewClient(&redis.Options{Addr: addr})
			defer c.Close()
			ctx := context.Background()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
			// An idle client connection must not hold up shutdown.
			idle, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(t, 15*time.Second); err != nil {
				t.Fatalf("exit after %v: %v\n%s", sig, err, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), "stopped cleanly") {
				t.Fatalf("no clean-stop log line:\n%s", p.stderr)
			}
			// Even with --sync no, a clean shutdown loses nothing.
			start(t, addr, "--workdir", dir)
			if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
				t.Fatalf("after restart GET k = %q, %v", v, err)
			}
		})
	}
}

// SHUTDOWN (what `redis-cli shutdown` sends) stops the process as SIGTERM
// does: no reply, the connection closes, exit status 0, nothing lost. Its
// refusals first: ABORT with nothing in progress, a bad option, and inside
// MULTI, where it fails the transaction as in Redis (no_multi).
func TestShutdownCommandStopsCleanlyAndKeepsData(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	p := start(t, addr, "--workdir", dir, "--sync", "no")
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []any
		want string
	}{
		{[]any{"shutdown", "abort"}, "ERR No shutdown in progress."},
		{[]any{"shutdown", "nosave", "save"}, "ERR syntax error"},
		{[]any{"shutdown", "abort", "now"}, "ERR syntax error"},
		{[]any{"shutdown", "later"}, "ERR syntax error"},
	} {
		if err := c.Do(ctx, tc.args...).Err(); err == nil || err.Error() != tc.want {
			t.Fatalf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
	_, err := c.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Do(ctx, "shutdown")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "EXECABORT") {
		t.Fatalf("SHUTDOWN in MULTI: got %v, want EXECABORT", err)
	}
	if err := c.Get(ctx, "k").Err(); err != nil {
		t.Fatalf("server gone after refused SHUTDOWNs: %v", err)
	}
	// Redis sends no reply: the client sees the connection close.
	if err := c.Do(ctx, "shutdown", "nosave", "now").Err(); err == nil {
		t.Fatal("SHUTDOWN replied; Redis closes the connection instead")
	}
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after SHUTDOWN: %v\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "stopped cleanly") {
		t.Fatalf("no clean-stop log line:\n%s", p.stderr)
	}
	start(t, addr, "--workdir", dir)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart GET k = %q, %v", v, err)
	}
}

func TestSecondProcessOnSameWorkdirGetsClearError(t *testing.T) {
	dir := t.TempDir()
	start(t, freeAddr(t), "--workdir", dir)
	p := startNoWait(t, "--addr", freeAddr(t), "--workdir", dir)
	err := p.wait(t, 15*time.Second)
	if err == nil {
		t.Fatal("second process on the same workdir did not fail")
	}
	if !strings.Contains(p.stderr.String(), "locked by another process") {
		t.Fatalf("unclear error:\n%s", p.stderr)
	}
}

// An upgrade with the real binaries: a workdir written by the release
// before databases (the embedded backend's fixture) is migrated by
// `nokv-redis migrate-format`, then served with every key in database 0;
// --databases bounds SELECT.
func TestMigrateFormatThenServe(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("..", "..", "internal", "backend", "embedded", "testdata", "v1-workdir")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(binary, "migrate-format", "--workdir", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "keys=307") {
		t.Fatalf("migrate-format: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	start(t, addr, "--workdir", dir, "--databases", "4")
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	if v, err := c.Get(ctx, "plain").Result(); err != nil || v != "hello" {
		t.Fatalf("GET plain = %q, %v", v, err)
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 307 {
		t.Fatalf("DBSIZE = %d, %v", n, err)
	}
	conn := c.Conn()
	defer conn.Close()
	if err := conn.Select(ctx, 3).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE in db 3 = %d, %v", n, err)
	}
	if err := conn.Select(ctx, 4).Err(); err == nil || err.Error() != "ERR DB index is out of range" {
		t.Fatalf("SELECT 4 with --databases 4: %v", err)
	}
}

func TestBadSettingsAreNamed(t *testing.T) {
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--sync", "sometimes"}, nil, "sync:"},
		{[]string{"--addr", "nonsense"}, nil, "addr:"},
		{nil, []string{"NOKV_GATEWAY_MAXCLIENTS=many"}, "NOKV_GATEWAY_MAXCLIENTS"},
		{[]string{"--config", "/nonexistent/cluster.json"}, nil, "/nonexistent/cluster.json"},
		{[]string{"--backend", "raft", "--pd-addr", "127.0.0.1:1"}, nil, "connect to the cluster through PD at 127.0.0.1:1"},
		{[]string{"--proto-max-bulk-len", "2gb"}, nil, "proto-max-bulk-len: 2147483648: must be between 1024 and 1073741824"},
		{[]string{"--proto-max-bulk-len", "800mb"}, nil, "must be at most half of client-query-buffer-limit"},
		{nil, []string{"NOKV_GATEWAY_CLIENT_QUERY_BUFFER_LIMIT=1kb"}, "client-query-buffer-limit: 1024: must be at least 1048576"},
		{[]string{"--client-output-buffer-limit", "normal 100mb 0 0"}, nil, "client-output-buffer-limit: hard limit 104857600"},
		{[]string{"--client-output-buffer-limit", "lots"}, nil, "client-output-buffer-limit"},
		{[]string{"--databases", "0"}, nil, "databases: 0: must be between 1 and 2147483647"},
		{nil, []string{"NOKV_GATEWAY_DATABASES=2147483648"}, "NOKV_GATEWAY_DATABASES"},
	}
	for _, tc := range cases {
		p := &proc{stderr: &syncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(binary, append(tc.args, "--workdir", t.TempDir())...)
		p.cmd.Env = append(os.Environ(), tc.env...)
		p.cmd.Stderr = p.stderr
		err := p.cmd.Run()
		if err == nil {
			t.Fatalf("%v %v: exited 0", tc.args, tc.env)
		}
		if !strings.Contains(p.stderr.String(), tc.want) {
			t.Fatalf("%v %v: error does not mention %q:\n%s", tc.args, tc.env, tc.want, p.stderr)
		}
	}
	out, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "NOKV_GATEWAY_SYNC") ||
		!strings.Contains(string(out), "NOKV_GATEWAY_CLIENT_QUERY_BUFFER_LIMIT") || !strings.Contains(string(out), "NOKV_GATEWAY_CLIENT_OUTPUT_BUFFER_LIMIT") {
		t.Fatalf("--help: %v\n%s", err, out)
	}
}

// TestPrecedenceFlagOverEnv checks, on the real binary, that env overrides the
// default and a flag overrides env (the cluster-file layer is covered by
// gatewayserver's Resolve tests).
func TestPrecedenceFlagOverEnv(t *testing.T) {
	dir := t.TempDir()
	addrEnv, addrFlag := freeAddr(t), freeAddr(t)
	cmdEnv := []string{"NOKV_GATEWAY_ADDR=" + addrEnv, "NOKV_GATEWAY_WORKDIR=" + dir}

	run := func(args ...string) *proc {
		q := &proc{stderr: &syncBuffer{}, done: make(chan struct{})}
		q.cmd = exec.Command(binary, args...)
		q.cmd.Env = append(os.Environ(), cmdEnv...)
		q.cmd.Stderr = q.stderr
		if err := q.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { q.err = q.cmd.Wait(); close(q.done) }()
		t.Cleanup(func() { _ = q.cmd.Process.Kill(); <-q.done })
		return q
	}
	waitListen := func(addr string, q *proc) {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not listening on %s:\n%s", addr, q.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	q := run()
	waitListen(addrEnv, q)
	_ = q.cmd.Process.Signal(syscall.SIGTERM)
	<-q.done
	q = run("--addr", addrFlag)
	waitListen(addrFlag, q)
}
