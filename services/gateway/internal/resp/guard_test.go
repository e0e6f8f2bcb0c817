package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
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

// canonical parses in whole and returns its complete requests encoded as
// plain multibulk requests, and the protocol error, if any.
func canonical(t testing.TB, in []byte, lim Limits) (string, error) {
	t.Helper()
	p := NewParser(lim)
	p.Feed(in)
	var b strings.Builder
	for {
		args, err := p.Next()
		if err != nil || args == nil {
			return b.String(), err
		}
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
	}
}

// guardAll runs in through a guard, chunk bytes per socket read, read size
// bytes at a time, as redcon's server does: after each read it runs every
// complete command it holds, which Restore gives back its large arguments.
// It returns those commands re-encoded, what the guard wrote to the client
// and its final error. The bytes handed over never carry an argument past
// MaxInlineLen (redcon would keep it in its buffer).
func guardAll(in []byte, chunk, size int, lim Limits) (got []byte, wrote string, err error) {
	var chunks [][]byte
	for i := 0; i < len(in); i += chunk {
		chunks = append(chunks, append([]byte(nil), in[i:min(i+chunk, len(in))]...))
	}
	f := &fakeConn{chunks: chunks}
	g := NewGuardedConn(f, lim)
	inline := g.lim.MaxInlineLen
	redcon := NewParser(Limits{MaxBulkLen: 1 << 40, MaxQueryBuffer: 1 << 40})
	buf := make([]byte, size)
	for {
		var n int
		n, err = g.Read(buf)
		redcon.Feed(buf[:n])
		for {
			args, perr := redcon.Next()
			if perr != nil {
				return got, f.out.String(), fmt.Errorf("the guard handed over what redcon cannot parse: %w", perr)
			}
			if args == nil {
				break
			}
			for _, a := range args {
				if len(a) > inline {
					return got, f.out.String(), fmt.Errorf("an argument of %d bytes was handed over", len(a))
				}
			}
			args = g.Restore(args)
			got = fmt.Appendf(got, "*%d\r\n", len(args))
			for _, a := range args {
				got = fmt.Appendf(got, "$%d\r\n%s\r\n", len(a), a)
			}
		}
		if err != nil {
			return got, f.out.String(), err
		}
	}
}

// checkGuardMatchesParser requires the guard to hand over exactly the
// requests the parser finds in in, as plain multibulk requests, and to
// answer the parser's protocol error, however the bytes arrive.
func checkGuardMatchesParser(t *testing.T, in []byte, lim Limits) {
	t.Helper()
	want, perr := canonical(t, in, lim)
	wantWrote := ""
	if perr != nil {
		wantWrote = "-ERR " + perr.Error() + "\r\n"
	}
	for _, chunk := range []int{1, 3, 4096, len(in) + 1} {
		for _, size := range []int{1, 7, 4096} {
			got, wrote, err := guardAll(in, chunk, size, lim)
			if perr != nil && !errors.Is(err, ErrProtocol) || perr == nil && !errors.Is(err, io.EOF) {
				t.Fatalf("%.60q (chunks of %d, reads of %d): error %v; the parser says %v", in, chunk, size, err, perr)
			}
			if wrote != wantWrote || string(got) != want {
				t.Fatalf("%.60q (chunks of %d, reads of %d):\n handed over %.200q, wrote %q\n want        %.200q, %q",
					in, chunk, size, got, wrote, want, wantWrote)
			}
		}
	}
}

// Whatever a client sends, redcon behind the guard sees what the event
// loop's parser (and Redis) would run: inline requests with Redis's quoting,
// nothing for "*0" and "*-1", nothing past a NUL that Redis's strchr stops
// at, and Redis's protocol errors.
func TestGuardHandsOverWhatTheParserAccepts(t *testing.T) {
	cases := []string{
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\n0123456789\r\nPING\r\n*1\r\n$4\r\nPING\r\n",
		"*0\r\n*-1\r\n*-5\r\nPING\r\n",
		"PING\r\nECHO a\x00b c\r\nPING\r\n",
		"PING\r\n*1\x00\r\n$4\r\nPING\r\n",
		"PING\r\n*1\r\n$4\x00\r\nPING\r\n",
		`SET k "a b\x41\n\t\r\b\a\q\""` + "\r\nGET k\r\n" + `ECHO "\xzz" "\x4"` + "\r\n",
		`SET k 'it\'s \n'` + "\r\nECHO ''\r\n",
		"ECHO\tx\r\n\v\fECHO y\r\nECHO\vz\r\n",
		"\r\n\n  \r\nPING\r\n",
		"*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n",
		"*1\rX$4\r\nPING\r\n",
		"*1\r$4\r\nPING\r\n",
		"PING\r\n*1\r\nfoo\r\n",
		"*1\r\n\xff\r\n",
		"PING\r\nSET k \"open\r\nPING\r\n",
		"PING\r\nECHO \"a\"b\r\n",
		"*+1\r\n$4\r\nPING\r\n",
		"*1\r\n$-1\r\n",
		"*1\r\n$99999999999999999999\r\n",
		"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n",
		"*2\r\n$4\r\nECHO\r\n$1001\r\n",
		"*2\r\n$4\r\nECHO\r\n$1000\r\n" + strings.Repeat("x", 1000) + "\r\nPING\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n" + strings.Repeat("y", 2000) + "\r\n" + "GET k\r\n",
		strings.Repeat("a", 1100),
		"*" + strings.Repeat("1", 70000),
		"*1\r\n$" + strings.Repeat("0", 70000),
		"*99999999999\r\n",
		"*2\r\n$4\r\nECHO",
		// Swallowed past a NUL, after a request that ran: the buffer moves.
		"PING\r\nECHO a\x00b\r\n" + strings.Repeat("PING\r\n", 3000),
		"PING\r\n*1\x00\r\n" + strings.Repeat("PING\r\n", 3000),
		"PING\r\n*2\r\n$4\r\nECHO\r\n$1800\r\n" + strings.Repeat("z", 1800) + "\r\nPING\r\n",
	}
	for _, in := range cases {
		checkGuardMatchesParser(t, []byte(in), Limits{MaxBulkLen: 2000, MaxInlineLen: 1024})
	}
	// At Redis's limits, past the first buffer's size, after a request ran.
	in := []byte("PING\r\nECHO a\x00b\r\n" + strings.Repeat("PING\r\n", 11000))
	got, wrote, err := guardAll(in, len(in), 4096, Limits{})
	if string(got) != "*1\r\n$4\r\nPING\r\n" || wrote != "-ERR Protocol error: too big inline request\r\n" || !errors.Is(err, ErrProtocol) {
		t.Fatalf("NUL then 66 KB: handed over %q, wrote %q, %v", got, wrote, err)
	}
}

// FuzzGuard: for any stream, the guard hands over what the parser accepts.
func FuzzGuard(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"))
	f.Add([]byte(`SET k "a\x41" 'b\'c'` + "\r\n*0\r\n*-1\r\n"))
	f.Add([]byte("PING\r\nECHO a\x00b\r\n"))
	f.Add([]byte("*1\rX$4\r\nPINGxx*1\r\n$300\r\n" + strings.Repeat("z", 300) + "\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 4096 {
			return
		}
		checkGuardMatchesParser(t, in, Limits{MaxBulkLen: 1 << 10, MaxInlineLen: 256, MaxMultibulkLen: 64})
	})
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
	if len(f.chunks) != 1 {
		t.Fatal("the guard read the payload of a refused bulk")
	}
}

func TestGuardInlineAndHeaderLimits(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{strings.Repeat("a", DefaultMaxInlineLen+1), "-ERR Protocol error: too big inline request\r\n"},
		{"*" + strings.Repeat("1", DefaultMaxInlineLen+1), "-ERR Protocol error: too big mbulk count string\r\n"},
		{"*1\r\n$" + strings.Repeat("0", DefaultMaxInlineLen+1), "-ERR Protocol error: too big bulk count string\r\n"},
		{"*99999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
		// Past a NUL, Redis never finds the line's end, until it is too big.
		{"ECHO a\x00b\r\n" + strings.Repeat("PING\r\n", DefaultMaxInlineLen/6+1), "-ERR Protocol error: too big inline request\r\n"},
	} {
		f := &fakeConn{chunks: [][]byte{[]byte(tc.in)}}
		got, err := readAll(NewGuardedConn(f, Limits{}))
		if !errors.Is(err, ErrProtocol) || f.out.String() != tc.want || len(got) != 0 {
			t.Fatalf("%.20q...: handed over %q, err %v, wrote %q", tc.in, got, err, f.out.String())
		}
	}
}

// slowConn hands out its input a chunk per Read, like a client that sends
// slowly, and counts the reads.
type slowConn struct {
	fakeConn
	reads int
}

func (s *slowConn) Read(p []byte) (int, error) { s.reads++; return s.fakeConn.Read(p) }

// A header announcing 512 MiB makes the guard buffer what arrives, not what
// is announced; past MaxQueryBuffer the client is closed without a reply.
func TestGuardQueryBufferLimit(t *testing.T) {
	const limit = 4 << 20
	chunk := bytes.Repeat([]byte("v"), 64<<10)
	f := &slowConn{}
	f.chunks = append(f.chunks, []byte("PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n"))
	for range 2 * limit / len(chunk) {
		f.chunks = append(f.chunks, chunk)
	}
	g := NewGuardedConn(f, Limits{MaxQueryBuffer: limit})
	buf := make([]byte, 4096)
	n, err := g.Read(buf)
	if err != nil || string(buf[:n]) != "*1\r\n$4\r\nPING\r\n" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	var peak int
	for err == nil {
		n, err = g.Read(buf)
		if n > 0 {
			t.Fatalf("handed over %q of an incomplete request", buf[:n])
		}
		peak = max(peak, len(g.parser.buf))
	}
	var le *LimitError
	if !errors.As(err, &le) || !errors.Is(err, ErrQueryBufferLimit) || le.Size <= limit || le.Size > int64(limit+len(chunk)) {
		t.Fatalf("err = %v", err)
	}
	if !bytes.HasPrefix(le.Head, []byte("*3\r\n$3\r\nSET")) {
		t.Fatalf("query buffer head %q", le.Head)
	}
	if f.out.Len() != 0 {
		t.Fatalf("wrote %q to a client closed for its query buffer", f.out.String())
	}
	if peak > 2*limit {
		t.Fatalf("buffer grew to %d bytes for %d received (limit %d)", peak, le.Size, limit)
	}
	if _, err := g.Read(buf); !errors.Is(err, ErrQueryBufferLimit) || g.Ended() == nil {
		t.Fatalf("read after the limit: %v", err)
	}
}

// A bulk announced as 512 MiB costs memory as its bytes arrive: after 1 MiB
// of it the heap has not grown by anything like the announced size.
func TestGuardDoesNotAllocateTheAnnouncedSize(t *testing.T) {
	f := &slowConn{}
	f.chunks = append(f.chunks, []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\n"))
	for range 16 {
		f.chunks = append(f.chunks, bytes.Repeat([]byte("v"), 64<<10))
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	g := NewGuardedConn(f, Limits{})
	buf := make([]byte, 4096)
	for {
		if _, err := g.Read(buf); err != nil {
			break
		}
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Fatalf("allocated %d MiB for 1 MiB of an announced 512 MiB bulk", grown>>20)
	}
	if g.parser.Buffered() < 1<<20 {
		t.Fatalf("buffered %d bytes", g.parser.Buffered())
	}
}

// Write enforces client-output-buffer-limit: at the hard limit at once; at
// the soft limit once the socket has not taken enough for SoftFor.
func TestGuardOutputLimits(t *testing.T) {
	t.Run("hard", func(t *testing.T) {
		f := &fakeConn{}
		g := NewGuardedConn(f, Limits{})
		g.SetOutputLimit(OutputLimit{Hard: 100})
		if n, err := g.Write(make([]byte, 99)); n != 99 || err != nil {
			t.Fatalf("under the limit: %d, %v", n, err)
		}
		if _, err := g.Write(make([]byte, 100)); !errors.Is(err, ErrOutputBufferLimit) {
			t.Fatalf("at the limit: %v", err)
		}
		if f.out.Len() != 99 {
			t.Fatalf("wrote %d bytes", f.out.Len())
		}
	})
	t.Run("soft", func(t *testing.T) {
		server, client := net.Pipe()
		defer server.Close()
		defer client.Close()
		g := NewGuardedConn(server, Limits{})
		g.SetOutputLimit(OutputLimit{Soft: 1000, SoftFor: 100 * time.Millisecond})
		// A reader that takes all: no limit is hit.
		done := make(chan []byte)
		go func() {
			b := make([]byte, 5000)
			n, _ := io.ReadFull(client, b)
			done <- b[:n]
		}()
		if n, err := g.Write(make([]byte, 5000)); n != 5000 || err != nil {
			t.Fatalf("to a reader: %d, %v", n, err)
		}
		<-done
		// A reader that takes 2000 bytes, then stops: 3000 stay pending.
		go func() {
			b := make([]byte, 2000)
			n, _ := io.ReadFull(client, b)
			done <- b[:n]
		}()
		start := time.Now()
		n, err := g.Write(make([]byte, 5000))
		if !errors.Is(err, ErrOutputBufferLimit) || n > 4001 {
			t.Fatalf("to a stalled reader: %d, %v", n, err)
		}
		if d := time.Since(start); d < 100*time.Millisecond || d > 5*time.Second {
			t.Fatalf("closed after %v, want ~100ms", d)
		}
		<-done
	})
}

// A panic while reading or writing for a client ends that connection with
// a *PanicError (with the stack), not the process.
func TestGuardContainsPanics(t *testing.T) {
	for _, stage := range []string{"read", "write"} {
		f := &fakeConn{chunks: [][]byte{[]byte("PING\r\n")}}
		g := NewGuardedConn(f, Limits{})
		g.TestingPanic = func(s string, _ []byte) bool { return s == stage }
		var err error
		if stage == "read" {
			_, err = g.Read(make([]byte, 4096))
		} else {
			_, err = g.Write([]byte("+PONG\r\n"))
		}
		var pe *PanicError
		if !errors.As(err, &pe) || len(pe.Stack) == 0 {
			t.Fatalf("%s: %v", stage, err)
		}
		if _, err := g.Read(make([]byte, 10)); !errors.As(err, &pe) {
			t.Fatalf("%s: a later read gave %v", stage, err)
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
		// What reaches the server: the requests before the refused one.
		handed string
		err    string
	}{
		{"ten args", "*10\r\n" + strings.Repeat("$1\r\na\r\n", 10), false, "", ""},
		{"eleven args", eleven, false, "", "unauthenticated multibulk length"},
		{"big bulk", bigBulk, false, "", "unauthenticated bulk length"},
		{"after auth", auth + eleven + bigBulk, true, "", ""},
		{"after failed auth", auth + eleven, false, auth, "unauthenticated multibulk length"},
		{"inline has no limit", "ECHO " + strings.Repeat("d", 20000) + "\r\n", false, "", ""},
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
				if want, _ := canonical(t, []byte(tc.in), Limits{}); !errors.Is(err, io.EOF) || string(got) != want || f.out.Len() != 0 {
					t.Errorf("%s (reads of %d): got %d of %d bytes, wrote %q, %v", tc.name, size, len(got), len(tc.in), f.out.String(), err)
				}
				continue
			}
			want := "-ERR Protocol error: " + tc.err + "\r\n"
			if !errors.Is(err, ErrProtocol) || f.out.String() != want || string(got) != tc.handed {
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
		"*" + strings.Repeat("1", DefaultMaxInlineLen) + "\r\n", "*" + strings.Repeat("0", DefaultMaxInlineLen-1) + "\r\n",
		"*1\r\n$" + strings.Repeat("1", DefaultMaxInlineLen) + "\r\n",
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

// A Writer with a Limit drops everything once a reply would bring it to the
// limit, and stays empty until Reset, so one huge reply cannot grow it.
func TestWriterLimit(t *testing.T) {
	w := Writer{Limit: 64}
	w.BulkString("hello")
	mark := w.Len()
	if w.Overflowed() || string(w.Bytes()) != "$5\r\nhello\r\n" {
		t.Fatalf("under the limit: %q", w.Bytes())
	}
	for range 10 {
		w.Bulk(bytes.Repeat([]byte("x"), 20))
	}
	w.Int(1)
	if !w.Overflowed() || w.Len() != 0 {
		t.Fatalf("over the limit: %d bytes, overflowed %v", w.Len(), w.Overflowed())
	}
	w.Truncate(mark) // what the command layer does on an error: no panic
	w.Error("ERR internal error")
	if w.Len() != 0 {
		t.Fatalf("wrote %q after overflowing", w.Bytes())
	}
	w.Reset()
	if w.Overflowed() {
		t.Fatal("still overflowed after Reset")
	}
	w.OK()
	if string(w.Bytes()) != "+OK\r\n" {
		t.Fatalf("after Reset: %q", w.Bytes())
	}
}
