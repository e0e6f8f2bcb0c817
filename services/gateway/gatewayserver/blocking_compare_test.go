package gatewayserver_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// Byte-for-byte comparison of the blocking list and sorted-set commands with redis-server
// (conformance.CompareBlocking), on the event loop and redcon's server.

func TestBlockingListsMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	onBothServers(t, nil, func(t *testing.T, addr string) {
		conformance.CompareBlocking(t, conformance.Target{Addr: addr}, redisAddr)
	})
}

// CLIENT UNBLOCK of a blocked client: TIMEOUT gives it the timeout's reply,
// ERROR the UNBLOCKED error; its pipeline then runs on. The ids differ
// between the servers, so each server's exchange is recorded and compared.
func TestClientUnblockMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	exchange := func(addr string) []string {
		c, ctl := conformance.DialRaw(t, addr), conformance.DialRaw(t, addr)
		id := strings.TrimSuffix(strings.TrimPrefix(c.Do("CLIENT", "ID"), ":"), "\r\n")
		var out []string
		for _, reason := range []string{"", "TIMEOUT", "ERROR", "error"} {
			var p []byte
			p = append(p, conformance.Encode("BLPOP", "nothing", "0")...)
			p = append(p, conformance.Encode("ECHO", "after")...)
			c.Send(p)
			waitBlocked(t, ctl, 1)
			args := []string{"CLIENT", "UNBLOCK", id}
			if reason != "" {
				args = append(args, reason)
			}
			out = append(out, ctl.Do(args...), c.Read(), c.Read(), ctl.Do(args...))
		}
		c.Send(conformance.Encode("BLMOVE", "nothing", "x", "LEFT", "LEFT", "0"))
		waitBlocked(t, ctl, 1)
		out = append(out, ctl.Do("CLIENT", "UNBLOCK", id), c.Read())
		return out
	}
	theirs := exchange(redisAddr)
	onBothServers(t, nil, func(t *testing.T, addr string) {
		ours := exchange(addr)
		if strings.Join(ours, "|") != strings.Join(theirs, "|") {
			t.Fatalf("CLIENT UNBLOCK exchange:\n nokv:  %q\n redis: %q", ours, theirs)
		}
	})
}

// waitBlocked waits until the server behind ctl counts n blocked clients:
// a CLIENT UNBLOCK sent before the command blocked would find nothing to
// unblock (a fixed sleep did not always suffice on a loaded machine).
func waitBlocked(t *testing.T, ctl *conformance.RawConn, n int) {
	t.Helper()
	want := fmt.Sprintf("blocked_clients:%d\r\n", n)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(ctl.Do("INFO", "clients"), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %d blocked clients after 10 s", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The blocking commands with go-redis, on the event loop and on redcon's
// server (conformance.Blocking).
func TestBlockingLists(t *testing.T) {
	onBothServers(t, nil, func(t *testing.T, addr string) {
		conformance.Blocking(t, conformance.Target{Addr: addr})
	})
}

// Closing the server with blocked clients ends them at once: their
// connections close, and Close returns promptly (TestMain checks that no
// goroutine stays).
func TestCloseWithBlockedClients(t *testing.T) {
	for _, redcon := range []bool{false, true} {
		t.Run(map[bool]string{false: "loop", true: "redcon"}[redcon], func(t *testing.T) {
			if redcon {
				t.Cleanup(gatewayserver.ServeWithRedcon())
			}
			srv := startServer(t, nil)
			var conns []*conformance.RawConn
			for i := range 20 {
				r := conformance.DialRaw(t, srv.Addr())
				r.Send(conformance.Encode("BLPOP", fmt.Sprint("k", i%3), "0"))
				conns = append(conns, r)
			}
			ctl := conformance.DialRaw(t, srv.Addr())
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(ctl.Do("INFO", "clients"), "blocked_clients:20\r\n") {
				if time.Now().After(deadline) {
					t.Fatal("the clients did not block")
				}
				time.Sleep(time.Millisecond)
			}
			start := time.Now()
			if err := srv.Close(); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("Close took %v with blocked clients", took)
			}
			for _, r := range conns {
				if got, err := r.ReadErr(); err == nil {
					t.Fatalf("a blocked client read %q after Close", got)
				}
			}
		})
	}
}
