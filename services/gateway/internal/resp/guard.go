package resp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"time"
)

// Limits bounds what one request may carry. Zero fields take Redis's defaults.
type Limits struct {
	// MaxBulkLen is the largest bulk argument accepted (proto-max-bulk-len).
	MaxBulkLen int64
	// MaxInlineLen bounds an inline (telnet-style) request line.
	MaxInlineLen int
	// MaxMultibulkLen bounds the argument count of one request.
	MaxMultibulkLen int64
	// MaxQueryBuffer bounds the bytes received from a client and not yet
	// run (client-query-buffer-limit): unparsed requests and every byte of
	// the request being received, so its arguments too. A client that
	// passes it is closed without a reply, as in Redis.
	MaxQueryBuffer int64
}

// Redis's defaults.
const (
	DefaultMaxBulkLen      = 512 << 20
	DefaultMaxInlineLen    = 64 << 10
	DefaultMaxMultibulkLen = 1<<31 - 1
	DefaultMaxQueryBuffer  = 1 << 30
)

func (l Limits) withDefaults() Limits {
	if l.MaxBulkLen <= 0 {
		l.MaxBulkLen = DefaultMaxBulkLen
	}
	if l.MaxInlineLen <= 0 {
		l.MaxInlineLen = DefaultMaxInlineLen
	}
	if l.MaxMultibulkLen <= 0 {
		l.MaxMultibulkLen = DefaultMaxMultibulkLen
	}
	if l.MaxQueryBuffer <= 0 {
		l.MaxQueryBuffer = DefaultMaxQueryBuffer
	}
	return l
}

// ErrProtocol is returned by a guarded connection's Read after it has told the
// client about a request that breaks the limits.
var ErrProtocol = errors.New("resp: protocol limit exceeded")

// Errors a guarded connection ends with when its client went past a limit.
// Like Redis, it closes the client without a reply; the server logs why.
var (
	ErrQueryBufferLimit  = errors.New("resp: client reached max query buffer length")
	ErrOutputBufferLimit = errors.New("resp: client overcame its output buffer limits")
	// ErrClientEvicted ends a client evicted to keep all clients' buffers
	// within maxmemory-clients (ClientMemory); the server logged it when it
	// evicted it.
	ErrClientEvicted = errors.New("resp: client evicted (maxmemory-clients)")
)

// LimitError tells which limit a client passed, and by how much.
type LimitError struct {
	Err   error // ErrQueryBufferLimit or ErrOutputBufferLimit
	Size  int64 // the bytes buffered (query) or pending (output)
	Limit int64
	Soft  bool   // the output limit passed is the soft one
	Head  []byte // the first bytes of the query buffer (a copy)
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: %d bytes, limit %d", e.Err, e.Size, e.Limit)
}

func (e *LimitError) Unwrap() error { return e.Err }

// PanicError is a panic raised while reading or writing for one client: it
// ends that client's connection only.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic serving a client: %v", e.Value) }

// OutputLimit is Redis's client-output-buffer-limit for normal clients.
type OutputLimit struct {
	// Hard closes a client as soon as its pending output reaches it (0: none).
	Hard int64
	// Soft closes a client whose pending output stays at or above it for
	// longer than SoftFor (0: none).
	Soft    int64
	SoftFor time.Duration
}

// GuardedConn sits between a client's socket and redcon's reader and writer,
// so that redcon's server treats clients as Redis does.
//
// Reads: requests are parsed by the same Parser as the event loop's, which
// follows Redis rule for rule (inline quoting, NUL bytes, empty "*0" and
// "*-1" requests, header quirks, limits), and redcon is handed only the
// requests that parser accepts, re-encoded as plain multibulk requests. A
// request that breaks the limits is refused at its header, before its
// payload is buffered (redcon would otherwise accumulate a 4 GB bulk); the
// error reply goes out after the replies of the requests before it, then
// the connection fails. A large bulk is buffered as its bytes arrive, never
// at the size its header announces, and a client whose buffered input
// passes Limits.MaxQueryBuffer is closed without a reply, as Redis closes one
// past client-query-buffer-limit.
//
// Large arguments (past MaxInlineLen) never go to redcon: its reader would
// copy each request into a buffer it keeps, at its largest, for the life
// of the connection (and into the command's Raw bytes), where nothing
// counts it against maxmemory-clients. redcon gets an empty argument in
// their place; the server's handler calls Restore with each command's
// arguments, in the order redcon hands them over, and gets the real ones,
// which stay in the parser's buffer (counted) until every command handed
// over has been handled: redcon reads again only then.
//
// Writes: the output limits of OutputLimit apply to what redcon (or the
// server) hands to Write, which is what the server holds for the client.
//
// A panic while reading or writing ends this connection with a *PanicError;
// other clients carry on.
type GuardedConn struct {
	net.Conn
	lim Limits
	out OutputLimit

	// Authenticated, when set, reports whether the client has authenticated
	// (once true, it must stay true); until it has, Redis's tighter limits
	// apply: at most 10 arguments of at most 16 KiB each. A request over
	// them is judged only when every request before it has run (the guard
	// hands those over first), so an AUTH pipelined ahead of a large request
	// counts, as it does in Redis.
	Authenticated func() bool
	// TestingPanic, if set, is asked before a read's bytes are parsed
	// ("read") and before a write ("write"); true makes the guard panic
	// there, as a bug would.
	TestingPanic func(stage string, b []byte) bool

	parser *Parser
	// segs are the re-encoded requests not yet handed over (headers and
	// small arguments, in hdr).
	segs [][]byte
	hdr  []byte
	mark int // hdr[mark:] is not yet in segs
	// large holds the large arguments of the requests handed over whose
	// commands have not been restored yet, oldest first; they alias the
	// parser's buffer, which is not refilled or released until they are.
	// emitted and restored count requests handed over and restored.
	large             []largeArgs
	emitted, restored uint64

	readErr   error  // what the socket returned with the last bytes, for after them
	violation string // protocol error to send on the next Read
	ended     error  // a limit passed or a panic: every later call returns it

	softSince time.Time // when pending output reached the soft limit (zero: below it)
}

// NewGuardedConn wraps c.
func NewGuardedConn(c net.Conn, lim Limits) *GuardedConn {
	lim = lim.withDefaults()
	return &GuardedConn{Conn: c, lim: lim, parser: NewParser(lim)}
}

// SetOutputLimit sets the output limits Write enforces.
func (g *GuardedConn) SetOutputLimit(o OutputLimit) { g.out = o }

// SetMemory makes the client's read buffer count against a, its share of
// the budget over all clients (set before the first Read).
func (g *GuardedConn) SetMemory(a *ClientAccount) { g.parser.Mem = a }

// Ended returns the limit error or panic that ended the connection, if any.
func (g *GuardedConn) Ended() error { return g.ended }

// Read implements net.Conn. It hands over whole requests, re-encoded; after a
// malformed request it hands over the requests before it, then on the next
// call writes the error to the client and fails.
//
// The caller (redcon's connection goroutine) reads only once it has run every
// complete request it holds; Read relies on that to judge the unauthenticated
// limits against the client's state after the requests before.
func (g *GuardedConn) Read(p []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			g.segs = nil
			g.ended = &PanicError{Value: v, Stack: debug.Stack()}
			n, err = 0, g.ended
		}
	}()
	for {
		if len(g.segs) > 0 {
			return g.deliver(p), nil
		}
		if g.ended != nil {
			return 0, g.ended
		}
		if g.violation != "" {
			return 0, g.reject()
		}
		if g.parse() || g.violation != "" {
			continue
		}
		if g.readErr != nil {
			return 0, g.readErr
		}
		if len(g.large) > 0 {
			g.keepLarge() // before the buffer is refilled or released
		}
		var got []byte
		if g.parser.Buffered() == 0 {
			// Nothing pending: read into the caller's buffer, so that an
			// idle connection blocked here holds no buffer of ours.
			g.parser.Release()
			n, err = g.Conn.Read(p)
			got = p[:n]
			g.parser.Feed(got)
		} else {
			// A request in progress: read straight into the parser, which
			// grows its buffer as the bytes arrive.
			n, err = g.parser.Fill(g.Conn) // (which may move the bytes buffered)
			got = g.parser.buf[g.parser.end-max(n, 0) : g.parser.end]
		}
		if n > 0 && g.TestingPanic != nil && g.TestingPanic("read", got) {
			panic("testing: panic while reading a client's requests")
		}
		if g.parser.Evicted() {
			g.parser.Reset()
			g.ended = ErrClientEvicted
			return 0, g.ended
		}
		if g.parser.OverQueryLimit() {
			g.ended = &LimitError{Err: ErrQueryBufferLimit, Size: int64(g.parser.Buffered()),
				Limit: g.lim.MaxQueryBuffer, Head: append([]byte(nil), g.parser.Peek(64)...)}
			g.parser.Reset()
			return 0, g.ended
		}
		if err != nil {
			g.readErr = err
		}
	}
}

// parse re-encodes the complete requests buffered into segs and reports
// whether there were any. A malformed request sets violation, unless it only
// breaks the limits before AUTH and requests before it are yet to run: it
// is judged again once they have.
func (g *GuardedConn) parse() bool {
	emitted := false
	for {
		g.parser.Unauthenticated = g.Authenticated != nil && !g.Authenticated()
		args, err := g.parser.Next()
		if err != nil {
			pe := err.(*ProtocolError)
			if !emitted || !pe.Unauthenticated() {
				g.violation = pe.Msg
			}
			break
		}
		if args == nil {
			break
		}
		g.emit(args)
		emitted = true
	}
	g.flushHdr()
	return emitted
}

// largeArgs are one request's arguments kept from redcon (see GuardedConn).
type largeArgs struct {
	seq  uint64 // the request's number among those handed over (emitted)
	at   []int  // their positions
	vals [][]byte
}

// emit appends args as a multibulk request. Arguments longer than any inline
// request are multibulk payloads in the parser's buffer: they are kept for
// Restore, redcon getting an empty argument instead; shorter ones are copied
// (an inline request's arguments live in space the parser reuses for the
// next one).
func (g *GuardedConn) emit(args [][]byte) {
	g.emitted++
	g.hdr = append(g.hdr, '*')
	g.hdr = strconv.AppendInt(g.hdr, int64(len(args)), 10)
	g.hdr = append(g.hdr, '\r', '\n')
	for i, a := range args {
		if len(a) > g.lim.MaxInlineLen {
			if n := len(g.large); n == 0 || g.large[n-1].seq != g.emitted {
				g.large = append(g.large, largeArgs{seq: g.emitted})
			}
			l := &g.large[len(g.large)-1]
			l.at, l.vals = append(l.at, i), append(l.vals, a)
			g.hdr = append(g.hdr, "$0\r\n\r\n"...)
			continue
		}
		g.hdr = append(g.hdr, '$')
		g.hdr = strconv.AppendInt(g.hdr, int64(len(a)), 10)
		g.hdr = append(g.hdr, '\r', '\n')
		g.hdr = append(g.hdr, a...)
		g.hdr = append(g.hdr, '\r', '\n')
	}
}

// Restore puts back the large arguments of the next command redcon hands
// over (args, which it modifies): the server's handler calls it once for
// every command, in order. They are valid until the handler returns for
// the last command redcon holds.
func (g *GuardedConn) Restore(args [][]byte) [][]byte {
	g.restored++
	if len(g.large) == 0 || g.large[0].seq != g.restored {
		return args
	}
	l := g.large[0]
	for i, at := range l.at {
		if at < len(args) {
			args[at] = l.vals[i]
		}
	}
	g.large[0] = largeArgs{}
	g.large = g.large[1:]
	if len(g.large) == 0 {
		g.large = nil
	}
	return args
}

// keepLarge copies the large arguments not restored yet out of the
// parser's buffer before it is refilled or released. redcon reads again
// only once it has run every command it was handed, so there are none;
// this keeps them valid should that ever change.
func (g *GuardedConn) keepLarge() {
	for _, l := range g.large {
		for i, v := range l.vals {
			l.vals[i] = bytes.Clone(v)
		}
	}
}

func (g *GuardedConn) flushHdr() {
	if len(g.hdr) > g.mark {
		g.segs = append(g.segs, g.hdr[g.mark:])
		g.mark = len(g.hdr)
	}
}

// deliver copies as much of segs as fits into p.
func (g *GuardedConn) deliver(p []byte) int {
	n, done := 0, 0
	for done < len(g.segs) && n < len(p) {
		c := copy(p[n:], g.segs[done])
		n += c
		if c < len(g.segs[done]) {
			g.segs[done] = g.segs[done][c:]
			break
		}
		g.segs[done] = nil
		done++
	}
	if done < len(g.segs) {
		g.segs = g.segs[done:]
	} else {
		// All handed over: the next request's segments reuse segs from
		// its start (slicing past each one as it went would leave no
		// room, and every request would allocate segs anew).
		g.segs = g.segs[:0]
		if cap(g.segs) > 1024 {
			g.segs = nil // a long pipeline's
		}
		if cap(g.hdr) > 64<<10 {
			g.hdr = nil
		}
		g.hdr, g.mark = g.hdr[:0], 0
		// Nothing but large arguments (restored later) aliases the parser's
		// buffer now.
		if len(g.large) == 0 {
			g.parser.Release()
		}
	}
	return n
}

func (g *GuardedConn) reject() error {
	var w Writer // which turns a CR or LF in the message into a space, as Redis does
	w.Error((&ProtocolError{g.violation}).ReplyError())
	_, _ = g.Conn.Write(w.Bytes())
	g.violation, g.ended = "", ErrProtocol
	g.parser.Reset()
	return ErrProtocol
}

// Write implements net.Conn, enforcing the output limits on b, which is
// what the server holds for the client: at or past the hard limit the
// client is closed at once; while what remains of b is at or past the soft
// limit, the socket must take enough of it within SoftFor of the moment the
// soft limit was reached, or the client is closed. An empty b is not
// written (redcon flushes an empty buffer after every batch).
func (g *GuardedConn) Write(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	defer func() {
		if v := recover(); v != nil {
			g.ended = &PanicError{Value: v, Stack: debug.Stack()}
			n, err = 0, g.ended
		}
	}()
	if g.ended != nil {
		return 0, g.ended
	}
	if g.TestingPanic != nil && g.TestingPanic("write", b) {
		panic("testing: panic while writing to a client")
	}
	size := int64(len(b))
	if g.out.Hard > 0 && size >= g.out.Hard {
		g.ended = &LimitError{Err: ErrOutputBufferLimit, Size: size, Limit: g.out.Hard}
		return 0, g.ended
	}
	if g.out.Soft <= 0 {
		return g.Conn.Write(b)
	}
	for {
		rest := int64(len(b) - n)
		if rest < g.out.Soft {
			if !g.softSince.IsZero() {
				g.softSince = time.Time{}
				_ = g.Conn.SetWriteDeadline(time.Time{})
			}
			m, err := g.Conn.Write(b[n:])
			return n + m, err
		}
		if g.softSince.IsZero() {
			g.softSince = time.Now()
			_ = g.Conn.SetWriteDeadline(g.softSince.Add(g.out.SoftFor))
		}
		// Enough to fall below the soft limit, within the deadline.
		m, err := g.Conn.Write(b[n : n+int(rest-g.out.Soft)+1])
		n += m
		if errors.Is(err, os.ErrDeadlineExceeded) {
			g.ended = &LimitError{Err: ErrOutputBufferLimit, Size: rest - int64(m), Limit: g.out.Soft, Soft: true}
			return n, g.ended
		}
		if err != nil {
			return n, err
		}
	}
}

// GuardListener wraps every accepted connection in a GuardedConn.
type GuardListener struct {
	net.Listener
	Limits Limits
	Output OutputLimit
	// TestingPanic is given to every GuardedConn.
	TestingPanic func(stage string, b []byte) bool
}

// Accept implements net.Listener.
func (l GuardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	g := NewGuardedConn(c, l.Limits)
	g.SetOutputLimit(l.Output)
	g.TestingPanic = l.TestingPanic
	return g, nil
}
