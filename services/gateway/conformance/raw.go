package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// RawConn speaks RESP byte for byte, for the tests where exact reply bytes matter.
type RawConn struct {
	t  testing.TB
	c  net.Conn
	rd *bufio.Reader
}

// DialRaw connects to addr.
func DialRaw(t testing.TB, addr string) *RawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &RawConn{t: t, c: c, rd: bufio.NewReader(c)}
}

// Close closes the connection.
func (r *RawConn) Close() { r.c.Close() }

// Encode renders args as a RESP array of bulk strings.
func Encode(args ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.Bytes()
}

// replyWait bounds Send and Read, which fail the test: a reply that never
// comes is a hang, but a loaded machine has taken over 10 s for a raft
// backend command (a CI rehearsal at load 26). ReadErr, which tests use to
// see that no reply comes, keeps 10 s.
const replyWait = 30 * time.Second

// Send writes raw bytes.
func (r *RawConn) Send(b []byte) {
	r.t.Helper()
	_ = r.c.SetWriteDeadline(time.Now().Add(replyWait))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// Do sends one command and returns its reply's exact bytes.
func (r *RawConn) Do(args ...string) string {
	r.t.Helper()
	r.Send(Encode(args...))
	return r.Read()
}

// Read returns the exact bytes of the next reply.
func (r *RawConn) Read() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(replyWait))
	var b bytes.Buffer
	if err := readReply(r.rd, &b); err != nil {
		r.t.Fatalf("read reply (got %q so far): %v", b.String(), err)
	}
	return b.String()
}

// ReadErr returns the next reply or the error that prevented reading it.
func (r *RawConn) ReadErr() (string, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b bytes.Buffer
	err := readReply(r.rd, &b)
	return b.String(), err
}

// readReply copies one RESP2/RESP3 value from rd to out.
func readReply(rd *bufio.Reader, out *bytes.Buffer) error {
	line, err := rd.ReadString('\n')
	out.WriteString(line)
	if err != nil {
		return err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return fmt.Errorf("malformed line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return nil
	case '$', '=', '!':
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("bad length in %q", line)
		}
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := readFull(rd, buf); err != nil {
			return err
		}
		out.Write(buf)
		return nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(body)
		if err != nil {
			return fmt.Errorf("bad count in %q", line)
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := readReply(rd, out); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown reply type in %q", line)
}

func readFull(rd *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := rd.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
