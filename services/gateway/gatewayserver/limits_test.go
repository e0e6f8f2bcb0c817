package gatewayserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

func TestMaxClients(t *testing.T) {
	srv := startServer(t, func(c *gatewayserver.Config) { c.MaxClients = 2 })
	a := conformance.DialRaw(t, srv.Addr())
	b := conformance.DialRaw(t, srv.Addr())
	if got := a.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("first client: %q", got)
	}
	if got := b.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("second client: %q", got)
	}
	c := conformance.DialRaw(t, srv.Addr())
	got, _ := c.ReadErr()
	if got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("third client got %q", got)
	}
	if _, err := c.ReadErr(); !errors.Is(err, io.EOF) {
		t.Fatalf("third client not closed: %v", err)
	}
	// The first two are unharmed, and a slot frees up when one leaves.
	if got := a.Do("QUIT"); got != "+OK\r\n" {
		t.Fatalf("QUIT: %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		d := conformance.DialRaw(t, srv.Addr())
		d.Send(conformance.Encode("PING"))
		if got, _ := d.ReadErr(); got == "+PONG\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no slot freed after a client quit")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.Do("PING"); got != "+PONG\r\n" {
		t.Fatalf("second client after churn: %q", got)
	}
}

func TestProtoMaxBulkLen(t *testing.T) {
	const limit = 64 << 10
	srv := startServer(t, func(c *gatewayserver.Config) { c.MaxBulkLen = limit })
	good := conformance.DialRaw(t, srv.Addr())
	if got := good.Do("SET", "k", strings.Repeat("x", limit)); got != "+OK\r\n" {
		t.Fatalf("SET at the limit: %q", got)
	}
	// One byte over the limit is refused as soon as the header arrives.
	bad := conformance.DialRaw(t, srv.Addr())
	bad.Send([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$65537\r\n"))
	got, _ := bad.ReadErr()
	if got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("oversized bulk: %q", got)
	}
	// Growing a string past the limit is an error, and the value is unchanged.
	if got := good.Do("APPEND", "k", "y"); got != "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n" {
		t.Fatalf("APPEND past the limit: %q", got)
	}
	if got := good.Do("SETRANGE", "k", "65536", "y"); got != "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n" {
		t.Fatalf("SETRANGE past the limit: %q", got)
	}
	if got := good.Do("STRLEN", "k"); got != ":65536\r\n" {
		t.Fatalf("STRLEN: %q", got)
	}
}

func TestGarbageOnTheSocket(t *testing.T) {
	srv := startServer(t, nil)
	good := conformance.DialRaw(t, srv.Addr())
	good.Do("SET", "k", "v")
	inline := conformance.DialRaw(t, srv.Addr())
	inline.Send([]byte(strings.Repeat("A", 70<<10)))
	if got, _ := inline.ReadErr(); got != "-ERR Protocol error: too big inline request\r\n" {
		t.Fatalf("endless inline line: %q", got)
	}
	binary := conformance.DialRaw(t, srv.Addr())
	// (No NUL before the CR: Redis, and so nokv, would wait for a line end
	// beyond it, as the NUL cases of TestWireMatchesRedisServer show.)
	binary.Send([]byte("*2\r\n\xff\xfe garbage\r\n"))
	if got, _ := binary.ReadErr(); !strings.HasPrefix(got, "-ERR Protocol error: ") {
		t.Fatalf("binary garbage: %q", got)
	}
	if got := good.Do("GET", "k"); got != "$1\r\nv\r\n" {
		t.Fatalf("well-behaved client after garbage: %q", got)
	}
}

func TestRequirePass(t *testing.T) {
	srv := startServer(t, func(c *gatewayserver.Config) { c.RequirePass = "s3cret" })
	r := conformance.DialRaw(t, srv.Addr())
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"GET", "k"}, "-NOAUTH Authentication required.\r\n"},
		{[]string{"NOSUCH"}, "-ERR unknown command 'NOSUCH', with args beginning with: \r\n"},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"HELLO", "3"}, "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"},
		{[]string{"AUTH", "wrong"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"AUTH", "bob", "s3cret"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"AUTH", "s3cret"}, "+OK\r\n"},
		{[]string{"SET", "k", "v"}, "+OK\r\n"},
	} {
		if got := r.Do(tc.args...); got != tc.want {
			t.Fatalf("%v: got %q, want %q", tc.args, got, tc.want)
		}
	}
	// go-redis authenticates through HELLO 3 AUTH; the whole suite must pass so.
	conformance.Run(t, conformance.Target{Addr: srv.Addr(), RequirePass: "s3cret"})
}

func TestMetricsEndpoints(t *testing.T) {
	srv := startServer(t, func(c *gatewayserver.Config) { c.MetricsAddr = "127.0.0.1:0" })
	c := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		c.Set(ctx, "k", i, 0)
	}
	c.Get(ctx, "k")
	c.Do(ctx, "NOSUCH")
	c.Do(ctx, "INCR", "k", "extra")

	body := httpGet(t, "http://"+srv.MetricsAddr()+"/debug/vars")
	var vars struct {
		NoKV struct {
			Redis struct {
				CommandsTotal        int64            `json:"commands_total"`
				ErrorsTotal          int64            `json:"errors_total"`
				ConnectionsActive    int64            `json:"connections_active"`
				ConnectionsAccepted  int64            `json:"connections_accepted"`
				CommandsPerOperation map[string]int64 `json:"commands_per_operation"`
			} `json:"redis"`
		} `json:"NoKV.Stats"`
	}
	if err := json.Unmarshal([]byte(body), &vars); err != nil {
		t.Fatalf("decode /debug/vars: %v\n%s", err, body)
	}
	st := vars.NoKV.Redis
	if st.CommandsPerOperation["SET"] != 5 || st.CommandsPerOperation["GET"] != 1 {
		t.Fatalf("commands_per_operation = %v", st.CommandsPerOperation)
	}
	if st.CommandsTotal < 7 || st.ErrorsTotal < 1 || st.ConnectionsActive < 1 || st.ConnectionsAccepted < 1 {
		t.Fatalf("NoKV.Stats.redis = %+v", st)
	}
	prom := httpGet(t, "http://"+srv.MetricsAddr()+"/metrics")
	for _, want := range []string{
		`nokv_redis_commands_total{cmd="set"} 5`,
		`nokv_redis_command_duration_seconds_bucket{cmd="get",le=`,
		`nokv_redis_command_errors_total{cmd="incr"} 1`,
		`nokv_redis_connections_active`,
	} {
		if !strings.Contains(prom, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if got := httpGet(t, "http://"+srv.MetricsAddr()+"/healthz"); got != "ok\n" {
		t.Fatalf("/healthz = %q", got)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

func TestSecondServerOnSameWorkdirFails(t *testing.T) {
	dir := t.TempDir()
	startServer(t, func(c *gatewayserver.Config) { c.WorkDir = dir })
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.WorkDir = dir
	srv, err := gatewayserver.New(cfg, nil)
	if err == nil {
		srv.Close()
		t.Fatal("a second server opened a workdir in use")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("unclear error for a locked workdir: %v", err)
	}
}

func TestInvalidConfigNamesTheSetting(t *testing.T) {
	cfg := gatewayserver.DefaultConfig()
	cfg.Sync = "sometimes"
	cfg.MaxClients = 0
	_, err := gatewayserver.New(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "sync:") || !strings.Contains(err.Error(), "maxclients:") {
		t.Fatalf("error should name sync and maxclients: %v", err)
	}
}

// TestCloseRightAfterStart guards against a shutdown race: Close before the serve
// goroutine has run must not hang.
func TestCloseRightAfterStart(t *testing.T) {
	for i := 0; i < 50; i++ {
		cfg := gatewayserver.DefaultConfig()
		cfg.Addr = "127.0.0.1:0"
		cfg.WorkDir = t.TempDir()
		srv, err := gatewayserver.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		done := make(chan error, 1)
		go func() { done <- srv.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close right after Start hung")
		}
	}
}
