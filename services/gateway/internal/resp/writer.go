package resp

import (
	"math"
	"strconv"
)

// Writer accumulates the replies of one command. The zero value speaks RESP2.
// Methods never fail; the caller hands Bytes to the connection.
type Writer struct {
	buf []byte
	// Proto is 2 or 3, as negotiated by HELLO.
	Proto int
	// Limit, if positive, bounds the buffer (client-output-buffer-limit's
	// hard limit): a reply that would bring it to Limit bytes or more is
	// not written, everything buffered is dropped, and Overflowed reports
	// true until Reset or Release. The caller then closes the client, as
	// Redis does; meanwhile one huge reply (KEYS over a large keyspace,
	// MGET of many large values) cannot make the buffer grow without end.
	Limit int
	over  bool
	// Mem, if set, is the client's share of the budget over all clients
	// (maxmemory-clients): the buffer grows only as far as it grants, and
	// a refusal is an overflow (the client was evicted).
	Mem *ClientAccount
	res Reservation
	// OnError, if set, is told of every error reply written (INFO
	// errorstats), even one the caller then drops (CLIENT REPLY OFF).
	OnError func(msg string)
}

// room reports whether n more bytes may be written (see Limit and Mem).
func (w *Writer) room(n int) bool {
	if w.over {
		return false
	}
	need := len(w.buf) + n
	if w.Limit > 0 && need >= w.Limit {
		w.Overflow()
		return false
	}
	if need > cap(w.buf) && w.Mem != nil {
		return w.grow(need)
	}
	return true
}

// grow makes room for need bytes in a buffer whose memory Mem counts: it
// grows as append would (doubling, then by a quarter), only once Mem
// granted the new capacity.
func (w *Writer) grow(need int) bool {
	c := cap(w.buf)
	newCap := max(need, 2*c, 512)
	if c >= 1<<20 {
		newCap = max(need, c+c/4)
	}
	if !w.res.Fit(w.Mem, newCap) {
		w.Overflow()
		return false
	}
	nb := make([]byte, len(w.buf), newCap)
	copy(nb, w.buf)
	w.buf = nb
	return true
}

// Overflow marks the buffer as past Limit, as a reply too large for it
// would: a command that built its reply elsewhere found it too large.
func (w *Writer) Overflow() {
	w.over = true
	w.drop()
}

// drop lets the buffer go, and what Mem counted of it.
func (w *Writer) drop() {
	w.buf = nil
	w.res.Fit(w.Mem, 0)
}

// Raw appends already-encoded replies, within Limit.
func (w *Writer) Raw(b []byte) {
	if w.room(len(b)) {
		w.buf = append(w.buf, b...)
	}
}

// Overflowed reports whether a reply passed Limit (and was dropped).
func (w *Writer) Overflowed() bool { return w.over }

// Bytes returns the encoded replies.
func (w *Writer) Bytes() []byte { return w.buf }

// Reset empties the buffer, keeping its capacity and protocol.
func (w *Writer) Reset() { w.buf, w.over = w.buf[:0], false }

// Len is the number of bytes buffered.
func (w *Writer) Len() int { return len(w.buf) }

func (w *Writer) resp3() bool { return w.Proto >= 3 }

// The longest an integer or a float can print: "-9223372036854775808", and
// strconv's shortest 'f' form of a float64 (309 digits for the largest, 327
// characters for the smallest subnormal, sign included).
const (
	maxIntLen   = 20
	maxFloatLen = 350
)

// Simple writes a simple string (+OK).
func (w *Writer) Simple(s string) {
	if !w.room(len(s) + 3) {
		return
	}
	w.buf = append(w.buf, '+')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// OK writes +OK.
func (w *Writer) OK() {
	if w.room(5) {
		w.buf = append(w.buf, "+OK\r\n"...)
	}
}

// Error writes an error reply; msg must start with its code (ERR, WRONGTYPE, ...).
// Newlines would break the framing, so they become spaces, as Redis does.
func (w *Writer) Error(msg string) {
	if w.OnError != nil {
		w.OnError(msg)
	}
	if !w.room(len(msg) + 3) {
		return
	}
	w.buf = append(w.buf, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		w.buf = append(w.buf, c)
	}
	w.buf = append(w.buf, '\r', '\n')
}

// Int writes an integer.
func (w *Writer) Int(n int64) {
	if !w.room(maxIntLen + 3) {
		return
	}
	w.buf = append(w.buf, ':')
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}

// Bulk writes a bulk string.
func (w *Writer) Bulk(b []byte) {
	if !w.room(len(b) + maxIntLen + 5) {
		return
	}
	w.buf = append(w.buf, '$')
	w.buf = strconv.AppendInt(w.buf, int64(len(b)), 10)
	w.buf = append(w.buf, '\r', '\n')
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

// BulkString writes a bulk string.
func (w *Writer) BulkString(s string) {
	if !w.room(len(s) + maxIntLen + 5) {
		return
	}
	w.buf = append(w.buf, '$')
	w.buf = strconv.AppendInt(w.buf, int64(len(s)), 10)
	w.buf = append(w.buf, '\r', '\n')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// Verbatim writes a RESP3 verbatim string (format "txt"), or a bulk string to a
// RESP2 client. INFO and CLIENT INFO reply this way, like Redis.
func (w *Writer) Verbatim(s string) {
	if !w.resp3() {
		w.BulkString(s)
		return
	}
	if !w.room(len(s) + maxIntLen + 9) {
		return
	}
	w.buf = append(w.buf, '=')
	w.buf = strconv.AppendInt(w.buf, int64(len(s)+4), 10)
	w.buf = append(w.buf, "\r\ntxt:"...)
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// Null writes the null bulk string ($-1 in RESP2, _ in RESP3).
func (w *Writer) Null() {
	if !w.room(5) {
		return
	}
	if w.resp3() {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "$-1\r\n"...)
}

// NullArray writes the null array (*-1 in RESP2, _ in RESP3).
func (w *Writer) NullArray() {
	if !w.room(5) {
		return
	}
	if w.resp3() {
		w.buf = append(w.buf, "_\r\n"...)
		return
	}
	w.buf = append(w.buf, "*-1\r\n"...)
}

// Array starts an array of n elements.
func (w *Writer) Array(n int) { w.header('*', n) }

// Set starts a set of n elements (an array in RESP2).
func (w *Writer) Set(n int) {
	if w.resp3() {
		w.header('~', n)
		return
	}
	w.header('*', n)
}

// Map starts a map of n key/value pairs (a flat array of 2n in RESP2).
func (w *Writer) Map(n int) {
	if w.resp3() {
		w.header('%', n)
		return
	}
	w.header('*', 2*n)
}

// Double writes a floating point number (a bulk string in RESP2).
func (w *Writer) Double(f float64) {
	if !w.resp3() {
		w.Bulk(FormatFloat(nil, f))
		return
	}
	if !w.room(maxFloatLen + 3) {
		return
	}
	w.buf = append(w.buf, ',')
	switch {
	case math.IsInf(f, 1):
		w.buf = append(w.buf, "inf"...)
	case math.IsInf(f, -1):
		w.buf = append(w.buf, "-inf"...)
	default:
		w.buf = FormatFloat(w.buf, f)
	}
	w.buf = append(w.buf, '\r', '\n')
}

func (w *Writer) header(kind byte, n int) {
	if !w.room(maxIntLen + 3) {
		return
	}
	w.buf = append(w.buf, kind)
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	w.buf = append(w.buf, '\r', '\n')
}

// FormatFloat appends f the way Redis prints INCRBYFLOAT results: plain decimal,
// no exponent, no trailing zeros, shortest round-trip digits.
func FormatFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

// Truncate drops everything after the first n bytes (nothing, once the
// buffer overflowed and was dropped).
func (w *Writer) Truncate(n int) {
	if n < len(w.buf) {
		w.buf = w.buf[:n]
	}
}

// Release empties the buffer and drops it if a large reply grew it, so an idle
// connection does not pin megabytes.
func (w *Writer) Release() {
	w.over = false
	if cap(w.buf) > accountFree {
		w.drop()
		return
	}
	w.buf = w.buf[:0]
}

// AdoptArray writes an array header of n elements followed by body's
// bytes, taking body's buffer (and what Mem counts of it) when w is empty
// rather than copying it: a large reply built aside (EXEC's, KEYS') is not
// held twice. body is left empty.
func (w *Writer) AdoptArray(body *Writer, n int) {
	if w.Len() != 0 || w.over || body.over || w.Mem != body.Mem || body.Len() <= accountFree {
		w.Array(n)
		w.Raw(body.Bytes())
		body.Release()
		return
	}
	var hdr [maxIntLen + 3]byte
	h := append(hdr[:0], '*')
	h = strconv.AppendInt(h, int64(n), 10)
	h = append(h, '\r', '\n')
	size := body.Len()
	if w.Limit > 0 && size+len(h) >= w.Limit {
		w.Overflow()
		body.Release()
		return
	}
	if !body.room(len(h)) {
		w.Overflow()
		return
	}
	body.buf = body.buf[:size+len(h)]
	copy(body.buf[len(h):], body.buf[:size])
	copy(body.buf, h)
	w.drop()
	w.buf, w.res = body.buf, body.res
	body.buf, body.res = nil, Reservation{}
}

// TakeLarge hands over w's buffer and what Mem counts of it when it is
// large (past the part no account counts), leaving w empty; otherwise it
// returns nil and w keeps its buffer for the next replies. The event loop
// takes a large reply this way rather than copying it into its unsent
// bytes.
func (w *Writer) TakeLarge() ([]byte, Reservation) {
	if w.over || cap(w.buf) <= accountFree {
		return nil, Reservation{}
	}
	b, r := w.buf, w.res
	w.buf, w.res = nil, Reservation{}
	return b, r
}
