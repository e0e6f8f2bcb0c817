package resp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// chunkReader hands out its input size bytes per Read, then io.EOF.
type chunkReader struct {
	in   []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.in[:min(len(r.in), r.size)])
	r.in = r.in[n:]
	return n, nil
}

// parseAll feeds in to a parser size bytes per read and returns the commands
// (each joined with spaces, arguments quoted) and the protocol error, if any.
func parseAll(t testing.TB, in []byte, size int, lim Limits) ([]string, error) {
	t.Helper()
	p := NewParser(lim)
	r := &chunkReader{in: in, size: size}
	var got []string
	for {
		n, err := p.Fill(r)
		for n > 0 {
			args, perr := p.Next()
			if perr != nil {
				return got, perr
			}
			if args == nil {
				break
			}
			got = append(got, fmt.Sprintf("%q", args))
		}
		p.Release()
		if err != nil {
			if p.Buffered() > 0 {
				got = append(got, fmt.Sprintf("partial:%d", p.Buffered()))
			}
			return got, nil
		}
	}
}

func TestParserCommands(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", []string{`["GET" "k"]`}, ""},
		{"*1\r\n$0\r\n\r\n", []string{`[""]`}, ""},
		{"*0\r\n*-1\r\nPING\r\n", []string{`["PING"]`}, ""},
		{"PING\r\nPING\n  echo  a  b \r\n", []string{`["PING"]`, `["PING"]`, `["echo" "a" "b"]`}, ""},
		{"\r\n\n \t\r\nPING\r\n", []string{`["PING"]`}, ""},
		{`SET k "a b\x41\n\q\""` + "\r\n", []string{`["SET" "k" "a bA\nq\""]`}, ""},
		{`ECHO 'it\'s' a"b c"` + "\r\n", []string{`["ECHO" "it's" "ab c"]`}, ""},
		{`ECHO "\xzz"` + "\r\n", []string{`["ECHO" "xzz"]`}, ""},
		{"*1\r\n$4\r\nPINGxx", []string{`["PING"]`}, ""},
		{"*1\rX$4\r\nPING\r\n", []string{`["PING"]`}, ""},
		{"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\x00\xff\r\n", []string{`["ECHO" "\r\n\x00\xff"]`}, ""},
		{"*2\r\n$4\r\nECHO", []string{"partial:12"}, ""},
		{"PING\r\nECHO a\x00b\r\n", []string{`["PING"]`, "partial:10"}, ""},
		{`SET k "open` + "\r\n", nil, "unbalanced quotes in request"},
		{`ECHO "a"b` + "\r\n", nil, "unbalanced quotes in request"},
		{"ECHO 'a'b\r\n", nil, "unbalanced quotes in request"},
		{"PING\r\n*1\r\nfoo\r\n", []string{`["PING"]`}, "expected '$', got 'f'"},
		{"*1\r\nfoo", []string{"partial:7"}, ""}, // Redis waits for the line before judging it
		{"*1\r\n\xff\r\n", nil, "expected '$', got '\xff'"},
		{"*abc\r\n", nil, "invalid multibulk length"},
		{"*01\r\n", nil, "invalid multibulk length"},
		{"*+1\r\n", nil, "invalid multibulk length"},
		{"*1\r\n$-1\r\n", nil, "invalid bulk length"},
		{"*1\r\n$04\r\n", nil, "invalid bulk length"},
		{"*1\r\n$\r\n", nil, "invalid bulk length"},
		{"*1\r\n$99999999999999999999\r\n", nil, "invalid bulk length"},
		{"*1\r\n$11\r\n", nil, "invalid bulk length"}, // over the test's MaxBulkLen
		{"*3\r\n", nil, "invalid multibulk length"},   // over the test's MaxMultibulkLen
		{strings.Repeat("a", 100), nil, "too big inline request"},
		{"*" + strings.Repeat("1", DefaultMaxInlineLen+1), nil, "too big mbulk count string"},
		{"*1\r\n$" + strings.Repeat("1", DefaultMaxInlineLen+1), nil, "too big bulk count string"},
		// A line is judged by its length, complete or not, so a long line
		// that arrives in one read fails as it does when cut into many.
		{strings.Repeat("a", 65) + "\n", nil, "too big inline request"},
		{strings.Repeat("a", 63) + "\r\nPING\r\n", []string{`["` + strings.Repeat("a", 63) + `"]`, `["PING"]`}, ""},
		{"*" + strings.Repeat("x", DefaultMaxInlineLen) + "\r\n", nil, "too big mbulk count string"},
		{"*" + strings.Repeat("x", DefaultMaxInlineLen-1) + "\r\n", nil, "invalid multibulk length"},
	}
	lim := Limits{MaxBulkLen: 10, MaxInlineLen: 64, MaxMultibulkLen: 2}
	for _, tc := range cases {
		// Every read size must give the same result: requests straddle reads.
		for _, size := range []int{1, 2, 3, 7, 1 << 20} {
			got, err := parseAll(t, []byte(tc.in), size, lim)
			var pe *ProtocolError
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("%q (reads of %d): unexpected error %v", tc.in, size, err)
			case tc.err != "" && (!errors.As(err, &pe) || pe.Msg != tc.err):
				t.Errorf("%q (reads of %d): error %v, want %q", tc.in, size, err, tc.err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("%q (reads of %d):\n got  %q\n want %q", tc.in, size, got, tc.want)
			}
		}
	}
}

// Before AUTH, Redis allows at most 10 arguments of at most 16 KiB.
func TestParserUnauthenticatedLimits(t *testing.T) {
	cases := []struct{ in, err string }{
		{"*10\r\n", ""},
		{"*11\r\n", "unauthenticated multibulk length"},
		{"*1\r\n$16384\r\n", ""},
		{"*1\r\n$16385\r\n", "unauthenticated bulk length"},
	}
	for _, tc := range cases {
		p := NewParser(Limits{})
		p.Unauthenticated = true
		if _, err := p.Fill(&chunkReader{in: []byte(tc.in), size: len(tc.in)}); err != nil {
			t.Fatal(err)
		}
		_, err := p.Next()
		var pe *ProtocolError
		if tc.err == "" && err != nil || tc.err != "" && (!errors.As(err, &pe) || pe.Msg != tc.err) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
		}
	}
}

// A bulk's header alone does not make the parser allocate what it
// announces: the buffer grows with what arrives.
func TestParserGrowsWithData(t *testing.T) {
	p := NewParser(Limits{})
	in := "*1\r\n$536870912\r\nxx"
	if _, err := p.Fill(&chunkReader{in: []byte(in), size: len(in)}); err != nil {
		t.Fatal(err)
	}
	if args, err := p.Next(); args != nil || err != nil {
		t.Fatalf("got %q, %v", args, err)
	}
	if _, err := p.Fill(&chunkReader{in: []byte("x"), size: 1}); err != nil {
		t.Fatal(err)
	}
	if len(p.buf) > 2*growStep {
		t.Fatalf("buffer of %d bytes after %d bytes of a 512 MiB bulk arrived", len(p.buf), p.Buffered())
	}
}

func TestParserReplyError(t *testing.T) {
	e := &ProtocolError{"invalid bulk length"}
	if got := e.ReplyError(); got != "ERR Protocol error: invalid bulk length" {
		t.Fatalf("ReplyError = %q", got)
	}
}

// A bulk far bigger than one read arrives whole, in a buffer sized for it,
// and the pooled buffer comes back once the connection is idle.
func TestParserLargeBulk(t *testing.T) {
	val := bytes.Repeat([]byte("v"), 5<<20)
	in := append([]byte(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n", len(val))), val...)
	in = append(in, "\r\n*1\r\n$4\r\nPING\r\n"...)
	p := NewParser(Limits{})
	r := &chunkReader{in: in, size: 64 << 10}
	var cmds [][]string
	reads := 0
	for {
		n, err := p.Fill(r)
		if err != nil {
			break
		}
		reads++
		for n > 0 {
			args, perr := p.Next()
			if perr != nil {
				t.Fatal(perr)
			}
			if args == nil {
				break
			}
			var cmd []string
			for _, a := range args {
				cmd = append(cmd, string(a))
			}
			cmds = append(cmds, cmd)
		}
		p.Release()
	}
	if len(cmds) != 2 || cmds[0][0] != "SET" || cmds[0][2] != string(val) || cmds[1][0] != "PING" {
		t.Fatalf("got %d commands", len(cmds))
	}
	// The buffer grows by doubling as the bulk arrives, so nearly every
	// read fills it by the reader's whole 64 KiB.
	if want := len(in)/(64<<10) + 16; reads > want {
		t.Fatalf("%d reads for %d bytes, want at most %d", reads, len(in), want)
	}
	p.Release()
	if p.buf != nil || p.Buffered() != 0 {
		t.Fatalf("idle parser still holds a buffer of %d bytes", len(p.buf))
	}
}

// Commands of one read are handed out one at a time and their arguments
// alias the buffer; a request split over reads keeps what was parsed.
func TestParserResumes(t *testing.T) {
	p := NewParser(Limits{})
	feed := func(s string) {
		if _, err := p.Fill(&chunkReader{in: []byte(s), size: len(s)}); err != nil {
			t.Fatal(err)
		}
	}
	feed("*3\r\n$3\r\nSET\r\n$1\r\nk")
	if args, err := p.Next(); args != nil || err != nil {
		t.Fatalf("incomplete request gave %q, %v", args, err)
	}
	feed("\r\n$2\r\nvv\r\nPING\r\n")
	args, err := p.Next()
	if err != nil || fmt.Sprintf("%q", args) != `["SET" "k" "vv"]` {
		t.Fatalf("got %q, %v", args, err)
	}
	args, err = p.Next()
	if err != nil || fmt.Sprintf("%q", args) != `["PING"]` {
		t.Fatalf("got %q, %v", args, err)
	}
	if args, err := p.Next(); args != nil || err != nil {
		t.Fatalf("empty buffer gave %q, %v", args, err)
	}
}

// FuzzParser checks that how a stream is cut into reads never changes what
// it parses to, and that any stream of well-formed requests round-trips.
func FuzzParser(f *testing.F) {
	f.Add([]byte("*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"), uint8(3))
	f.Add([]byte(`SET k "a\x41" 'b\'c'`+"\r\n"), uint8(1))
	f.Add([]byte("*1\r\n$4\r\nPINGxx*0\r\n"), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		lim := Limits{MaxBulkLen: 1 << 10, MaxInlineLen: 1 << 10, MaxMultibulkLen: 64}
		whole, werr := parseAll(t, in, len(in)+1, lim)
		cut, cerr := parseAll(t, in, int(size)%16+1, lim)
		if fmt.Sprint(werr) != fmt.Sprint(cerr) || !slices.Equal(whole, cut) {
			t.Fatalf("%q: whole %q %v; in reads of %d: %q %v", in, whole, werr, int(size)%16+1, cut, cerr)
		}
		// Re-encode what parsed as multibulk requests: it must parse back the same.
		var enc []byte
		p := NewParser(lim)
		r := &chunkReader{in: in, size: len(in) + 1}
		var want []string
		if n, _ := p.Fill(r); n > 0 {
			for {
				args, err := p.Next()
				if err != nil || args == nil {
					break
				}
				want = append(want, fmt.Sprintf("%q", args))
				enc = fmt.Appendf(enc, "*%d\r\n", len(args))
				for _, a := range args {
					enc = fmt.Appendf(enc, "$%d\r\n%s\r\n", len(a), a)
				}
			}
		}
		again, err := parseAll(t, enc, int(size)%16+1, Limits{MaxBulkLen: 1 << 10, MaxMultibulkLen: 64})
		if err != nil || !slices.Equal(again, want) {
			t.Fatalf("%q re-encoded as %q parsed to %q %v, want %q", in, enc, again, err, want)
		}
	})
}
