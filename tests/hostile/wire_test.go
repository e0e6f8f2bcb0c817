package hostile_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// A rawCase is a byte stream sent as is, on conns fresh connections (1 if 0).
// With idle the connections stay open, the request unfinished, while the
// servers are checked; otherwise whatever the server answers is read until it
// closes or falls quiet.
type rawCase struct {
	name  string
	data  []byte
	idle  bool
	conns int
	// async sends data without waiting for the server to take it all (a
	// server that stops reading a client that does not read its replies
	// would block the send).
	async bool
}

func testRaw(t *testing.T, tg *target, cases []rawCase) {
	for _, rc := range cases {
		t.Run(rc.name, func(t *testing.T) {
			skipKnown(t)
			what := fmt.Sprintf("%s (%s)", rc.name, short(string(rc.data)))
			n := max(rc.conns, 1)
			var conns []*conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range n {
				c, err := dial(tg.addr, pingTimeout)
				if err != nil {
					t.Fatalf("connect: %v", err)
				}
				conns = append(conns, c)
				// The server may hang up before reading it all: that is fine.
				if rc.async {
					go func() { _ = c.send(rc.data, 30*time.Second) }()
				} else {
					_ = c.send(rc.data, 10*time.Second)
				}
			}
			if rc.idle {
				time.Sleep(300 * time.Millisecond)
				if rc.async {
					time.Sleep(time.Second)
				}
				tg.check(t, what+", left unfinished")
				for _, c := range conns {
					c.Close()
				}
				time.Sleep(50 * time.Millisecond)
			} else {
				for _, c := range conns {
					got, closed := c.drain(200*time.Millisecond, 16<<20)
					if bytes.Contains(got, []byte("-ERR internal error")) {
						t.Errorf("%s: the gateway replied %s", what, short(string(got)))
					}
					t.Logf("reply %s, closed=%v", short(string(got)), closed)
				}
			}
			tg.check(t, what)
		})
	}
}

// testAnnounced announces huge counts and lengths and sends little or nothing
// of what they announce.
func testAnnounced(t *testing.T, tg *target) {
	some := func(n int) string { return strings.Repeat("x", n) }
	cases := []rawCase{
		{name: "multibulk-2^31-1", data: []byte("*2147483647\r\n"), idle: true},
		{name: "multibulk-2^31-1-some-args", data: []byte("*2147483647\r\n" + strings.Repeat("$1\r\na\r\n", 10000)), idle: true},
		{name: "multibulk-2^31", data: []byte("*2147483648\r\n")},
		{name: "multibulk-2^63-1", data: []byte("*9223372036854775807\r\n")},
		{name: "multibulk-2^64", data: []byte("*18446744073709551616\r\n")},
		{name: "multibulk-1M", data: []byte("*1048576\r\n"), idle: true},
		{name: "multibulk-1M-closed", data: []byte("*1048576\r\n$1\r\na\r\n")},
		{name: "bulk-512MiB-idle", data: []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc"), idle: true},
		{name: "bulk-512MiB-closed", data: []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870912\r\nabc")},
		{name: "bulk-512MiB-64KiB-sent-x16", data: []byte("*2\r\n$4\r\nECHO\r\n$536870912\r\n" + some(64<<10)), idle: true, conns: 16},
		{name: "bulk-512MiB-first-arg-x64", data: []byte("*2\r\n$536870912\r\n" + some(1024)), idle: true, conns: 64},
		{name: "bulk-512MiB+1", data: []byte("*2\r\n$4\r\nECHO\r\n$536870913\r\n")},
		{name: "bulk-2^31-1", data: []byte("*2\r\n$4\r\nECHO\r\n$2147483647\r\n")},
		{name: "bulk-2^63-1", data: []byte("*2\r\n$4\r\nECHO\r\n$9223372036854775807\r\n")},
		{name: "bulk-2^64", data: []byte("*2\r\n$4\r\nECHO\r\n$18446744073709551616\r\n")},
		{name: "bulk-negative", data: []byte("*2\r\n$4\r\nECHO\r\n$-5\r\n")},
		{name: "bulk-2^63-unframed", data: []byte("$9223372036854775808\r\n")},
		{name: "multibulk-1M-bulk-512MiB", data: []byte("*1048576\r\n$536870912\r\n" + some(4096)), idle: true},
		{name: "inline-60KiB-unterminated", data: []byte("ECHO " + some(60<<10)), idle: true},
		{name: "inline-1MiB-unterminated", data: []byte("ECHO " + some(1<<20))},
		{name: "inline-unbalanced-quote-60KiB", data: []byte("ECHO \"" + some(60<<10) + "\r\n")},
		{name: "partial-request-closed", data: []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab")},
		{name: "partial-header-idle", data: []byte("*3\r\n$3\r\nSET\r\n$1"), idle: true},
	}
	testRaw(t, tg, cases)
}

// testGarbage sends binary garbage, random and crafted.
func testGarbage(t *testing.T, tg *target) {
	rng := rand.New(rand.NewPCG(7, 11))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	// RESP-looking noise: tokens a parser has to judge.
	tokens := []string{"*", "$", "+", "-", ":", "\r", "\n", "\r\n", "0", "1", "-1", "9", "4294967296", "PING", "SET",
		" ", "\"", "'", "\\", "\x00", "\xff", "%", "~", ">", "_", "#", "!", "="}
	respish := func() []byte {
		var b []byte
		for range 1 + rng.IntN(200) {
			b = append(b, tokens[rng.IntN(len(tokens))]...)
		}
		return b
	}
	valid := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n")
	mutate := func() []byte {
		b := bytes.Clone(valid)
		for range 1 + rng.IntN(4) {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		return b
	}
	cases := []rawCase{
		{name: "nul-64KiB", data: make([]byte, 64<<10)},
		{name: "cr-64KiB", data: bytes.Repeat([]byte("\r"), 64<<10)},
		{name: "lf-64KiB", data: bytes.Repeat([]byte("\n"), 64<<10)},
		{name: "crlf-64Ki", data: bytes.Repeat([]byte("\r\n"), 64<<10)},
		{name: "high-bytes", data: bytes.Repeat([]byte{0x80, 0xfe, 0xff, 0xc0}, 4096)},
		{name: "negative-multibulks", data: []byte(strings.Repeat("*-1\r\n", 10000) + "PING\r\n")},
		{name: "empty-multibulks", data: []byte(strings.Repeat("*0\r\n", 10000) + "PING\r\n")},
		{name: "resp3-types-sent", data: []byte("%1\r\n+a\r\n+b\r\n~1\r\n:1\r\n>1\r\n_\r\n#t\r\n,1.5\r\n(1\r\n!3\r\nerr\r\n=5\r\ntxt:a\r\n")},
		{name: "valid-then-garbage", data: []byte("PING\r\n\x00\xff\r\n*1\r\n$4\r\nPING\r\n")},
		{name: "bulk-unterminated-crlf", data: []byte("*1\r\n$4\r\nPINGPINGPING\r\n*1\r\n$4\r\nPING\r\n")},
		{name: "dollar-first", data: []byte("$5\r\nhello\r\n")},
		{name: "inline-escapes", data: []byte("SET k \"\\x\r\nECHO \"\\xzz\\\r\nECHO '\\'\r\nSET \"\" \"\"\r\nGET \"\"\r\n")},
		{name: "inline-nul-args", data: []byte("SET \x00 \x00\r\nGET \x00\r\nDEL \x00\r\n")},
		{name: "many-empty-inline-lines", data: bytes.Repeat([]byte(" \t \r\n"), 20000)},
		{name: "lone-cr-in-headers", data: []byte("*1\r$4\rPING\r*1\r\n$4\rPING\r\n")},
	}
	for i := range 16 {
		cases = append(cases, rawCase{name: fmt.Sprintf("random-%02d", i), data: randBytes(1 + rng.IntN(64<<10))})
	}
	for i := range 32 {
		cases = append(cases, rawCase{name: fmt.Sprintf("resp-noise-%02d", i), data: respish()})
	}
	for i := range 32 {
		cases = append(cases, rawCase{name: fmt.Sprintf("mutated-%02d", i), data: mutate()})
	}
	testRaw(t, tg, cases)
}

// testSlowReader pipelines requests whose replies the client never reads:
// the server must not hold them all (services/gateway/README.md, Limits).
func testSlowReader(t *testing.T, tg *target) {
	if r := mustDo(t, tg.addr, "SET", "hostile:1MiB", strings.Repeat("v", 1<<20)); r != "+OK\r\n" {
		t.Fatalf("SET hostile:1MiB: %q", r)
	}
	gets := bytes.Repeat(encode("GET", "hostile:1MiB"), 2000)
	testRaw(t, tg, []rawCase{
		{name: "GET-1MiB-x2000-unread", data: gets, idle: true, async: true},
		{name: "GET-1MiB-x2000-unread-x4", data: gets, idle: true, async: true, conns: 4},
		{name: "PING-x500k-unread", data: bytes.Repeat([]byte("PING\r\n"), 500000), idle: true, async: true},
		{name: "ECHO-64KiB-x2000-unread", data: bytes.Repeat(encode("ECHO", strings.Repeat("e", 64<<10)), 2000), idle: true, async: true},
	})
	mustDo(t, tg.addr, "DEL", "hostile:1MiB")
}
