package gatewayserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// bothServers runs f against the event loop and against redcon's server,
// each serving the embedded backend.
func bothServers(t *testing.T, f func(t *testing.T)) {
	t.Run("event loop", f)
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		f(t)
	})
}

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startLogged is startServer with the server's log kept, and metrics on.
func startLogged(t *testing.T, mutate func(*gatewayserver.Config)) (*gatewayserver.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.WorkDir = t.TempDir()
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := gatewayserver.New(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	srv.Start()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	return srv, logs
}

// stat reads one counter of NoKV.Stats.redis from /debug/vars.
func stat(t *testing.T, srv *gatewayserver.Server, name string) int64 {
	t.Helper()
	var vars struct {
		NoKV struct {
			Redis map[string]any `json:"redis"`
		} `json:"NoKV.Stats"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+srv.MetricsAddr()+"/debug/vars")), &vars); err != nil {
		t.Fatal(err)
	}
	v, _ := vars.NoKV.Redis[name].(float64)
	return int64(v)
}

// dialSmallWindow connects with a small receive buffer, so that a client
// that does not read stops the server's writes early (loopback would
// otherwise take tens of megabytes).
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rss is the process's resident set size, from /proc/self/status (0 where
// there is none).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// readUntilClosed reads what the server sends until it closes the
// connection (or 10s pass, a failure).
func readUntilClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server did not close the connection (got %d bytes)", len(got))
	}
	return got
}

// A client whose unrun input passes client-query-buffer-limit is closed
// without a reply, as Redis closes it, and logged as Redis logs it; other
// clients carry on.
func TestClientQueryBufferLimit(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		const limit = 1 << 20
		srv, logs := startLogged(t, func(c *gatewayserver.Config) {
			c.ClientQueryBufferLimit = limit
			c.MaxBulkLen = 256 << 10
		})
		other := conformance.DialRaw(t, srv.Addr())
		if got := other.Do("SET", "k", "v"); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		// One request of four arguments of 256 KiB each: every argument is
		// within proto-max-bulk-len, the whole request is over the limit.
		val := strings.Repeat("v", 256<<10)
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		pong := make([]byte, 7)
		if _, err := io.ReadFull(c, pong); err != nil || string(pong) != "+PONG\r\n" {
			t.Fatalf("PING: %q, %v", pong, err)
		}
		req := "*9\r\n$4\r\nMSET\r\n"
		for i := range 4 {
			req += fmt.Sprintf("$2\r\nk%d\r\n$%d\r\n%s\r\n", i, len(val), val)
		}
		go func() { _, _ = c.Write([]byte(req)) }() // the server stops reading it midway
		if got := readUntilClosed(t, c); len(got) != 0 {
			t.Fatalf("a client closed for its query buffer got %q", got)
		}
		waitFor(t, "the log line", func() bool {
			return strings.Contains(logs.String(), "closing client that reached max query buffer length") &&
				strings.Contains(logs.String(), `qbuf_initial_bytes="\"*9\\r\\n$4\\r\\nMSET`)
		})
		if n := stat(t, srv, "clients_closed_query_buffer"); n != 1 {
			t.Fatalf("clients_closed_query_buffer = %d", n)
		}
		if got := other.Do("MGET", "k", "k0"); got != "*2\r\n$1\r\nv\r\n$-1\r\n" {
			t.Fatalf("another client after the close: %q (nothing of the closed request may have run)", got)
		}
		// A request within the limit passes.
		if got := conformance.DialRaw(t, srv.Addr()).Do("MSET", "k0", val, "k1", val, "k2", val); got != "+OK\r\n" {
			t.Fatalf("MSET within the limit: %q", got)
		}
	})
}

// A client announcing a 512 MiB bulk and sending it slowly costs the server
// what it sent, not what it announced; other clients carry on meanwhile.
func TestAnnouncedBulkIsNotAllocated(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv := startServer(t, nil)
		other := conformance.DialRaw(t, srv.Addr())
		heap0, rss0 := heapInUse(), rss()
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$536870912\r\n")); err != nil {
			t.Fatal(err)
		}
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 32 { // 2 MiB, slowly
			if _, err := c.Write(chunk); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
			if got := other.Do("PING"); got != "+PONG\r\n" {
				t.Fatalf("PING beside the slow bulk: %q", got)
			}
		}
		time.Sleep(50 * time.Millisecond)
		heap1, rss1 := heapInUse(), rss()
		if grown := int64(heap1) - int64(heap0); grown > 64<<20 {
			t.Fatalf("heap grew by %d MiB for 2 MiB of an announced 512 MiB bulk", grown>>20)
		}
		if rss0 > 0 && rss1 > rss0+128<<20 {
			t.Fatalf("RSS grew by %d MiB for 2 MiB of an announced 512 MiB bulk", (rss1-rss0)>>20)
		}
		t.Logf("heap %d -> %d MiB, RSS %d -> %d MiB", heap0>>20, heap1>>20, rss0>>20, rss1>>20)
	})
}

// A client that stops reading is closed once its pending replies stay over
// the soft output limit longer than its seconds, as in Redis; others carry on.
func TestSlowReaderSoftOutputLimit(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		const size = 16 << 20
		srv, logs := startLogged(t, func(c *gatewayserver.Config) {
			c.MaxBulkLen = size
			c.ClientOutputBufferLimit = gatewayserver.OutputBufferLimit{Hard: 64 << 20, Soft: 1 << 20, SoftSeconds: 1}
		})
		other := conformance.DialRaw(t, srv.Addr())
		if got := other.Do("SET", "big", strings.Repeat("b", size)); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		slow := dialSmallWindow(t, srv.Addr())
		start := time.Now()
		if _, err := slow.Write([]byte("GET big\r\n")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the slow reader to be closed", func() bool {
			return strings.Contains(logs.String(), "client scheduled to be closed ASAP for overcoming of output buffer limits")
		})
		if d := time.Since(start); d < time.Second {
			t.Fatalf("closed after %v, before the soft limit's second", d)
		}
		if !strings.Contains(logs.String(), "limit=soft") {
			t.Fatalf("log does not say which limit: %s", logs.String())
		}
		if got := readUntilClosed(t, slow); len(got) >= size {
			t.Fatalf("the closed client got its whole reply (%d bytes)", len(got))
		}
		if n := stat(t, srv, "clients_closed_output_buffer"); n != 1 {
			t.Fatalf("clients_closed_output_buffer = %d", n)
		}
		if got := other.Do("STRLEN", "big"); got != ":16777216\r\n" {
			t.Fatalf("another client: %q", got)
		}
		// A client that reads, slowly but steadily, gets everything.
		reader := conformance.DialRaw(t, srv.Addr())
		if got := reader.Do("GET", "big"); len(got) != size+len("$16777216\r\n\r\n") {
			t.Fatalf("a reading client got %d bytes", len(got))
		}
	})
}

// One reply that would take the client's pending output to the hard limit
// closes the client at once, without a reply, and without the server
// building the whole reply.
func TestHardOutputLimit(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, logs := startLogged(t, func(c *gatewayserver.Config) {
			c.MaxBulkLen = 64 << 10
			c.ClientOutputBufferLimit = gatewayserver.OutputBufferLimit{Hard: 2 << 20}
		})
		r := conformance.DialRaw(t, srv.Addr())
		val := strings.Repeat("v", 64<<10)
		args := []string{"MGET"}
		for i := range 40 {
			k := "k" + strconv.Itoa(i)
			if got := r.Do("SET", k, val); got != "+OK\r\n" {
				t.Fatalf("SET: %q", got)
			}
			args = append(args, k)
		}
		if got := r.Do(args[:20]...); len(got) < 19<<16 {
			t.Fatalf("MGET of 19 (1.2 MB): %d bytes", len(got))
		}
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(append(conformance.Encode("PING"), conformance.Encode(args...)...)); err != nil {
			t.Fatal(err)
		}
		// The PING before may or may not have been answered first (Redis
		// drops pending replies of a client closed for its output too).
		if got := readUntilClosed(t, c); len(got) > len("+PONG\r\n") {
			t.Fatalf("got %d bytes of a reply over the hard limit", len(got))
		}
		waitFor(t, "the log line", func() bool {
			return strings.Contains(logs.String(), "client scheduled to be closed ASAP for overcoming of output buffer limits") &&
				strings.Contains(logs.String(), "limit=hard")
		})
		if got := r.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("another client: %q", got)
		}
	})
}

// Thousands of pipelined GETs of a large value in one read do not make the
// server build all their replies while the client is not reading: the rest
// waits for the first to go out. All arrive, in order, once it reads.
func TestPipelinedLargeRepliesAreBounded(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		const size, gets = 1 << 20, 200
		srv := startServer(t, nil)
		val := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		if got := conformance.DialRaw(t, srv.Addr()).Do("SET", "big", string(val)); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		heap0 := heapInUse()
		c := dialSmallWindow(t, srv.Addr())
		if _, err := c.Write(bytes.Repeat([]byte("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"), gets)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // the server runs what it may
		heap1 := heapInUse()
		if grown := int64(heap1) - int64(heap0); grown > 32<<20 {
			t.Fatalf("heap grew by %d MiB while a client did not read %d pipelined 1 MiB replies", grown>>20, gets)
		}
		t.Logf("heap %d -> %d MiB", heap0>>20, heap1>>20)
		rd := bufio.NewReaderSize(c, 1<<20)
		header := "$" + strconv.Itoa(size) + "\r\n"
		got := make([]byte, len(header)+size+2)
		_ = c.SetReadDeadline(time.Now().Add(time.Minute))
		for i := range gets {
			if _, err := io.ReadFull(rd, got); err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			if string(got[:len(header)]) != header || !bytes.Equal(got[len(header):len(header)+size], val) {
				t.Fatalf("reply %d is wrong", i)
			}
		}
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if line, err := rd.ReadString('\n'); line != "+PONG\r\n" {
			t.Fatalf("PING after: %q, %v", line, err)
		}
	})
}

// A panic while reading a client's requests or writing its replies, outside
// any command, closes that client only: the stack is logged, the panics
// metric counts it, and other clients, under load meanwhile, carry on.
func TestPanicOutsideCommandsIsContained(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, logs := startLogged(t, func(c *gatewayserver.Config) {
			c.TestingKnobs.PanicIn = func(stage string, data []byte) bool {
				return stage == "read" && bytes.Contains(data, []byte("panic-on-read")) ||
					stage == "write" && bytes.Contains(data, []byte("panic-on-write"))
			}
		})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		loadErr := make(chan error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := conformance.DialRaw(t, srv.Addr())
				for n := 1; ctx.Err() == nil; n++ {
					r.Send(conformance.Encode("INCR", "load"+strconv.Itoa(i)))
					got, err := r.ReadErr()
					if err != nil || got != ":"+strconv.Itoa(n)+"\r\n" {
						loadErr <- fmt.Errorf("loader %d: %q, %v", i, got, err)
						return
					}
				}
			}()
		}
		for i, req := range []string{"ECHO panic-on-read\r\n", "ECHO panic-on-write\r\n", "PING\r\nECHO panic-on-write\r\n"} {
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			if got := readUntilClosed(t, c); strings.Contains(string(got), "panic-on") {
				t.Fatalf("%q: got %q", req, got)
			}
			c.Close()
			waitFor(t, "the panic to be counted", func() bool { return stat(t, srv, "panics") == int64(i+1) })
		}
		cancel()
		wg.Wait()
		select {
		case err := <-loadErr:
			t.Fatal(err)
		default:
		}
		if n := strings.Count(logs.String(), "panic while serving a client"); n != 3 {
			t.Fatalf("%d log lines for 3 panics", n)
		}
		if !strings.Contains(logs.String(), "goroutine ") {
			t.Fatal("the stack is not logged")
		}
		if got := conformance.DialRaw(t, srv.Addr()).Do("ECHO", "fine"); got != "$4\r\nfine\r\n" {
			t.Fatalf("after the panics: %q", got)
		}
	})
}
