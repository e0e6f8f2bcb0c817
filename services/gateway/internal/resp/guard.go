package resp

import (
	"errors"
	"net"
)

// Limits bounds what one request may carry. Zero fields take Redis's defaults.
type Limits struct {
	// MaxBulkLen is the largest bulk argument accepted (proto-max-bulk-len).
	MaxBulkLen int64
	// MaxInlineLen bounds an inline (telnet-style) request line.
	MaxInlineLen int
	// MaxMultibulkLen bounds the argument count of one request.
	MaxMultibulkLen int64
}

// Redis's defaults.
const (
	DefaultMaxBulkLen      = 512 << 20
	DefaultMaxInlineLen    = 64 << 10
	DefaultMaxMultibulkLen = 1<<31 - 1
	maxHeaderLen           = 64 << 10
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
	return l
}

// ErrProtocol is returned by a guarded connection's Read after it has told the
// client about a request that breaks the limits.
var ErrProtocol = errors.New("resp: protocol limit exceeded")

type guardState uint8

const (
	stCommand   guardState = iota // at the first byte of a request
	stInline                      // inside an inline request line
	stCount                       // inside "*<count>\r\n"
	stBulkStart                   // expecting '$'
	stBulkLen                     // inside "$<len>\r\n"
	stBulkBody                    // inside a bulk payload and its CRLF
	stOff                         // malformed input redcon will reject; stop looking
)

// GuardedConn watches the request stream of one client and rejects a request that
// exceeds the limits as soon as its header arrives, before any of its payload is
// buffered: redcon would otherwise accumulate a 4 GB bulk in memory. The error
// reply is written in the Redis format and the connection is then failed.
//
// Requests that are malformed in other ways pass through untouched: redcon rejects
// them with the same errors Redis sends.
type GuardedConn struct {
	net.Conn
	lim Limits

	// Authenticated, when set, reports whether the client has authenticated
	// (once true, it must stay true); until it has, Redis's tighter limits
	// apply: at most 10 arguments of at most 16 KiB each. Read judges an
	// unauthenticated client's request only when every request before it has
	// run (it holds the rest back until then), so an AUTH pipelined ahead of
	// a large request counts, as it does in Redis.
	Authenticated func() bool
	pending       []byte // bytes read but held back, to be delivered next
	pendingErr    error  // the error of the read that brought pending

	st        guardState
	num       uint64 // the magnitude of the number being parsed in a header
	digits    int    // how many digits it has
	neg       bool
	cr        bool  // the header's '\r' has been seen
	bad       bool  // the header is not a number Redis would take
	lineLen   int   // bytes of the current header or inline line
	remaining int64 // payload bytes (plus CRLF) left in the current bulk
	bulksLeft int64 // bulks left in the current request

	violation string // error to report on the next Read
}

// NewGuardedConn wraps c.
func NewGuardedConn(c net.Conn, lim Limits) *GuardedConn {
	return &GuardedConn{Conn: c, lim: lim.withDefaults()}
}

// Read implements net.Conn. It delivers the bytes before a violation, then on the
// next call writes the error to the client and fails.
//
// The caller (redcon's connection goroutine) reads only once it has run every
// complete request it holds; Read relies on that to judge the unauthenticated
// limits against the client's state after the requests before.
func (g *GuardedConn) Read(p []byte) (int, error) {
	if g.violation != "" {
		return 0, g.reject()
	}
	var n int
	var err error
	if len(g.pending) > 0 {
		n = copy(p, g.pending)
		g.pending = g.pending[n:]
		if len(g.pending) == 0 {
			g.pending, err, g.pendingErr = nil, g.pendingErr, nil
		}
	} else {
		n, err = g.Conn.Read(p)
	}
	if n > 0 {
		at, msg, hold := g.scan(p[:n])
		switch {
		case msg != "":
			g.violation = msg
			if at == 0 {
				return 0, g.reject()
			}
			return at, nil
		case hold:
			// The requests before at may include the AUTH that lifts the
			// limits: deliver them alone and judge the rest once they ran.
			g.pending = append(append([]byte(nil), p[at:n]...), g.pending...)
			if err != nil {
				g.pendingErr = err
			}
			return at, nil
		}
	}
	return n, err
}

func (g *GuardedConn) reject() error {
	_, _ = g.Conn.Write([]byte("-ERR Protocol error: " + g.violation + "\r\n"))
	return ErrProtocol
}

// scan advances the state machine over b. On a violation it returns the offset of
// the request that caused it and the error text. hold asks Read to deliver only
// the bytes before at, and to scan the rest again once they have run.
func (g *GuardedConn) scan(b []byte) (at int, msg string, hold bool) {
	reqStart := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch g.st {
		case stOff:
			return 0, "", false
		case stCommand:
			reqStart = i
			g.lineLen = 0
			if c == '*' {
				g.st = stCount
				g.startHeader()
			} else if c != '\n' {
				g.st, g.lineLen = stInline, 1
			}
		case stInline:
			if c == '\n' {
				g.st = stCommand
				continue
			}
			g.lineLen++
			if g.lineLen > g.lim.MaxInlineLen {
				return reqStart, "too big inline request", false
			}
		case stCount, stBulkLen:
			if c == '\n' {
				if at, msg, hold := g.header(reqStart); msg != "" || hold {
					return at, msg, hold
				}
				continue
			}
			switch {
			case g.cr:
				g.bad = true // Redis's line ends at the '\r'; redcon wants "\r\n"
			case c == '\r':
				g.cr = true
				continue
			case c == '-' && g.lineLen == 0:
				g.neg = true
			case c >= '0' && c <= '9' && !g.bad:
				d := uint64(c - '0')
				if g.digits == 1 && g.num == 0 || g.num > (1<<63-d)/10 {
					g.bad = true // a leading zero, or out of int64's range
				}
				g.num = g.num*10 + d
				g.digits++
			default:
				// Redis's string2ll takes no '+', space or other byte; redcon's
				// Atoi would take a '+', so the guard must not let it pass.
				g.bad = true
			}
			g.lineLen++
			// Redis counts the '*' or '$' too (the parser's header does).
			if 1+g.lineLen > maxHeaderLen {
				if g.st == stCount {
					return reqStart, "too big mbulk count string", false
				}
				return reqStart, "too big bulk count string", false
			}
		case stBulkStart:
			if c != '$' {
				g.st = stOff
				continue
			}
			g.st = stBulkLen
			g.startHeader()
		case stBulkBody:
			skip := int64(len(b) - i)
			if skip > g.remaining {
				skip = g.remaining
			}
			g.remaining -= skip
			i += int(skip) - 1
			if g.remaining == 0 {
				g.bulksLeft--
				if g.bulksLeft == 0 {
					g.st = stCommand
				} else {
					g.st = stBulkStart
				}
			}
		}
	}
	return 0, "", false
}

// unauthenticated judges a request at reqStart that is over the limits for
// clients that have not authenticated. If requests before it came in the same
// read, they have not run yet, so the verdict waits for them.
//
// A client never loses its authentication, so one that has it needs no wait,
// and the pipelines of authenticated clients are delivered whole.
func (g *GuardedConn) unauthenticated(reqStart int, msg string) (int, string, bool) {
	switch {
	case g.Authenticated == nil || g.Authenticated():
		return 0, "", false
	case reqStart > 0:
		g.st = stCommand // the request is scanned again from its start
		return reqStart, "", true
	}
	return 0, msg, false
}

func (g *GuardedConn) startHeader() {
	g.num, g.digits, g.neg, g.cr, g.bad, g.lineLen = 0, 0, false, false, false, 0
}

// header judges a complete "*<count>" or "$<len>" line as Redis does: a
// number string2ll takes, then the limits.
func (g *GuardedConn) header(reqStart int) (int, string, bool) {
	valid := !g.bad && g.digits > 0 && !(g.neg && g.num == 0) && (g.neg && g.num <= 1<<63 || g.num < 1<<63)
	n := int64(g.num) // for -2^63 too, by wrapping
	if g.neg {
		n = -n
	}
	if g.st == stCount {
		if !valid || n > g.lim.MaxMultibulkLen {
			return reqStart, "invalid multibulk length", false
		}
		if n > unauthMaxMultibulk {
			if at, msg, hold := g.unauthenticated(reqStart, "unauthenticated multibulk length"); msg != "" || hold {
				return at, msg, hold
			}
		}
		if n <= 0 {
			g.st = stCommand
		} else {
			g.bulksLeft, g.st = n, stBulkStart
		}
		return 0, "", false
	}
	if !valid || n < 0 || n > g.lim.MaxBulkLen {
		return reqStart, "invalid bulk length", false
	}
	if n > unauthMaxBulk {
		if at, msg, hold := g.unauthenticated(reqStart, "unauthenticated bulk length"); msg != "" || hold {
			return at, msg, hold
		}
	}
	g.remaining, g.st = n+2, stBulkBody
	return 0, "", false
}

// GuardListener wraps every accepted connection in a GuardedConn.
type GuardListener struct {
	net.Listener
	Limits Limits
}

// Accept implements net.Listener.
func (l GuardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewGuardedConn(c, l.Limits), nil
}
