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
	{"DumpRestoreObject", testDumpRestoreObject},
	{"Quit", func(t *testing.T, s *suite) {
		r := s.raw(t)
		expectBytes(t, "QUIT", r.Do("QUIT"), "+OK\r\n")
		if rest, err := r.ReadErr(); err != io.EOF {
			t.Fatalf("connection open after QUIT (read %q, %v)", rest, err)
		}
	}},
}

// Payloads redis-server 7.0.15's DUMP returned.
const (
	dumpV      = "\x00\x01v\n\x00\x91\x08\xce\xb2\x19\x38\x8a\xce"
	dump123    = "\x00\xc0\x7b\x0a\x00\x48\xe2\x53\xe1\x00\x7a\x67\xb9"
	dumpM      = "\x00\xc2\xff\x7f\xff\xff\x0a\x00\xae\xe3\x4c\x4d\x06\xc6\x85\x36"                                                                     // -32769
	dumpDigits = "\x00\xc3\x12\x40\x64\x0a\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x30\xe0\x4e\x09\x01\x38\x39\x0a\x00\xba\x7d\xfc\xf5\xac\xeb\xbc\x03" // "0123456789" x 10, LZF
)

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// testDumpRestoreObject: DUMP is byte-identical to redis-server's (integer
// encodings, LZF), RESTORE takes redis-server's payloads with their TTLs
// and options and refuses what Redis refuses, OBJECT answers as Redis does
// for strings; also inside MULTI/EXEC.
func testDumpRestoreObject(t *testing.T, s *suite) {
	r := s.raw(t)
	digits := strings.Repeat("0123456789", 10)
	for _, c := range []struct{ key, value, payload string }{
		{"d:v", "v", dumpV}, {"d:123", "123", dump123}, {"d:m", "-32769", dumpM}, {"d:digits", digits, dumpDigits},
	} {
		expectBytes(t, "SET "+c.key, r.Do("SET", c.key, c.value), "+OK\r\n")
		expectBytes(t, "DUMP "+c.key, r.Do("DUMP", c.key), bulk(c.payload))
		expectBytes(t, "RESTORE "+c.key, r.Do("RESTORE", c.key+":r", "0", c.payload), "+OK\r\n")
		expectBytes(t, "GET restored "+c.key, r.Do("GET", c.key+":r"), bulk(c.value))
	}
	expectBytes(t, "DUMP missing", r.Do("DUMP", "nokey"), "$-1\r\n")
	expectBytes(t, "OBJECT ENCODING int", r.Do("OBJECT", "ENCODING", "d:123"), bulk("int"))
	expectBytes(t, "OBJECT REFCOUNT shared", r.Do("OBJECT", "REFCOUNT", "d:123:r"), ":2147483647\r\n")
	expectBytes(t, "OBJECT REFCOUNT", r.Do("OBJECT", "REFCOUNT", "d:m"), ":1\r\n")
	expectBytes(t, "OBJECT ENCODING embstr", r.Do("OBJECT", "ENCODING", "d:v"), bulk("embstr"))
	expectBytes(t, "OBJECT ENCODING raw", r.Do("OBJECT", "ENCODING", "d:digits:r"), bulk("raw"))
	expectBytes(t, "OBJECT IDLETIME", r.Do("OBJECT", "IDLETIME", "d:v"), ":0\r\n")
	expectBytes(t, "OBJECT FREQ", r.Do("OBJECT", "FREQ", "d:v"), "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n")
	expectBytes(t, "OBJECT missing", r.Do("OBJECT", "ENCODING", "nokey"), "$-1\r\n")
	expectBytes(t, "OBJECT unknown", r.Do("OBJECT", "foo", "k"), "-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n")

	expectBytes(t, "RESTORE busy", r.Do("RESTORE", "d:v", "0", dumpDigits), "-BUSYKEY Target key name already exists.\r\n")
	expectBytes(t, "RESTORE REPLACE", r.Do("RESTORE", "d:v", "0", dumpDigits, "REPLACE"), "+OK\r\n")
	expectBytes(t, "GET replaced", r.Do("GET", "d:v"), bulk(digits))
	expectBytes(t, "RESTORE TTL", r.Do("RESTORE", "t", "100000", dumpV), "+OK\r\n")
	if pttl, err := strconv.Atoi(strings.Trim(r.Do("PTTL", "t"), ":\r\n")); err != nil || pttl <= 0 || pttl > 100000 {
		t.Fatalf("PTTL after RESTORE t 100000 = %d, %v", pttl, err)
	}
	expectBytes(t, "RESTORE ABSTTL", r.Do("RESTORE", "a", "4102444800000", dumpV, "ABSTTL"), "+OK\r\n")
	expectBytes(t, "PEXPIRETIME", r.Do("PEXPIRETIME", "a"), ":4102444800000\r\n")
	expectBytes(t, "RESTORE ABSTTL past", r.Do("RESTORE", "a", "1", dumpV, "ABSTTL", "REPLACE"), "+OK\r\n")
	expectBytes(t, "past ABSTTL deletes", r.Do("EXISTS", "a"), ":0\r\n")
	expectBytes(t, "RESTORE TTL wraps", r.Do("RESTORE", "w", "9223372036854775807", dumpV), "+OK\r\n")
	expectBytes(t, "wrapped TTL creates nothing", r.Do("EXISTS", "w"), ":0\r\n")
	bad := dumpV[:len(dumpV)-1] + "x"
	for _, c := range []struct {
		name, want string
		args       []string
	}{
		{"checksum", "-ERR DUMP payload version or checksum are wrong\r\n", []string{"RESTORE", "e", "0", bad}},
		{"short", "-ERR DUMP payload version or checksum are wrong\r\n", []string{"RESTORE", "e", "0", "x"}},
		{"negative TTL", "-ERR Invalid TTL value, must be >= 0\r\n", []string{"RESTORE", "e", "-1", dumpV}},
		{"TTL not a number", "-ERR value is not an integer or out of range\r\n", []string{"RESTORE", "e", "x", dumpV}},
		{"syntax", "-ERR syntax error\r\n", []string{"RESTORE", "e", "0", dumpV, "FOO"}},
		{"FREQ", "-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n", []string{"RESTORE", "e", "0", dumpV, "FREQ", "256"}},
		{"IDLETIME", "-ERR Invalid IDLETIME value, must be >= 0\r\n", []string{"RESTORE", "e", "0", dumpV, "IDLETIME", "-1"}},
	} {
		expectBytes(t, "RESTORE "+c.name, r.Do(c.args...), c.want)
	}
	expectBytes(t, "nothing written", r.Do("EXISTS", "e"), ":0\r\n")

	// In a transaction.
	expectBytes(t, "MULTI", r.Do("MULTI"), "+OK\r\n")
	for _, args := range [][]string{{"RESTORE", "x", "0", dump123}, {"OBJECT", "ENCODING", "x"}, {"DUMP", "x"}, {"RESTORE", "x", "0", dumpV}} {
		expectBytes(t, "queue "+args[0], r.Do(args...), "+QUEUED\r\n")
	}
	expectBytes(t, "EXEC", r.Do("EXEC"), "*4\r\n+OK\r\n"+bulk("int")+bulk(dump123)+"-BUSYKEY Target key name already exists.\r\n")
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
