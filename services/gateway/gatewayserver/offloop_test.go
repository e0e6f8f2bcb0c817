package gatewayserver_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// fillKeys stores n keys named prefix0..prefix<n-1> with pipelined MSETs.
func fillKeys(t *testing.T, addr, prefix string, n int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: time.Minute})
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < n; {
		p := c.Pipeline()
		for range 20 {
			args := []any{"MSET"}
			for j := 0; j < 500 && i < n; j++ {
				args = append(args, fmt.Sprintf("%s%d", prefix, i), "v")
				i++
			}
			if len(args) > 1 {
				p.Do(ctx, args...)
			}
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// KEYS over a large keyspace runs off the event loop: other clients keep
// being served while it runs, and its client's pipeline stays in order.
func TestKeysDoesNotStallOtherClients(t *testing.T) {
	srv := startServer(t, nil)
	const n = 200_000
	fillKeys(t, srv.Addr(), "key:", n)

	// A pipeline around KEYS: the write before it is seen, the replies come
	// in order, the command after it runs after it.
	r := conformance.DialRaw(t, srv.Addr())
	var pipeline []byte
	pipeline = append(pipeline, conformance.Encode("SET", "before", "1")...)
	pipeline = append(pipeline, conformance.Encode("KEYS", "befor*")...)
	pipeline = append(pipeline, conformance.Encode("KEYS", "*")...)
	pipeline = append(pipeline, conformance.Encode("SET", "after", "1")...)
	pipeline = append(pipeline, conformance.Encode("KEYS", "after")...)

	// A second client keeps pinging while the big KEYS runs.
	var pings atomic.Int64
	stop := make(chan struct{})
	pinged := make(chan error, 1)
	go func() {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
		defer c.Close()
		for {
			select {
			case <-stop:
				pinged <- nil
				return
			default:
			}
			if err := c.Ping(context.Background()).Err(); err != nil {
				pinged <- err
				return
			}
			pings.Add(1)
		}
	}()
	// Let the pinger start.
	for deadline := time.Now().Add(10 * time.Second); pings.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	r.Send(pipeline)
	expectReply(t, "SET before", r.Read(), "+OK\r\n")
	expectReply(t, "KEYS befor*", r.Read(), "*1\r\n$6\r\nbefore\r\n")
	before := pings.Load()
	all := r.Read()
	during := pings.Load() - before
	close(stop)
	if err := <-pinged; err != nil {
		t.Fatalf("the other client failed during KEYS: %v", err)
	}
	if !strings.HasPrefix(all, fmt.Sprintf("*%d\r\n", n+1)) {
		t.Fatalf("KEYS * began %.40q, want %d keys", all, n+1)
	}
	expectReply(t, "SET after", r.Read(), "+OK\r\n")
	expectReply(t, "KEYS after", r.Read(), "*1\r\n$5\r\nafter\r\n")
	// On the loop, KEYS of 200k keys would have let at most one PING
	// through; off it, the pinger keeps going.
	t.Logf("%d PINGs answered while KEYS * of %d keys ran", during, n)
	if during < 10 {
		t.Fatalf("only %d PINGs were answered while KEYS ran: it stalled the event loop", during)
	}
}

func expectReply(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %.80q, want %q", what, got, want)
	}
}

// Closing the server while KEYS runs off the loop waits for it: nothing
// leaks (TestMain checks goroutines) and Close returns.
func TestCloseWhileKeysRuns(t *testing.T) {
	srv := startServer(t, nil)
	fillKeys(t, srv.Addr(), "key:", 50_000)
	r := conformance.DialRaw(t, srv.Addr())
	r.Send(conformance.Encode("KEYS", "*"))
	time.Sleep(5 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs while KEYS runs")
	}
}
