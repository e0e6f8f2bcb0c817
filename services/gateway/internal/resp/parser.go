package resp

import (
	"bytes"
	"io"
	"sync"
)

// ProtocolError is a request Redis would reject as malformed. Msg is the text
// after "Protocol error: "; the server replies "-ERR Protocol error: <Msg>" and
// closes the connection once the commands before it are answered.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "Protocol error: " + e.Msg }

// ReplyError is the error reply for e, as Redis words it.
func (e *ProtocolError) ReplyError() string { return "ERR " + e.Error() }

// Unauthenticated reports whether the request broke only the limits for
// clients that have not authenticated: it may pass once the client has.
func (e *ProtocolError) Unauthenticated() bool {
	return e.Msg == errUnauthMultibulk || e.Msg == errUnauthBulk
}

const (
	errUnauthMultibulk = "unauthenticated multibulk length"
	errUnauthBulk      = "unauthenticated bulk length"
)

// readSize is how much a read asks for at least, as Redis's PROTO_IOBUF_LEN.
const readSize = 16 << 10

// bufPool recycles read buffers of readSize bytes: a connection holds one only
// while it has unparsed bytes, so idle connections cost no buffer.
var bufPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// Parser splits a client's byte stream into commands the way Redis does
// (processMultibulkBuffer and processInlineBuffer): the same requests are
// accepted, the same protocol errors reported, with the same limits. Unlike a
// reader that copies each command, it parses in place: the arguments Next
// returns alias the parser's buffer and are valid until the next Fill.
//
// The caller reads with Fill and then calls Next until it returns nil. A
// request that arrives over several reads stays in the buffer; the parser
// resumes where it stopped rather than starting over.
type Parser struct {
	lim Limits

	bufp       *[]byte // pooled buffer, or nil if buf was grown past readSize
	buf        []byte
	start, end int // unparsed bytes are buf[start:end]

	// The multibulk request at start, parsed so far. Offsets are relative to
	// start, so they survive moving the bytes to the front of the buffer.
	count int   // arguments the request announced; 0: no request in progress
	pos   int   // offset of the next bulk header
	offs  []int // [begin, end) offset pairs of the arguments parsed
	need  int   // bytes from start the request needs, once known (0: unknown)

	args    [][]byte
	scratch []byte // unquoted inline arguments

	// Mem, if set, is the client's share of the budget over all clients
	// (maxmemory-clients): the buffer grows only as far as it grants. A
	// refusal (the client was evicted) drops what was buffered and makes
	// Evicted true; the caller closes the client.
	Mem     *ClientAccount
	res     Reservation // the buffer's
	resIdx  Reservation // offs' and args' (a request of a million empty arguments)
	refused bool

	// Unauthenticated applies Redis's limits for clients that have not
	// authenticated yet (when a password is required): at most 10
	// arguments, each at most 16 KiB. The caller keeps it current.
	Unauthenticated bool
}

// Redis's limits before AUTH (processMultibulkBuffer).
const (
	unauthMaxMultibulk = 10
	unauthMaxBulk      = 16 << 10
)

// growStep bounds how far ahead of the bytes received the buffer grows for
// a large bulk: its header alone must not make the server allocate what it
// announces (512 MiB by default), only what actually arrives, in doublings.
const growStep = 1 << 20

// NewParser returns a parser enforcing lim (zero fields: Redis's defaults).
func NewParser(lim Limits) *Parser { return &Parser{lim: lim.withDefaults()} }

// Buffered reports how many bytes are waiting to be parsed.
func (p *Parser) Buffered() int { return p.end - p.start }

// Fill reads once from r into the buffer. It returns what r returned; n > 0
// means there may be commands for Next.
func (p *Parser) Fill(r io.Reader) (int, error) {
	if !p.makeRoom(0) {
		return 0, ErrClientEvicted
	}
	n, err := r.Read(p.buf[p.end:])
	if n > 0 {
		p.end += n
	}
	return n, err
}

// Feed appends b, read by the caller, to the bytes waiting to be parsed.
func (p *Parser) Feed(b []byte) {
	if !p.makeRoom(len(b)) {
		return
	}
	p.end += copy(p.buf[p.end:], b)
}

// Peek returns up to n of the bytes waiting to be parsed (for a log line);
// they alias the buffer.
func (p *Parser) Peek(n int) []byte { return p.buf[p.start:min(p.end, p.start+n)] }

// OverQueryLimit reports whether the bytes waiting to be parsed, which
// include every argument of a request not yet complete, are more than
// Limits.MaxQueryBuffer: the caller must close the client, as Redis does
// when a client's query buffer passes client-query-buffer-limit.
func (p *Parser) OverQueryLimit() bool { return int64(p.end-p.start) > p.lim.MaxQueryBuffer }

// Evicted reports whether the client was evicted to keep all clients'
// buffers within their budget (Mem): the caller must close it.
func (p *Parser) Evicted() bool { return p.refused || p.Mem.Evicted() }

// makeRoom ensures free space at the end of the buffer for the next read:
// at least readSize (and atLeast) bytes, more for a large request in
// progress (as much as arrived, growStep at least, never past what it
// needs). It never grows the buffer much past the query buffer limit: the
// caller closes a client whose bytes pass it. It reports false, having
// dropped every byte buffered, if Mem refused the memory.
func (p *Parser) makeRoom(atLeast int) bool {
	if p.refused {
		return false
	}
	// What the last parse grew of the argument index counts from this read
	// on: one read's worth late, and bounded by it.
	if !p.resIdx.Fit(p.Mem, 8*cap(p.offs)+24*cap(p.args)) {
		p.refuse()
		return false
	}
	if p.buf == nil {
		p.bufp = bufPool.Get().(*[]byte)
		p.buf = *p.bufp
	}
	used := p.end - p.start
	want := max(readSize, atLeast)
	if p.need > used {
		want = max(want, min(p.need-used, max(used, growStep)))
	}
	if len(p.buf)-p.end >= want {
		return true
	}
	// Move the partial request to the front, and grow if that is not enough.
	if len(p.buf)-used < want {
		// Doubling keeps the copying linear when data trickles in.
		size := max(2*len(p.buf), used+want)
		if lim := p.lim.MaxQueryBuffer; lim < int64(maxInt-readSize) && size > int(lim)+readSize {
			size = max(int(lim)+readSize, used+max(readSize, atLeast))
		}
		if !p.res.Fit(p.Mem, size) {
			p.refuse()
			return false
		}
		nb := make([]byte, size)
		copy(nb, p.buf[p.start:p.end])
		if p.bufp != nil {
			bufPool.Put(p.bufp) // (not dropBuffer: nb's reservation stays)
			p.bufp = nil
		}
		p.buf = nb
	} else {
		copy(p.buf, p.buf[p.start:p.end])
	}
	p.start, p.end = 0, used
	return true
}

const maxInt = int(^uint(0) >> 1)

// refuse drops everything buffered once Mem refused memory: the client is
// evicted, and the caller closes it.
func (p *Parser) refuse() {
	p.refused = true
	p.Reset()
	p.args, p.offs, p.scratch = nil, nil, nil
	p.resIdx.Fit(p.Mem, 0)
}

func (p *Parser) dropBuffer() {
	if p.bufp != nil {
		bufPool.Put(p.bufp)
		p.bufp = nil
	}
	p.buf = nil
	p.res.Fit(p.Mem, 0)
}

// Release returns the buffer to the pool when nothing is left to parse, so
// an idle connection holds no memory; Fill gets a new one.
func (p *Parser) Release() {
	if p.start == p.end {
		p.dropBuffer()
		p.start, p.end = 0, 0
		clear(p.args)
		// What one large request grew goes too.
		if cap(p.scratch) > 4<<10 {
			p.scratch = nil
		}
		if cap(p.args) > 64 {
			p.args, p.offs = nil, nil
			p.resIdx.Fit(p.Mem, 0)
		}
	}
}

// Reset drops every byte buffered and the buffer itself: the connection is
// done.
func (p *Parser) Reset() {
	p.start, p.end = 0, 0
	p.count, p.pos, p.need = 0, 0, 0
	p.offs = p.offs[:0]
	p.Release()
}

// Next returns the next complete command, or nil if the buffer holds none.
// A malformed request yields a *ProtocolError; the parser must not be used
// after it, except after one for which Unauthenticated reports true: that
// request is judged again by the next call, once Unauthenticated changed.
func (p *Parser) Next() ([][]byte, error) {
	for p.start < p.end {
		b := p.buf[p.start:p.end]
		if p.count == 0 {
			if b[0] != '*' {
				args, n, err := p.inline(b)
				if err != nil || n == 0 {
					return nil, err
				}
				p.consume(n)
				if len(args) == 0 {
					continue
				}
				return args, nil
			}
			n, next, err := p.header(b, 0, '*')
			if err != nil || next == 0 {
				return nil, err
			}
			if n > p.lim.MaxMultibulkLen {
				return nil, &ProtocolError{"invalid multibulk length"}
			}
			if n > unauthMaxMultibulk && p.Unauthenticated {
				return nil, &ProtocolError{errUnauthMultibulk}
			}
			if n <= 0 {
				p.consume(next) // an empty request: nothing to run
				continue
			}
			p.count, p.pos, p.offs = int(n), next, p.offs[:0]
		}
		for len(p.offs) < 2*p.count {
			if p.pos >= len(b) {
				return nil, nil
			}
			n, next, err := p.header(b, p.pos, '$')
			if err != nil || next == 0 {
				return nil, err
			}
			if n < 0 || n > p.lim.MaxBulkLen {
				return nil, &ProtocolError{"invalid bulk length"}
			}
			if n > unauthMaxBulk && p.Unauthenticated {
				return nil, &ProtocolError{errUnauthBulk}
			}
			// Redis skips the two bytes after the payload without looking.
			if end := next + int(n) + 2; end > len(b) {
				p.need = end
				return nil, nil
			}
			p.offs = append(p.offs, next, next+int(n))
			p.pos = next + int(n) + 2
		}
		args := p.args[:0]
		for i := 0; i < len(p.offs); i += 2 {
			args = append(args, b[p.offs[i]:p.offs[i+1]:p.offs[i+1]])
		}
		p.args = args
		p.consume(p.pos)
		return args, nil
	}
	return nil, nil
}

func (p *Parser) consume(n int) {
	p.start += n
	p.count, p.pos, p.need = 0, 0, 0
	p.offs = p.offs[:0]
}

// header parses the "*<n>\r\n" or "$<n>\r\n" line at b[at:], whose first
// byte is kind. next is the offset after it, 0 if it is incomplete. Like
// Redis, it looks for the '\r' and skips the byte after it unseen.
func (p *Parser) header(b []byte, at int, kind byte) (n int64, next int, err error) {
	cr := bytes.IndexByte(b[at:], '\r')
	// Redis finds the '\r' with strchr, which stops at a NUL.
	if cr >= 0 && bytes.IndexByte(b[at:at+cr], 0) >= 0 {
		cr = -1
	}
	// Redis only measures a line it has not yet seen the end of, so whether
	// it accepts a long one depends on how the line was cut into reads. A
	// line is judged by its length instead, so the answer never depends on
	// timing: one longer than the limit is refused even when it is complete.
	if cr < 0 || cr > DefaultMaxInlineLen {
		if cr >= 0 || len(b)-at > DefaultMaxInlineLen {
			if kind == '*' {
				return 0, 0, &ProtocolError{"too big mbulk count string"}
			}
			return 0, 0, &ProtocolError{"too big bulk count string"}
		}
		return 0, 0, nil
	}
	if at+cr+2 > len(b) {
		return 0, 0, nil
	}
	// Like Redis, the line is complete before its first byte is judged.
	if c := b[at]; c != kind {
		// The byte goes out raw, as Redis's %c puts it.
		return 0, 0, &ProtocolError{"expected '$', got '" + string([]byte{c}) + "'"}
	}
	n, ok := ParseInt(b[at+1 : at+cr])
	if !ok {
		if kind == '*' {
			return 0, 0, &ProtocolError{"invalid multibulk length"}
		}
		return 0, 0, &ProtocolError{"invalid bulk length"}
	}
	return n, at + cr + 2, nil
}

// inline parses a telnet-style request line at the start of b. n is the
// bytes it takes (0: the line is incomplete); args may be empty.
func (p *Parser) inline(b []byte) (args [][]byte, n int, err error) {
	nl := bytes.IndexByte(b, '\n')
	// Redis finds the newline with strchr, which stops at a NUL: a line with
	// a NUL in it never completes (until it is too big).
	if nl >= 0 && bytes.IndexByte(b[:nl], 0) >= 0 {
		nl = -1
	}
	// As in header, a line is judged by its length, not by the read that
	// brought its end.
	if nl < 0 || nl > p.lim.MaxInlineLen {
		if nl >= 0 || len(b) > p.lim.MaxInlineLen {
			return nil, 0, &ProtocolError{"too big inline request"}
		}
		return nil, 0, nil
	}
	line := b[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	args, ok := p.splitArgs(line)
	if !ok {
		return nil, 0, &ProtocolError{"unbalanced quotes in request"}
	}
	return args, nl + 1, nil
}

// endsArg reports whether an argument may end before line[i]: at the end
// of the line, a space or a NUL.
func endsArg(line []byte, i int) bool {
	return i >= len(line) || isSpace(line[i]) || line[i] == 0
}

// splitArgs splits line as Redis's sdssplitargs does: whitespace separates
// arguments; "double quotes" understand \xHH, \n, \r, \t, \b, \a and \<any>;
// 'single quotes' understand \'; a closing quote must be followed by a space
// or the end; a NUL byte ends the line.
func (p *Parser) splitArgs(line []byte) ([][]byte, bool) {
	if cap(p.scratch) < len(line) {
		p.scratch = make([]byte, 0, max(len(line), 64))
	}
	out := p.scratch[:0] // never outgrows line, so arguments may alias it
	args := p.args[:0]
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) || line[i] == 0 {
			p.args = args
			return args, true
		}
		begin := len(out)
		inq, insq, done := false, false, false
		for !done {
			var c byte
			if i < len(line) {
				c = line[i]
			}
			switch {
			case inq:
				switch {
				case c == 0:
					return nil, false
				case c == '\\' && i+3 < len(line) && line[i+1] == 'x' && isHex(line[i+2]) && isHex(line[i+3]):
					out = append(out, unhex(line[i+2])<<4|unhex(line[i+3]))
					i += 3
				case c == '\\' && i+1 < len(line):
					i++
					switch e := line[i]; e {
					case 'n':
						out = append(out, '\n')
					case 'r':
						out = append(out, '\r')
					case 't':
						out = append(out, '\t')
					case 'b':
						out = append(out, '\b')
					case 'a':
						out = append(out, '\a')
					default:
						out = append(out, e)
					}
				case c == '"':
					if !endsArg(line, i+1) {
						return nil, false // a closing quote must end the argument
					}
					done = true
				default:
					out = append(out, c)
				}
			case insq:
				switch {
				case c == 0:
					return nil, false
				case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
					i++
					out = append(out, '\'')
				case c == '\'':
					if !endsArg(line, i+1) {
						return nil, false // a closing quote must end the argument
					}
					done = true
				default:
					out = append(out, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					out = append(out, c)
				}
			}
			if i < len(line) && c != 0 {
				i++ // a NUL ends the line: stay on it
			}
		}
		args = append(args, out[begin:len(out):len(out)])
	}
}

// isSpace is C's isspace in the "C" locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// ParseInt is Redis's string2ll, which both the protocol and the commands
// use for integers: an optional '-', then digits without a leading zero
// (except "0" itself), nothing else (no spaces, no '+'), within int64.
func ParseInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	if len(s) == 1 && s[0] == '0' {
		return 0, true
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) == 0 || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}
