package gatewayserver_test

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// TestPipelinesAcrossReadBufferBoundaries sends many small pipelines on one
// connection, so that they straddle the boundaries of the server's read
// buffer as it fills and grows: every pipeline must be answered in full
// and at once, not only when more bytes arrive.
func TestPipelinesAcrossReadBufferBoundaries(t *testing.T) {
	srv := startServer(t, nil)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range []struct{ pipeline, want string }{
		{"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n", "+OK\r\n+OK\r\n"},
		{"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n", "+OK\r\n$1\r\n1\r\n+PONG\r\n"},
	} {
		roundTrips(t, conn, p.pipeline, p.want)
	}
}

func roundTrips(t *testing.T, conn net.Conn, pipeline, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	for round := range 2000 {
		if _, err := conn.Write([]byte(pipeline)); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(conn, buf); err != nil {
			t.Fatalf("round %d: %v (got %q)", round, err, buf)
		}
		if !bytes.Equal(buf, []byte(want)) {
			t.Fatalf("round %d: %q, want %q", round, buf, want)
		}
	}
}

// TestLargeReplyToASlowReader makes the server's socket buffer fill: the
// reply must arrive whole once the client reads.
func TestLargeReplyToASlowReader(t *testing.T) {
	srv := startServer(t, nil)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := strings.Repeat("x", 8<<20)
	set := "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + itoa(len(big)) + "\r\n" + big + "\r\n"
	if _, err := conn.Write([]byte(set)); err != nil {
		t.Fatal(err)
	}
	ok := make([]byte, 5)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, ok); err != nil || string(ok) != "+OK\r\n" {
		t.Fatalf("SET big: %q, %v", ok, err)
	}
	for range 3 {
		if _, err := conn.Write([]byte("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the server hit a full socket buffer
	header := "$" + itoa(len(big)) + "\r\n"
	reply := make([]byte, len(header)+len(big)+2)
	for i := range 3 {
		if _, err := io.ReadFull(conn, reply); err != nil {
			t.Fatalf("GET big #%d: %v", i, err)
		}
		if string(reply[:len(header)]) != header || string(reply[len(header):len(header)+len(big)]) != big {
			t.Fatalf("GET big #%d: wrong reply", i)
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestRepliesBeforeAProtocolErrorComeFirst: commands that precede a
// malformed request in the same stream are answered, in order, before the
// error that ends the connection (as redcon's server and Redis do).
func TestRepliesBeforeAProtocolErrorComeFirst(t *testing.T) {
	srv := startServer(t, nil)
	for _, tc := range []struct{ name, bad, want string }{
		{"parser", "*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"},
		{"guard", "*2\r\n$3\r\nGET\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Two writes, so the bad request arrives in a later read.
			if _, err := conn.Write([]byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nPING\r\n")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			if _, err := conn.Write([]byte(tc.bad)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got, _ := io.ReadAll(conn)
			if want := "+OK\r\n+PONG\r\n" + tc.want; string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		})
	}
}

// TestProtocolErrorInTheSameReadAsGoodCommands covers the same with one
// write holding both.
func TestProtocolErrorInTheSameReadAsGoodCommands(t *testing.T) {
	srv := startServer(t, nil)
	got, _ := sendUntilClosed(t, srv.Addr(), "PING\r\n*2\r\n$3\r\nGET\r\n$99999999999\r\n")
	if want := "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"; string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// Nothing pipelined after QUIT runs, and QUIT's reply (with those of the
// writes before it) leaves only once those writes are durable; both
// servers, as Redis.
func TestNothingRunsAfterQuit(t *testing.T) {
	for _, server := range []string{"event loop", "redcon"} {
		t.Run(server, func(t *testing.T) {
			if server == "redcon" {
				t.Cleanup(gatewayserver.ServeWithRedcon())
			}
			srv := startServer(t, nil)
			got, err := sendUntilClosed(t, srv.Addr(), "SET a 1\r\nQUIT\r\nSET b 2\r\nSET c 3\r\n")
			if err != nil || string(got) != "+OK\r\n+OK\r\n" {
				t.Fatalf("replies %q, %v; want two +OK and the connection closed", got, err)
			}
			probe := conformance.DialRaw(t, srv.Addr())
			if got := probe.Do("MGET", "a", "b", "c"); got != "*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n" {
				t.Fatalf("after QUIT: MGET a b c = %q", got)
			}
		})
	}
}

// sendUntilClosed writes in on a new connection and returns everything the
// server sends until it closes the connection (or 5s pass).
func sendUntilClosed(t *testing.T, addr, in string) ([]byte, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(in)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	return io.ReadAll(conn)
}
