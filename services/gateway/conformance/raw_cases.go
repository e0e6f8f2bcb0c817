package conformance

import (
	"io"
	"strconv"
	"strings"
	"testing"
)

func expectBytes(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

var rawCases = []testCase{
	{"ReplyTypesRESP2", func(t *testing.T, s *suite) {
		r := s.raw(t)
		expectBytes(t, "SET", r.Do("SET", "a", "1"), "+OK\r\n")
		expectBytes(t, "GET", r.Do("GET", "a"), "$1\r\n1\r\n")
		expectBytes(t, "GET missing", r.Do("GET", "nokey"), "$-1\r\n")
		expectBytes(t, "MGET", r.Do("MGET", "a", "nokey"), "*2\r\n$1\r\n1\r\n$-1\r\n")
		expectBytes(t, "INCR", r.Do("INCR", "a"), ":2\r\n")
		expectBytes(t, "TYPE", r.Do("TYPE", "a"), "+string\r\n")
		expectBytes(t, "INCRBYFLOAT", r.Do("INCRBYFLOAT", "a", "0.5"), "$3\r\n2.5\r\n")
		expectBytes(t, "SET NX fails", r.Do("SET", "a", "x", "NX"), "$-1\r\n")
		expectBytes(t, "EXISTS", r.Do("EXISTS", "a"), ":1\r\n")
		expectBytes(t, "PING", r.Do("PING"), "+PONG\r\n")
		expectBytes(t, "ECHO", r.Do("ECHO", ""), "$0\r\n\r\n")
		expectBytes(t, "KEYS none", r.Do("KEYS", "zz*"), "*0\r\n")
		expectBytes(t, "SCAN", r.Do("SCAN", "0", "MATCH", "a"), "*2\r\n$1\r\n0\r\n*1\r\n$1\r\na\r\n")
		expectBytes(t, "arity", r.Do("GET"), "-ERR wrong number of arguments for 'get' command\r\n")
		expectBytes(t, "WRONG case arity", r.Do("gEt", "a", "b"), "-ERR wrong number of arguments for 'get' command\r\n")
		expectBytes(t, "unknown", r.Do("FOO", "bar"), "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n")
		long := strings.Repeat("x", 200)
		expectBytes(t, "unknown, long args", r.Do("FOO", long, "y"),
			"-ERR unknown command 'FOO', with args beginning with: '"+strings.Repeat("x", 128)+"' \r\n")
	}},
	{"HelloSwitchesProtocol", func(t *testing.T, s *suite) {
		r := s.raw(t)
		hello := r.Do("HELLO", "3")
		if !strings.HasPrefix(hello, "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n") ||
			!strings.Contains(hello, "$5\r\nproto\r\n:3\r\n") {
			t.Fatalf("HELLO 3 = %q", hello)
		}
		expectBytes(t, "RESP3 null", r.Do("GET", "nokey"), "_\r\n")
		expectBytes(t, "RESP3 MGET", r.Do("MGET", "nokey"), "*1\r\n_\r\n")
		r.Do("SET", "f", "1.5")
		expectBytes(t, "RESP3 CONFIG GET map", r.Do("CONFIG", "GET", "databases"), "%1\r\n$9\r\ndatabases\r\n$2\r\n16\r\n")
		info := r.Do("INFO", "server")
		if !strings.HasPrefix(info, "=") || !strings.Contains(info, "txt:# Server") {
			t.Fatalf("RESP3 INFO should be a verbatim string: %q", info)
		}
		expectBytes(t, "HELLO 4", r.Do("HELLO", "4"), "-NOPROTO unsupported protocol version\r\n")
		expectBytes(t, "HELLO x", r.Do("HELLO", "x"), "-ERR Protocol version is not an integer or out of range\r\n")
		hello = r.Do("HELLO", "2")
		if !strings.HasPrefix(hello, "*14\r\n") {
			t.Fatalf("HELLO 2 = %q", hello)
		}
		expectBytes(t, "RESP2 null", r.Do("GET", "nokey"), "$-1\r\n")
		hello = r.Do("HELLO", "3", "SETNAME", "raw")
		if !strings.HasPrefix(hello, "%7\r\n") {
			t.Fatalf("HELLO 3 SETNAME = %q", hello)
		}
		expectBytes(t, "name set by HELLO", r.Do("CLIENT", "GETNAME"), "$3\r\nraw\r\n")
	}},
	{"InlineCommands", func(t *testing.T, s *suite) {
		r := s.raw(t)
		r.Send([]byte("PING\r\n"))
		expectBytes(t, "inline PING", r.Read(), "+PONG\r\n")
		r.Send([]byte("SET inl \"a b\"\r\nGET inl\r\n"))
		expectBytes(t, "inline SET", r.Read(), "+OK\r\n")
		expectBytes(t, "inline GET", r.Read(), "$3\r\na b\r\n")
	}},
	{"PipelineInOneWrite", func(t *testing.T, s *suite) {
		r := s.raw(t)
		var batch []byte
		for i := 0; i < 100; i++ {
			batch = append(batch, Encode("INCR", "c")...)
		}
		batch = append(batch, Encode("GET", "c")...)
		r.Send(batch)
		for i := 1; i <= 100; i++ {
			got := r.Read()
			if want := ":" + itoa(i) + "\r\n"; got != want {
				t.Fatalf("reply %d: %q, want %q", i, got, want)
			}
		}
		expectBytes(t, "GET after pipeline", r.Read(), "$3\r\n100\r\n")
	}},
	{"ProtocolErrorsCloseOnlyTheOffender", func(t *testing.T, s *suite) {
		good := s.raw(t)
		expectBytes(t, "SET", good.Do("SET", "keep", "1"), "+OK\r\n")
		for _, tc := range []struct{ name, send, want string }{
			{"bad bulk length", "*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
			{"expected dollar", "*1\r\nfoo\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n"},
			{"bad multibulk length", "*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
			{"unbalanced quotes", "SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
			{"bulk beyond proto-max-bulk-len", "*2\r\n$3\r\nGET\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
		} {
			bad := s.raw(t)
			bad.Send([]byte(tc.send))
			got, _ := bad.ReadErr()
			expectBytes(t, tc.name, got, tc.want)
			if rest, err := bad.ReadErr(); err != io.EOF {
				t.Fatalf("%s: connection still open after protocol error (read %q, %v)", tc.name, rest, err)
			}
		}
		expectBytes(t, "other client unaffected", good.Do("GET", "keep"), "$1\r\n1\r\n")
	}},
	{"Quit", func(t *testing.T, s *suite) {
		r := s.raw(t)
		expectBytes(t, "QUIT", r.Do("QUIT"), "+OK\r\n")
		if rest, err := r.ReadErr(); err != io.EOF {
			t.Fatalf("connection open after QUIT (read %q, %v)", rest, err)
		}
	}},
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
