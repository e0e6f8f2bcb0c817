package rdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis's own test vectors (crc64.c).
func TestCRC64Jones(t *testing.T) {
	li := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed " +
		"do eiusmod tempor incididunt ut labore et dolore magna " +
		"aliqua. Ut enim ad minim veniam, quis nostrud exercitation " +
		"ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis " +
		"aute irure dolor in reprehenderit in voluptate velit esse " +
		"cillum dolore eu fugiat nulla pariatur. Excepteur sint " +
		"occaecat cupidatat non proident, sunt in culpa qui officia " +
		"deserunt mollit anim id est laborum.\x00" // sizeof includes the NUL
	for _, c := range []struct {
		in   string
		want uint64
	}{
		{"123456789", 0xe9c6d914c4b8d9ca},
		{li, 0xc7794709e69683b3},
		{"", 0},
	} {
		if got := CRC64(0, []byte(c.in)); got != c.want {
			t.Errorf("crc64(%.20q) = %016x, want %016x", c.in, got, c.want)
		}
		// Long inputs take hash/crc64's slicing path: the same answer.
		if len(c.in) > 0 {
			long := bytes.Repeat([]byte(c.in), 4096/len(c.in)+1)
			var inc uint64
			for i := 0; i < len(long); i += 7 {
				inc = CRC64(inc, long[i:min(i+7, len(long))])
			}
			if whole := CRC64(0, long); whole != inc {
				t.Errorf("crc64 of %d bytes: whole %016x, in pieces %016x", len(long), whole, inc)
			}
		}
	}
}

// Payloads redis-server 7.0.15 returned for DUMP.
var knownDumps = []struct{ value, payload string }{
	{"v", "\x00\x01v\n\x00"},
	{"123", "\x00\xc0{\n\x00"},
	{"-1", "\x00\xc0\xff\n\x00"},
	{"1000", "\x00\xc1\xe8\x03\n\x00"},
	{"100000", "\x00\xc2\xa0\x86\x01\x00\n\x00"},
	{"12345678901", "\x00\x0b12345678901\n\x00"},
	{"007", "\x00\x03007\n\x00"},
	{"", "\x00\x00\n\x00"},
	{strings.Repeat("a", 100), "\x00\xc3\t@d\x01aa\xe0W\x00\x01aa\n\x00"},
	{"-0", "\x00\x02-0\n\x00"},
	{"2147483647", "\x00\xc2\xff\xff\xff\x7f\n\x00"},
	{"2147483648", "\x00\n2147483648\n\x00"},
	{"-2147483648", "\x00\xc2\x00\x00\x00\x80\n\x00"},
	{"-2147483649", "\x00\x0b-2147483649\n\x00"},
	{"-128", "\x00\xc0\x80\n\x00"},
	{"128", "\x00\xc1\x80\x00\n\x00"},
	{"-129", "\x00\xc1\x7f\xff\n\x00"},
	{"32768", "\x00\xc2\x00\x80\x00\x00\n\x00"},
	{"-32769", "\x00\xc2\xff\x7f\xff\xff\n\x00"},
}

func TestKnownDumps(t *testing.T) {
	for _, c := range knownDumps {
		got := DumpString([]byte(c.value))
		if want := c.payload; string(got[:len(got)-8]) != want {
			t.Errorf("DumpString(%.20q) = %q, want %q (+ CRC)", c.value, got[:len(got)-8], want)
		}
		back, err := Decode(got, noLimit)
		if err != nil || string(back) != c.value {
			t.Errorf("Decode(DumpString(%.20q)) = %q, %v", c.value, back, err)
		}
	}
}

func noLimit(uint64) error { return nil }

// Compressing and decompressing gives back the input, for inputs shaped to
// hit every path of the compressor: runs, long matches, matches at the
// 8 KiB window's edge, literal runs of 32, incompressible noise.
func TestLZFRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		in := testString(rng, i)
		out := make([]byte, len(in)+64)
		n := lzfCompress(in, out)
		if n == 0 {
			continue // did not fit: Redis stores it verbatim
		}
		back := make([]byte, len(in))
		if m := lzfDecompress(out[:n], back); m != len(in) || !bytes.Equal(back, in) {
			t.Fatalf("case %d (%d bytes): decompressed %d bytes, equal %v", i, len(in), m, bytes.Equal(back, in))
		}
		// One byte short of room fails, as lzf_decompress does.
		if len(in) > 0 && lzfDecompress(out[:n], back[:len(in)-1]) != 0 {
			t.Fatalf("case %d: decompressing into too little room did not fail", i)
		}
	}
}

// testString makes the i-th test input: lengths from 0 to tens of KiB, and
// contents from constant to random.
func testString(rng *rand.Rand, i int) []byte {
	var n int
	switch i % 4 {
	case 0:
		n = i % 70
	case 1:
		n = rng.IntN(600)
	case 2:
		n = rng.IntN(20000)
	default:
		n = rng.IntN(70000)
	}
	b := make([]byte, n)
	alphabet := []int{1, 2, 4, 16, 64, 256}[rng.IntN(6)]
	mode := rng.IntN(4)
	for j := range b {
		switch {
		case mode == 1 && j > 8 && rng.IntN(4) != 0:
			b[j] = b[j-1-rng.IntN(min(j, 8))] // short-range repeats
		case mode == 2 && j > 9000 && rng.IntN(3) != 0:
			b[j] = b[j-8191+rng.IntN(3)] // matches at the window's edge
		case mode == 3 && j%300 < 200 && j >= 300:
			b[j] = b[j-300] // long matches
		default:
			b[j] = byte(rng.IntN(alphabet))
		}
	}
	return b
}

// Decoding hostile payloads never panics, never allocates what the payload
// cannot back, and answers Redis's errors.
func TestDecodeErrors(t *testing.T) {
	seal := func(body string) []byte { return Seal([]byte(body)) }
	good := DumpString([]byte("hello"))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	newer := []byte("\x00\x05hello\x0b\x00")
	newer = appendCRC(newer)
	older := appendCRC([]byte("\x00\x05hello\x06\x00"))
	for _, c := range []struct {
		name    string
		payload []byte
		want    string
		err     error
	}{
		{"empty", nil, "", ErrChecksum},
		{"short", []byte("\x00\x01v\n\x00"), "", ErrChecksum},
		{"bad-crc", badCRC, "", ErrChecksum},
		{"newer-version", newer, "", ErrChecksum},
		{"older-version", older, "hello", nil},
		{"footer-only", seal(""), "", &UnsupportedTypeError{}}, // the version's 10 reads as a type (a list)
		{"unknown-type", seal("\x08\x00"), "", ErrBadFormat},
		{"type-20", seal("\x14\x00"), "", ErrBadFormat},
		{"hash", seal("\x04\x00"), "", &UnsupportedTypeError{}},
		{"no-length", seal("\x00"), "", ErrBadFormat}, // the version's 10 reads as a length, which runs out
		{"length-past-end", seal("\x00\x7f\xff"), "", ErrBadFormat},
		{"length-into-footer", seal("\x00\x04ab"), "ab\n\x00", nil}, // 2 bytes + the version
		{"trailing-bytes", seal("\x00\x01vXYZ"), "v", nil},
		{"int8-truncated", []byte("\x00\xc0"), "", ErrChecksum},
		{"int32", seal("\x00\xc2\xff\xff\xff\x7f"), "2147483647", nil},
		{"int32-min", seal("\x00\xc2\x00\x00\x00\x80"), "-2147483648", nil},
		{"bad-encoding", seal("\x00\xc4"), "", ErrBadFormat},
		{"bad-length-byte", seal("\x00\x82\x00\x00\x00\x01v"), "", ErrBadFormat},
		{"len32", seal("\x00\x80\x00\x00\x00\x01v"), "v", nil},
		{"len64", seal("\x00\x81\x00\x00\x00\x00\x00\x00\x00\x01v"), "v", nil},
		{"len64-max", seal("\x00\x81\xff\xff\xff\xff\xff\xff\xff\xff"), "", ErrBadFormat},
		{"lzf-4GiB", seal("\x00\xc3\x02\x80\xff\xff\xff\xff\x00a"), "", ErrBadFormat},
		{"lzf-clen-past-end", seal("\x00\xc3\x80\x7f\xff\xff\xff\x01\x00a"), "", ErrBadFormat},
		{"lzf-zero-length", seal("\x00\xc3\x02\x00\x05x"), "", nil},
		{"lzf-garbage", seal("\x00\xc3\x02\x05\xe0\xff"), "", ErrBadFormat},
		{"lzf-backref-before-start", seal("\x00\xc3\x02\x03\x20\x05"), "", ErrBadFormat},
		{"lzf-short-output", seal("\x00\xc3\x02\x05\x00a"), "", ErrBadFormat},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Decode(c.payload, noLimit)
			var ute *UnsupportedTypeError
			switch {
			case errors.As(c.err, &ute):
				if !errors.As(err, &ute) {
					t.Fatalf("Decode = %q, %v; want an UnsupportedTypeError", got, err)
				}
			case !errors.Is(err, c.err) && (err != nil || c.err != nil):
				t.Fatalf("Decode = %q, %v; want error %v", got, err, c.err)
			case err == nil && string(got) != c.want:
				t.Fatalf("Decode = %q, want %q", got, c.want)
			}
		})
	}
}

// The limit is asked before the string is allocated; its error comes back.
func TestDecodeLimit(t *testing.T) {
	big := DumpString(bytes.Repeat([]byte("a"), 100000))
	errCap := errors.New("cap")
	var asked uint64
	_, err := Decode(big, func(n uint64) error { asked = n; return errCap })
	if !errors.Is(err, errCap) || asked != 100000 {
		t.Fatalf("Decode with a refusing limit: %v, asked %d", err, asked)
	}
}

func appendCRC(p []byte) []byte {
	return append(p, le64(CRC64(0, p))...)
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// startRedis runs redis-server 7.0 on a free port, or skips.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("NOKV_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found but NOKV_REQUIRE_REDIS=1: %v", err)
		}
		t.Skip("redis-server not installed; skipping comparison")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not come up on %s", addr)
		}
	}
}

// conn is a minimal RESP client for the comparisons.
type conn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{c: c, rd: bufio.NewReaderSize(c, 1<<16)}
}

// do sends a command and returns a bulk reply's payload, or the reply line.
func (c *conn) do(t *testing.T, args ...[]byte) []byte {
	t.Helper()
	var req []byte
	req = fmt.Appendf(req, "*%d\r\n", len(args))
	for _, a := range args {
		req = fmt.Appendf(req, "$%d\r\n", len(a))
		req = append(append(req, a...), "\r\n"...)
	}
	if _, err := c.c.Write(req); err != nil {
		t.Fatal(err)
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if line[0] != '$' {
		return []byte(line)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	if n < 0 {
		return nil
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.rd, buf); err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// DumpString is byte-identical to redis-server's DUMP for thousands of
// strings of every length and kind of content, and Decode reads every
// payload redis-server makes. Every value stays in its own key, so that
// redis-server never compresses a buffer at an address an earlier DUMP
// used (see lzfTable on why its output could then differ).
func TestDumpMatchesRedisServer(t *testing.T) {
	c := dial(t, startRedis(t))
	rng := rand.New(rand.NewPCG(3, 4))
	n := 3000
	if testing.Short() {
		n = 300
	}
	var compressed int
	for i := 0; i < n; i++ {
		v := testString(rng, i)
		switch i % 10 {
		case 7:
			v = strconv.AppendInt(nil, rng.Int64N(1<<40)-1<<39, 10)
		case 8:
			v = strconv.AppendInt(nil, int64(rng.Int32())>>rng.IntN(31), 10)
		}
		key := []byte(fmt.Sprintf("k%d", i))
		if r := c.do(t, []byte("SET"), key, v); string(r) != "+OK\r\n" {
			t.Fatalf("SET: %q", r)
		}
		want := c.do(t, []byte("DUMP"), key)
		got := DumpString(v)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d, %d bytes %.40q:\n ours:  %.200q\n redis: %.200q", i, len(v), v, got, want)
		}
		if len(want) > 1 && want[1] == encVal<<6|encLZF {
			compressed++
		}
		back, err := Decode(want, noLimit)
		if err != nil || !bytes.Equal(back, v) {
			t.Fatalf("case %d: Decode(redis's DUMP) = %.40q, %v", i, back, err)
		}
	}
	if compressed < n/4 {
		t.Fatalf("only %d of %d payloads were LZF-compressed: the compressor was barely compared", compressed, n)
	}
}

// Payloads built here, valid or not, meet the same fate in redis-server's
// RESTORE as in Decode.
func TestDecodeAgreesWithRedisServer(t *testing.T) {
	c := dial(t, startRedis(t))
	seal := func(body string) []byte { return Seal([]byte(body)) }
	payloads := [][]byte{
		seal(""), seal("\x00"), seal("\x00\x0cab"), seal("\x00\x01vXYZ"), seal("\x00\x7f\xff"),
		seal("\x00\xc2\x00\x00\x00\x80"), seal("\x00\xc4"), seal("\x00\x82\x00\x00\x00\x01v"),
		seal("\x00\x80\x00\x00\x00\x01v"), seal("\x00\x81\x00\x00\x00\x00\x00\x00\x00\x01v"),
		seal("\x00\x81\xff\xff\xff\xff\xff\xff\xff\xff"), seal("\x00\xc3\x02\x80\xff\xff\xff\xff\x00a"),
		seal("\x00\xc3\x80\x7f\xff\xff\xff\x01\x00a"), seal("\x00\xc3\x02\x00\x05x"), seal("\x00\xc3\x02\x05\xe0\xff"),
		seal("\x00\xc3\x02\x03\x20\x05"), seal("\x00\xc3\x02\x05\x00a"), seal("\x00\xc3\x42\x05\x00a"),
		seal("\x00\xc3\x03\x05\x00ab"), seal("\x00\xc3\x04\x05\x01ab\x20\x00"), seal("\x08\x00"), seal("\x14\x00"),
		seal("\x00\xc0"), seal("\x00\xc1\x01"), seal("\x00\x04ab"), seal("\x00\x0cab"),
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 500; i++ {
		body := make([]byte, 1+rng.IntN(12))
		body[0] = 0
		for j := 1; j < len(body); j++ {
			body[j] = byte(rng.IntN(256))
			if rng.IntN(3) == 0 {
				body[j] = []byte{0xc0, 0xc1, 0xc2, 0xc3, 0x80, 0x81, 0x00, 0x01, 0x02, 0x20, 0xe0}[rng.IntN(11)]
			}
		}
		payloads = append(payloads, seal(string(body)))
	}
	// Valid compressed strings with one byte changed, resealed: the
	// decompressor's checks against Redis's.
	for i := 0; i < 500; i++ {
		v := testString(rng, 4*rng.IntN(200)+3)
		p := DumpString(v)
		if len(p) < 14 || p[1] != encVal<<6|encLZF {
			continue
		}
		body := bytes.Clone(p[:len(p)-10])
		body[2+rng.IntN(len(body)-2)] ^= byte(1 + rng.IntN(255))
		payloads = append(payloads, seal(string(body)))
	}
	for i, p := range payloads {
		key := []byte(fmt.Sprintf("r%d", i))
		reply := c.do(t, []byte("RESTORE"), key, []byte("0"), p)
		got, err := Decode(p, noLimit)
		var ute *UnsupportedTypeError
		switch {
		case errors.As(err, &ute):
			// A type the gateway does not store: it is not parsed, so the
			// verdict on its bytes is Redis's alone.
		case string(reply) == "+OK\r\n":
			stored := c.do(t, []byte("GET"), key)
			if err != nil || !bytes.Equal(got, stored) {
				t.Errorf("payload %q: redis restored %q, Decode = %q, %v", p, stored, got, err)
			}
		case string(reply) == "-ERR Bad data format\r\n":
			if !errors.Is(err, ErrBadFormat) {
				t.Errorf("payload %q: redis: Bad data format; Decode = %q, %v", p, got, err)
			}
		default:
			t.Errorf("payload %q: redis answered %q", p, reply)
		}
	}
}
