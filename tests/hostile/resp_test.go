package hostile_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// encode renders a command as a RESP array of bulk strings.
func encode(args ...string) []byte {
	n := 16
	for _, a := range args {
		n += len(a) + 16
	}
	b := make([]byte, 0, n)
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

// conn is a raw RESP connection.
type conn struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string, timeout time.Duration) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, br: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (c *conn) Close() error { return c.c.Close() }

// send writes b within timeout.
func (c *conn) send(b []byte, timeout time.Duration) error {
	_ = c.c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.c.Write(b)
	return err
}

// maxReply bounds what the suite reads as one reply.
const maxReply = 64 << 20

var errTooLong = errors.New("reply longer than the suite reads")

// read returns one whole RESP2/RESP3 reply, as sent, within timeout.
func (c *conn) read(timeout time.Duration) (string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(timeout))
	var sb strings.Builder
	err := readValue(c.br, &sb)
	return sb.String(), err
}

func readValue(br *bufio.Reader, sb *strings.Builder) error {
	line, err := br.ReadString('\n')
	sb.WriteString(line)
	if err != nil {
		return err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return fmt.Errorf("malformed reply line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad bulk length in %q", line)
		}
		if n == -1 {
			return nil
		}
		if sb.Len()+n > maxReply {
			return errTooLong
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		sb.Write(buf)
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return fmt.Errorf("bulk of %d bytes not followed by CRLF", n)
		}
		return nil
	case '*', '~', '%', '>', '|':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad aggregate length in %q", line)
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for range n {
			if err := readValue(br, sb); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown reply type in %q", line)
}

// drain reads whatever the server sends until it closes the connection, stays
// quiet for quiet, or has sent limit bytes; it reports whether the server
// closed.
func (c *conn) drain(quiet time.Duration, limit int) (got []byte, closed bool) {
	buf := make([]byte, 64<<10)
	for len(got) < limit {
		_ = c.c.SetReadDeadline(time.Now().Add(quiet))
		n, err := c.br.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return got, false
			}
			return got, true
		}
	}
	return got, false
}

// short renders a request or reply for a failure message.
func short(s string) string {
	if len(s) > 200 {
		return fmt.Sprintf("%q… (%d bytes)", s[:200], len(s))
	}
	return strconv.Quote(s)
}

// shortArgs renders a command for a failure message.
func shortArgs(args []string) string {
	var parts []string
	for i, a := range args {
		if i == 8 {
			parts = append(parts, fmt.Sprintf("… (%d arguments)", len(args)))
			break
		}
		if len(a) > 40 {
			a = fmt.Sprintf("%s…(%d bytes)", a[:20], len(a))
		}
		if a == "" || strings.ContainsAny(a, " \"\\\r\n\t\x00") || !isPrintable(a) {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r >= 0x7f {
			return false
		}
	}
	return true
}
