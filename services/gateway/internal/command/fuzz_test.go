package command

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
)

// validReply consumes exactly one RESP value from rd.
func validReply(rd *bufio.Reader) error {
	line, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("truncated reply %q: %w", line, err)
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return fmt.Errorf("malformed line %q", line)
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+', '-':
		if bytes.ContainsAny([]byte(body), "\r\n") {
			return fmt.Errorf("newline inside simple reply %q", line)
		}
		return nil
	case ':':
		_, err := strconv.ParseInt(body, 10, 64)
		return err
	case '_':
		return nil
	case ',':
		_, err := strconv.ParseFloat(body, 64)
		return err
	case '$', '=':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad bulk length %q", line)
		}
		if n == -1 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil || buf[n] != '\r' || buf[n+1] != '\n' {
			return fmt.Errorf("bad bulk payload: %v", err)
		}
		return nil
	case '*', '~', '%':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return fmt.Errorf("bad aggregate length %q", line)
		}
		if line[0] == '%' {
			n *= 2
		}
		for i := 0; i < n; i++ {
			if err := validReply(rd); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown reply type %q", line)
}

// FuzzExec feeds arbitrary argument vectors (NUL-separated) to the command layer
// over a real embedded store: whatever comes in, the server must not panic and
// must answer with exactly one well-formed RESP reply.
func FuzzExec(f *testing.F) {
	for _, seed := range []string{
		"SET\x00k\x00v\x00EX\x0010",
		"SET\x00k\x00v\x00PXAT\x00-1",
		"SET\x00k\x00v\x00NX\x00GET\x00KEEPTTL",
		"GETEX\x00k\x00PERSIST",
		"INCRBYFLOAT\x00k\x001e4000",
		"INCRBY\x00k\x00-9223372036854775808",
		"SETRANGE\x00k\x00100\x00x",
		"GETRANGE\x00k\x00-9223372036854775808\x009223372036854775807",
		"EXPIRE\x00k\x00-9223372036854775808\x00GT",
		"SCAN\x000\x00MATCH\x00[\x00COUNT\x001",
		"KEYS\x00*[a-\\",
		"MSET\x00a\x00b\x00c",
		"HELLO\x003\x00AUTH\x00default\x00x\x00SETNAME\x00n",
		"CLIENT\x00SETINFO\x00lib-name\x00x y",
		"COMMAND\x00INFO\x00get\x00nosuch",
		"CONFIG\x00GET\x00*",
		"INFO\x00everything",
		"RENAME\x00a\x00a",
		"",
	} {
		f.Add([]byte(seed))
	}
	store, err := embedded.Open(embedded.Options{Dir: f.TempDir(), Sync: embedded.SyncNo})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	e := New(store, Options{MaxBulkLen: 1 << 20, MaxClients: 10, SyncPolicy: "no", Addr: "127.0.0.1:6380"})
	f.Fuzz(func(t *testing.T, in []byte) {
		args := bytes.Split(in, []byte{0})
		if len(args) == 0 || len(args[0]) == 0 {
			return
		}
		c := e.NewClient("127.0.0.1:1", "127.0.0.1:6380")
		defer e.CloseClient(c)
		if err := e.Exec(context.Background(), c, args, true); err != nil {
			t.Fatalf("Exec(%q): %v", args, err)
		}
		out := c.Out.Bytes()
		rd := bufio.NewReader(bytes.NewReader(out))
		if err := validReply(rd); err != nil {
			t.Fatalf("Exec(%q) replied %q: %v", args, out, err)
		}
		if rest, _ := io.ReadAll(rd); len(rest) != 0 {
			t.Fatalf("Exec(%q) replied more than one value: %q", args, out)
		}
	})
}

// FuzzParseInt checks the strict integer parser against its definition: it
// accepts exactly the canonical decimal forms of int64 values.
func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"0", "-1", "01", "+1", " 1", "-0", "9223372036854775807", "-9223372036854775808", "9223372036854775808", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseInt([]byte(s))
		canonical := false
		if m, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(m, 10) == s {
			canonical = true
			if ok && n != m {
				t.Fatalf("parseInt(%q) = %d, want %d", s, n, m)
			}
		}
		if ok != canonical {
			t.Fatalf("parseInt(%q) ok=%v, canonical=%v", s, ok, canonical)
		}
	})
}
