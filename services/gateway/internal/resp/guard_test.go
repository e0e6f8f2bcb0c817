package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeConn feeds chunks to Read one at a time and records what is written.
type fakeConn struct {
	net.Conn
	chunks [][]byte
	out    bytes.Buffer
}

func (f *fakeConn) Read(p []byte) (int, error) {
	if len(f.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.chunks[0])
	f.chunks[0] = f.chunks[0][n:]
	if len(f.chunks[0]) == 0 {
		f.chunks = f.chunks[1:]
	}
	return n, nil
}

func (f *fakeConn) Write(p []byte) (int, error)      { return f.out.Write(p) }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

// readAll drains the guard and returns what it let through and its final error.
func readAll(g *GuardedConn) ([]byte, error) { return readAllSize(g, 7) }

// readAllSize reads with a buffer of size bytes; small reads exercise the state
// the guard keeps across calls.
func readAllSize(g *GuardedConn, size int) ([]byte, error) {
	var got []byte
	buf := make([]byte, size)
	for {
		n, err := g.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

func TestGuardPassesValidTraffic(t *testing.T) {
	in := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\nPING\r\n*1\r\n$4\r\nPING\r\n")
	for _, split := range []int{1, 3, 5, len(in)} {
		var chunks [][]byte
		for i := 0; i < len(in); i += split {
			chunks = append(chunks, append([]byte(nil), in[i:min(i+split, len(in))]...))
		}
		f := &fakeConn{chunks: chunks}
		got, err := readAll(NewGuardedConn(f, Limits{MaxBulkLen: 10}))
		if !errors.Is(err, io.EOF) || !bytes.Equal(got, in) {
			t.Fatalf("split %d: got %q, %v", split, got, err)
		}
		if f.out.Len() != 0 {
			t.Fatalf("split %d: guard wrote %q", split, f.out.String())
		}
	}
}

func TestGuardRejectsOversizedBulkBeforeItsPayload(t *testing.T) {
	good := "*1\r\n$4\r\nPING\r\n"
	f := &fakeConn{chunks: [][]byte{[]byte(good + "*2\r\n$3\r\nSET\r\n$11\r\n"), []byte("0123456789A\r\n")}}
	got, err := readAllSize(NewGuardedConn(f, Limits{MaxBulkLen: 10}), 4096)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
	if string(got) != good {
		t.Fatalf("let through %q, want only the good request", got)
	}
	if f.out.String() != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Fatalf("wrote %q", f.out.String())
	}
}

func TestGuardInlineAndHeaderLimits(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{string(bytes.Repeat([]byte("a"), DefaultMaxInlineLen+1)), "-ERR Protocol error: too big inline request\r\n"},
		{"*" + string(bytes.Repeat([]byte("1"), maxHeaderLen+1)), "-ERR Protocol error: too big mbulk count string\r\n"},
		{"*1\r\n$" + string(bytes.Repeat([]byte("0"), maxHeaderLen+1)), "-ERR Protocol error: too big bulk count string\r\n"},
		{"*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
	} {
		f := &fakeConn{chunks: [][]byte{[]byte(tc.in)}}
		_, err := readAll(NewGuardedConn(f, Limits{}))
		if !errors.Is(err, ErrProtocol) || f.out.String() != tc.want {
			t.Fatalf("%.20q...: err %v, wrote %q", tc.in, err, f.out.String())
		}
	}
}

func TestWriterRESP2AndRESP3(t *testing.T) {
	var w Writer
	w.Null()
	w.Map(1)
	w.BulkString("k")
	w.Double(1.5)
	w.Error("ERR bad\r\nthing")
	if got := string(w.Bytes()); got != "$-1\r\n*2\r\n$1\r\nk\r\n$3\r\n1.5\r\n-ERR bad  thing\r\n" {
		t.Fatalf("RESP2: %q", got)
	}
	w = Writer{Proto: 3}
	w.Null()
	w.Map(1)
	w.BulkString("k")
	w.Double(1.5)
	w.Verbatim("hi")
	if got := string(w.Bytes()); got != "_\r\n%1\r\n$1\r\nk\r\n,1.5\r\n=6\r\ntxt:hi\r\n" {
		t.Fatalf("RESP3: %q", got)
	}
}

// Before AUTH, a request of more than 10 arguments or with an argument over
// 16 KiB is refused; an AUTH earlier in the same read is judged first.
func TestGuardUnauthenticatedLimits(t *testing.T) {
	auth := "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
	eleven := "*11\r\n" + strings.Repeat("$1\r\na\r\n", 11)
	bigBulk := "*2\r\n$4\r\nECHO\r\n$16385\r\n" + strings.Repeat("b", 16385) + "\r\n"
	cases := []struct {
		name   string
		in     string
		authOK bool // whether the AUTH in the stream succeeds
		// On an error, what reaches the server is a prefix of atMost (the
		// bytes before the offending header's end) starting with atLeast.
		atLeast, atMost string
		err             string
	}{
		{"ten args", "*10\r\n" + strings.Repeat("$1\r\na\r\n", 10), false, "", "", ""},
		{"eleven args", eleven, false, "", "*11\r", "unauthenticated multibulk length"},
		{"big bulk", bigBulk, false, "", "*2\r\n$4\r\nECHO\r\n$16385\r", "unauthenticated bulk length"},
		{"after auth", auth + eleven + bigBulk, true, "", "", ""},
		{"after failed auth", auth + eleven, false, auth, auth + "*11\r", "unauthenticated multibulk length"},
	}
	for _, tc := range cases {
		for _, size := range []int{1, 7, 4096, 1 << 20} {
			authed := false
			f := &fakeConn{chunks: [][]byte{[]byte(tc.in)}}
			g := NewGuardedConn(f, Limits{})
			g.Authenticated = func() bool { return authed }
			var got []byte
			buf := make([]byte, size)
			var err error
			for err == nil {
				var n int
				n, err = g.Read(buf)
				got = append(got, buf[:n]...)
				// Play the server: it runs a complete AUTH before it reads on.
				if tc.authOK && bytes.HasPrefix(got, []byte(auth)) {
					authed = true
				}
			}
			if tc.err == "" {
				if !errors.Is(err, io.EOF) || string(got) != tc.in || f.out.Len() != 0 {
					t.Errorf("%s (reads of %d): got %d of %d bytes, wrote %q, %v", tc.name, size, len(got), len(tc.in), f.out.String(), err)
				}
				continue
			}
			want := "-ERR Protocol error: " + tc.err + "\r\n"
			if !errors.Is(err, ErrProtocol) || f.out.String() != want ||
				!strings.HasPrefix(tc.atMost, string(got)) || !strings.HasPrefix(string(got), tc.atLeast) {
				t.Errorf("%s (reads of %d): let through %q, wrote %q, %v", tc.name, size, got, f.out.String(), err)
			}
		}
	}
}

// An authenticated client's pipeline of large requests is delivered whole:
// holding back is only for clients that may yet authenticate.
func TestGuardDeliversAuthenticatedPipelinesWhole(t *testing.T) {
	eleven := "*11\r\n" + strings.Repeat("$1\r\na\r\n", 11)
	in := strings.Repeat(eleven, 5)
	f := &fakeConn{chunks: [][]byte{[]byte(in)}}
	g := NewGuardedConn(f, Limits{})
	g.Authenticated = func() bool { return true }
	buf := make([]byte, 4096)
	if n, err := g.Read(buf); err != nil || string(buf[:n]) != in {
		t.Fatalf("first read gave %d of %d bytes, %v", n, len(in), err)
	}
}

// The guard judges "*<count>" and "$<len>" lines as the event loop's parser
// (and Redis) does. redcon would take some numbers Redis refuses (a '+'
// sign, leading zeros): had the guard let those pass unjudged, "*+11" would
// slip past the unauthenticated limit and "$+4294967296" past
// proto-max-bulk-len.
func TestGuardJudgesHeadersAsTheParser(t *testing.T) {
	cases := []string{
		"*+11\r\n", "*011\r\n", "*-0\r\n", "*\r\n", "*-\r\n", "*1 \r\n", "* 1\r\n",
		"*9223372036854775807\r\n", "*9223372036854775808\r\n", "*-9223372036854775808\r\n", "*-9223372036854775809\r\n",
		"*2147483648\r\n", "*-1\r\n", "*0\r\n*11\r\n",
		"*1\r\n$+20000\r\n", "*1\r\n$+4294967296\r\n", "*1\r\n$00\r\n", "*1\r\n$-1\r\n", "*1\r\n$-0\r\n",
		"*1\r\n$16385\r\n", "*1\r\n$16384\r\n", "*1\r\n$536870913\r\n", "*1\r\n$99999999999999999999\r\n",
		"*" + strings.Repeat("1", maxHeaderLen) + "\r\n", "*" + strings.Repeat("0", maxHeaderLen-1) + "\r\n",
		"*1\r\n$" + strings.Repeat("1", maxHeaderLen) + "\r\n",
	}
	for _, in := range cases {
		p := NewParser(Limits{})
		p.Unauthenticated = true
		var want string
		r := &chunkReader{in: []byte(in), size: len(in)}
	parse:
		for {
			_, ferr := p.Fill(r)
			for {
				args, err := p.Next()
				if err != nil {
					want = "-ERR " + err.Error() + "\r\n"
					break parse
				}
				if args == nil {
					break
				}
			}
			if ferr != nil {
				break
			}
		}
		for _, size := range []int{1, 5, 1 << 20} {
			f := &fakeConn{chunks: [][]byte{[]byte(in)}}
			g := NewGuardedConn(f, Limits{})
			g.Authenticated = func() bool { return false }
			if _, err := readAllSize(g, size); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, ErrProtocol) {
				t.Fatal(err)
			}
			if got := f.out.String(); got != want {
				t.Errorf("%.40q (reads of %d): guard wrote %q, the parser says %q", in, size, got, want)
			}
		}
	}
}
