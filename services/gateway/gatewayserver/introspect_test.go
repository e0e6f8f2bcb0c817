package gatewayserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// Byte-for-byte comparison with redis-server of the introspection commands'
// deterministic replies: CONFIG GET/SET/RESETSTAT/HELP and their errors,
// SLOWLOG, LATENCY, MEMORY USAGE, CLIENT KILL/PAUSE/UNPAUSE/REPLY/NO-EVICT
// errors and replies.
func introspectSteps() []txStep {
	long := strings.Repeat("v", 100)
	steps := []txStep{
		// CONFIG SET / GET of the settings that change at runtime, and errors.
		on(0, "CONFIG", "GET", "maxclients"), on(0, "CONFIG", "SET", "maxclients", "50"), on(0, "CONFIG", "GET", "maxclients"),
		on(0, "CONFIG", "SET", "maxclients", "0"), on(0, "CONFIG", "SET", "maxclients", "-1"), on(0, "CONFIG", "SET", "maxclients", "abc"),
		on(0, "CONFIG", "SET", "maxclients", "4294967296"), on(0, "CONFIG", "SET", "maxclients", "99999999999999999999"),
		on(0, "CONFIG", "SET", "maxclients", "9223372036854775807"), on(0, "CONFIG", "SET", "maxclients", "-9223372036854775808"),
		on(0, "CONFIG", "SET", "maxclients", "10000"), on(0, "CONFIG", "SET", "MAXCLIENTS", "10000"),
		on(0, "CONFIG", "SET", "slowlog-log-slower-than", "-2"), on(0, "CONFIG", "SET", "slowlog-log-slower-than", "x"),
		on(0, "CONFIG", "SET", "slowlog-log-slower-than", "9223372036854775807"), on(0, "CONFIG", "GET", "slowlog-log-slower-than"),
		on(0, "CONFIG", "SET", "slowlog-log-slower-than", "-1"), on(0, "CONFIG", "GET", "slowlog-log-slower-than"),
		on(0, "CONFIG", "SET", "slowlog-max-len", "-1"), on(0, "CONFIG", "SET", "slowlog-max-len", "0"),
		on(0, "CONFIG", "GET", "slowlog-max-len"), on(0, "CONFIG", "SET", "slowlog-max-len", "9223372036854775807"),
		on(0, "CONFIG", "SET", "slowlog-max-len", "9223372036854775808"), on(0, "CONFIG", "SET", "slowlog-max-len", "128"),
		on(0, "CONFIG", "SET", "latency-monitor-threshold", "-1"), on(0, "CONFIG", "SET", "latency-monitor-threshold", "100"),
		on(0, "CONFIG", "GET", "latency-monitor-threshold"), on(0, "CONFIG", "SET", "latency-monitor-threshold", "0"),
		on(0, "CONFIG", "SET", "foo", "bar"), on(0, "CONFIG", "SET", "databases", "2"), on(0, "CONFIG", "SET", "maxclients"),
		on(0, "CONFIG", "SET", "maxclients", "10", "maxclients", "11"), on(0, "CONFIG", "SET", "maxclients", "50", "foo", "bar"),
		on(0, "CONFIG", "SET", "maxclients", "50", "databases", "1"), on(0, "CONFIG", "SET", "databases", "1", "foo", "bar"),
		on(0, "CONFIG", "SET", "maxclients", "abc", "foo", "bar"), on(0, "CONFIG", "SET", "maxclients", "10", "slowlog-max-len"),
		on(0, "CONFIG", "SET", "maxclients", "20", "slowlog-max-len", "-5"), on(0, "CONFIG", "GET", "maxclients"),
		on(0, "CONFIG", "SET", "maxclients", "20", "slowlog-max-len", "5"), on(0, "CONFIG", "GET", "maxclients"),
		on(0, "CONFIG", "GET", "slowlog-max-len"), on(0, "CONFIG", "SET", "maxclients", "10000", "slowlog-max-len", "128"),
		on(0, "CONFIG", "SET", "requirepass", ""), on(0, "CONFIG", "GET", "requirepass"),
		on(0, "CONFIG", "GET"), on(0, "CONFIG", "GET", "nosuch*"), on(0, "CONFIG", "RESETSTAT", "x"), on(0, "CONFIG", "RESETSTAT"),
		on(0, "CONFIG", "HELP"), on(0, "CONFIG", "FOO"), on(0, "CONFIG"),
		// SLOWLOG errors and shapes (entries are compared in TestSlowlogMatchesRedisServer).
		on(0, "SLOWLOG", "HELP"), on(0, "SLOWLOG", "RESET"), on(0, "SLOWLOG", "LEN"), on(0, "SLOWLOG", "GET"),
		on(0, "SLOWLOG", "GET", "-1"), on(0, "SLOWLOG", "GET", "-2"), on(0, "SLOWLOG", "GET", "abc"),
		on(0, "SLOWLOG", "GET", "9223372036854775807"), on(0, "SLOWLOG", "GET", "9223372036854775808"),
		on(0, "SLOWLOG", "GET", "-9223372036854775808"), on(0, "SLOWLOG", "GET", "1", "2"),
		on(0, "SLOWLOG", "LEN", "x"), on(0, "SLOWLOG", "RESET", "x"), on(0, "SLOWLOG", "FOO"), on(0, "SLOWLOG"),
		// LATENCY, minimal: nothing is tracked, as with the threshold at 0.
		on(0, "LATENCY", "LATEST"), on(0, "LATENCY", "RESET"), on(0, "LATENCY", "RESET", "command"), on(0, "LATENCY", "HELP"),
		on(0, "LATENCY", "FOO"), on(0, "LATENCY", "LATEST", "x"), on(0, "LATENCY"),
		// MEMORY USAGE: Redis's figure for a freshly SET string.
		on(0, "MEMORY", "USAGE"), on(0, "MEMORY", "USAGE", "nokey"), on(0, "MEMORY", "HELP"), on(0, "MEMORY", "FOO"),
		on(0, "SET", "k", "v"), on(0, "MEMORY", "USAGE", "k"), on(0, "MEMORY", "USAGE", "k", "SAMPLES"),
		on(0, "MEMORY", "USAGE", "k", "SAMPLES", "x"), on(0, "MEMORY", "USAGE", "k", "SAMPLES", "-1"),
		on(0, "MEMORY", "USAGE", "k", "SAMPLES", "0"), on(0, "MEMORY", "USAGE", "k", "SAMPLES", "9223372036854775807"),
		on(0, "MEMORY", "USAGE", "k", "SAMPLES", "9223372036854775808"), on(0, "MEMORY", "USAGE", "k", "SAMPLES", "-9223372036854775808"),
		on(0, "MEMORY", "USAGE", "k", "FOO", "1"), on(0, "MEMORY", "USAGE", "k", "SAMPLES", "1", "SAMPLES", "2"),
		on(0, "MEMORY", "USAGE", "nokey", "SAMPLES", "x"),
		// CLIENT: errors, and KILL of no one.
		on(0, "CLIENT", "KILL", "1.2.3.4:5"), on(0, "CLIENT", "KILL", "ID", "999999"), on(0, "CLIENT", "KILL", "ID", "abc"),
		on(0, "CLIENT", "KILL", "ID", "0"), on(0, "CLIENT", "KILL", "ID", "-1"), on(0, "CLIENT", "KILL", "ID", "9223372036854775807"),
		on(0, "CLIENT", "KILL", "ID", "9223372036854775808"), on(0, "CLIENT", "KILL", "TYPE", "foo"),
		on(0, "CLIENT", "KILL", "TYPE", "master"), on(0, "CLIENT", "KILL", "TYPE", "pubsub"),
		on(0, "CLIENT", "KILL", "USER", "nobody"), on(0, "CLIENT", "KILL", "SKIPME", "maybe"), on(0, "CLIENT", "KILL", "foo", "bar"),
		on(0, "CLIENT", "KILL", "ADDR"), on(0, "CLIENT", "KILL", "ADDR", "1.2.3.4:5"), on(0, "CLIENT", "KILL", "LADDR", "1.2.3.4:5"),
		on(0, "CLIENT", "KILL", "ID", "1", "ID"), on(0, "CLIENT", "KILL"),
		on(0, "CLIENT", "PAUSE"), on(0, "CLIENT", "PAUSE", "abc"), on(0, "CLIENT", "PAUSE", "-1"), on(0, "CLIENT", "PAUSE", "10", "foo"),
		on(0, "CLIENT", "PAUSE", "99999999999999999999"), on(0, "CLIENT", "PAUSE", "-9223372036854775808"),
		on(0, "CLIENT", "PAUSE", "1.5"), on(0, "CLIENT", "PAUSE", "10", "write", "x"),
		on(0, "CLIENT", "PAUSE", "0", "WRITE"), on(0, "CLIENT", "PAUSE", "0"), on(0, "CLIENT", "UNPAUSE"), on(0, "CLIENT", "UNPAUSE", "x"),
		on(0, "CLIENT", "REPLY"), on(0, "CLIENT", "REPLY", "foo"), on(0, "CLIENT", "REPLY", "ON"), on(0, "CLIENT", "REPLY", "on", "x"),
		on(0, "CLIENT", "NO-EVICT", "maybe"), on(0, "CLIENT", "NO-EVICT", "on"), on(0, "CLIENT", "NO-EVICT", "OFF"),
		on(0, "CLIENT", "NO-EVICT"), on(0, "CLIENT", "FOO"), on(0, "CLIENT"),
		on(0, "MONITOR", "x"),
		// Refused inside MULTI as outside.
		on(0, "MULTI"), on(0, "CONFIG", "SET", "maxclients"), on(0, "CLIENT", "FOO"), on(0, "EXEC"),
		on(0, "MULTI"), on(0, "CONFIG", "SET", "slowlog-max-len", "7"), on(0, "CONFIG", "SET", "nosuch", "1"), on(0, "SLOWLOG", "LEN"),
		on(0, "MEMORY", "USAGE", "k"), on(0, "EXEC"), on(0, "CONFIG", "GET", "slowlog-max-len"),
		on(0, "CONFIG", "SET", "slowlog-max-len", "128"),
	}
	// MEMORY USAGE across key and value sizes and encodings.
	for _, n := range []int{1, 3, 7, 8, 15, 30, 31, 32, 40, 50, 100, 200, 300} {
		k := strings.Repeat("k", n)
		steps = append(steps, on(0, "SET", k, "v"), on(0, "MEMORY", "USAGE", k), on(0, "DEL", k))
	}
	for _, n := range []int{0, 1, 10, 20, 21, 30, 44, 45, 100, 200, 255, 256, 500, 1000, 5000, 65535, 65536, 100000} {
		steps = append(steps, on(0, "SET", "m", strings.Repeat("x", n)), on(0, "MEMORY", "USAGE", "m"))
	}
	for _, v := range []string{"0", "1", "-1", "9999", "10000", "123456789", "-0", "01", "+1", " 1",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"12345678901234567890", "1.5", long} {
		steps = append(steps, on(0, "SET", "m", v), on(0, "MEMORY", "USAGE", "m"))
	}
	return steps
}

func TestIntrospectionMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	runTxSteps(t, startServer(t, nil).Addr(), redisAddr, introspectSteps())
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		runTxSteps(t, startServer(t, nil).Addr(), startRedis(t), introspectSteps())
	})
}

// CLIENT REPLY OFF, SKIP and ON, errors included, compared as whole reply
// streams (a missing reply cannot be awaited).
func TestClientReplyMatchesRedisServer(t *testing.T) {
	cases := map[string]string{
		"off-on":        "CLIENT REPLY OFF\r\nSET a 1\r\nGET a\r\nNOSUCH\r\nGET\r\nCLIENT REPLY ON\r\nGET a\r\n",
		"skip":          "CLIENT REPLY SKIP\r\nGET a\r\nECHO x\r\nCLIENT REPLY SKIP\r\nNOSUCH\r\nECHO y\r\n",
		"skip-skip":     "CLIENT REPLY SKIP\r\nCLIENT REPLY SKIP\r\nECHO a\r\nECHO b\r\n",
		"off-skip":      "CLIENT REPLY OFF\r\nCLIENT REPLY SKIP\r\nECHO a\r\nCLIENT REPLY ON\r\nECHO b\r\n",
		"skip-on":       "CLIENT REPLY SKIP\r\nCLIENT REPLY ON\r\nECHO a\r\n",
		"bad":           "CLIENT REPLY MAYBE\r\nCLIENT REPLY\r\nECHO a\r\n",
		"multi":         "MULTI\r\nCLIENT REPLY OFF\r\nECHO a\r\nEXEC\r\nECHO b\r\nCLIENT REPLY ON\r\nECHO c\r\n",
		"skip-in-multi": "MULTI\r\nCLIENT REPLY SKIP\r\nECHO a\r\nEXEC\r\nECHO b\r\n",
	}
	redisAddr := startRedis(t)
	compareWire(t, cases, redisAddr, startServer(t, nil).Addr())
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		compareWire(t, cases, redisAddr, startServer(t, nil).Addr())
	})
}

// The same commands run on fresh servers give the same INFO errorstats,
// the same commandstats (calls, rejected and failed calls; durations
// masked) and the same total_commands_processed and total_error_replies:
// counting follows Redis's call() (a command queued by MULTI counts when
// EXEC runs it; one refused before running counts as rejected).
func TestInfoStatsMatchRedisServer(t *testing.T) {
	seq := [][]string{
		{"CONFIG", "RESETSTAT"}, {"GET"}, {"GET", "a", "b"}, {"NOSUCH"}, {"SET", "k", "v"}, {"INCR", "k"},
		{"MULTI"}, {"SET", "x", "1"}, {"GET"}, {"EXEC"},
		{"MULTI"}, {"INCR", "x"}, {"SET", "x", "y"}, {"INCR", "x"}, {"EXEC"},
		{"CLIENT", "FOO"}, {"CLIENT", "KILL"}, {"CLIENT"}, {"CONFIG", "SET", "a", "b"}, {"CLIENT", "ID"},
		{"MEMORY", "USAGE", "k"}, {"SLOWLOG", "LEN"}, {"EXEC"}, {"WATCH"}, {"SELECT", "5"},
	}
	mask := regexp.MustCompile(`usec=\d+,usec_per_call=[\d.]+`)
	stats := func(addr string) (cmdstats, errstats, totals string) {
		c := conformance.DialRaw(t, addr)
		for _, args := range seq {
			c.Do(args...)
		}
		errstats = c.Do("INFO", "errorstats")
		var lines []string
		for _, l := range strings.Split(mask.ReplaceAllString(c.Do("INFO", "commandstats"), "usec=X"), "\r\n") {
			if !strings.HasPrefix(l, "$") { // the bulk's length, which the mask changes
				lines = append(lines, l)
			}
		}
		slices.Sort(lines)
		for _, l := range strings.Split(c.Do("INFO", "stats"), "\r\n") {
			if strings.HasPrefix(l, "total_commands_processed:") || strings.HasPrefix(l, "total_error_replies:") {
				totals += l + "\n"
			}
		}
		return strings.Join(lines, "\n"), errstats, totals
	}
	check := func(t *testing.T, ours string) {
		redisAddr := startRedis(t)
		gc, ge, gt := stats(ours)
		wc, we, wt := stats(redisAddr)
		if ge != we {
			t.Errorf("INFO errorstats:\n nokv:  %q\n redis: %q", ge, we)
		}
		if gc != wc {
			t.Errorf("INFO commandstats:\n nokv:\n%s\n redis:\n%s", gc, wc)
		}
		if gt != wt {
			t.Errorf("INFO stats totals:\n nokv:  %q\n redis: %q", gt, wt)
		}
	}
	check(t, startServer(t, nil).Addr())
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		check(t, startServer(t, nil).Addr())
	})
}

// INFO's sections, for every way of naming them, are Redis 7.0's, in its
// order; the fields CPU and Stats have parse as Redis's.
func TestInfoSectionsMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	ours, theirs := conformance.DialRaw(t, srv.Addr()), conformance.DialRaw(t, redisAddr)
	headers := func(reply string) []string {
		var out []string
		for _, l := range strings.Split(reply, "\r\n") {
			if strings.HasPrefix(l, "# ") {
				out = append(out, l)
			}
		}
		return out
	}
	for _, args := range [][]string{{"INFO"}, {"INFO", "default"}, {"INFO", "all"}, {"INFO", "everything"},
		{"INFO", "server", "clients"}, {"INFO", "CPU"}, {"INFO", "cpu", "cpu"}, {"INFO", "keyspace", "server"},
		{"INFO", "default", "commandstats"}, {"INFO", "errorstats"}, {"INFO", "nosuch"}, {"INFO", "commandstats", "ALL"}} {
		got, want := headers(ours.Do(args...)), headers(theirs.Do(args...))
		if !slices.Equal(got, want) {
			t.Errorf("%q sections:\n nokv:  %q\n redis: %q", args, got, want)
		}
	}
	if got, want := ours.Do("INFO", "nosuch"), theirs.Do("INFO", "nosuch"); got != want {
		t.Errorf("INFO nosuch: %q, redis %q", got, want)
	}
	info := ours.Do("INFO", "everything")
	for _, re := range []string{`used_cpu_sys:\d+\.\d{6}\r\n`, `used_cpu_user:\d+\.\d{6}\r\n`,
		`used_cpu_sys_children:\d+\.\d{6}\r\n`, `used_cpu_user_children:\d+\.\d{6}\r\n`,
		`used_cpu_sys_main_thread:\d+\.\d{6}\r\n`, `used_cpu_user_main_thread:\d+\.\d{6}\r\n`,
		`total_commands_processed:\d+\r\n`, `instantaneous_ops_per_sec:\d+\r\n`, `total_error_replies:\d+\r\n`,
		`expired_keys:\d+\r\n`, `keyspace_hits:\d+\r\n`, `keyspace_misses:\d+\r\n`, `cmdstat_info:calls=\d+,`,
		`used_memory_human:[\d.]+[BKMG]\r\n`, `run_id:[0-9a-f]{40}\r\n`} {
		if !regexp.MustCompile(re).MatchString(info) {
			t.Errorf("INFO everything lacks %s:\n%s", re, info)
		}
	}
}

// instantaneous_ops_per_sec is sampled as Redis samples it: under a steady
// load it reports a rate, and it falls back to 0 once the load stops.
func TestInstantaneousOpsPerSec(t *testing.T) {
	srv := startServer(t, nil)
	c := conformance.DialRaw(t, srv.Addr())
	ops := func() int {
		m := regexp.MustCompile(`instantaneous_ops_per_sec:(\d+)`).FindStringSubmatch(c.Do("INFO", "stats"))
		n, _ := strconv.Atoi(m[1])
		return n
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.Do("PING")
	}
	if n := ops(); n < 50 {
		t.Errorf("instantaneous_ops_per_sec under load = %d, want a rate", n)
	}
	waitFor(t, "instantaneous_ops_per_sec back to about 0", func() bool {
		time.Sleep(500 * time.Millisecond)
		return ops() <= 10 // INFO itself runs twice a second
	})
}

// SLOWLOG with slowlog-log-slower-than 0 logs what Redis logs (EXEC not,
// the commands it runs yes; AUTH and HELLO's passwords redacted; rejected
// commands not), with Redis's truncation of arguments; entries compare
// equal but for their time, duration and client port.
func TestSlowlogMatchesRedisServer(t *testing.T) {
	seq := [][]string{
		{"CONFIG", "SET", "slowlog-log-slower-than", "0"}, {"CLIENT", "SETNAME", "n1"}, {"SET", "k", "v"},
		{"SET", "big", strings.Repeat("b", 200)}, {"SET", "edge", strings.Repeat("e", 128)},
		append([]string{"MSET"}, strings.Split(strings.Repeat("a b ", 20), " ")[:40]...),
		append([]string{"MSET"}, strings.Split(strings.Repeat("a b ", 16), " ")[:32]...),
		append([]string{"MSET"}, strings.Split(strings.Repeat("a b ", 15), " ")[:30]...),
		{"AUTH", "secret"}, {"AUTH", "user", "secret"}, {"HELLO", "2", "AUTH", "default", "pw", "SETNAME", "n2"},
		{"MULTI"}, {"SET", "x", "1"}, {"GET", "x"}, {"EXEC"}, {"NOSUCH"}, {"GET"}, {"CLIENT", "SETNAME", ""},
		{"SLOWLOG", "LEN"},
	}
	type entry struct {
		id   string
		args []string
		name string
	}
	entries := func(addr string) (string, []string) {
		c := conformance.DialRaw(t, addr)
		for _, args := range seq {
			c.Do(args...)
		}
		n := c.Do("SLOWLOG", "LEN")
		raw := c.Do("SLOWLOG", "GET", "-1")
		// Drop each entry's time, duration and client port.
		lines := strings.Split(raw, "\r\n")
		var out []string
		for i := 0; i < len(lines); i++ {
			l := lines[i]
			if l == "*6" && i+5 < len(lines) {
				out = append(out, l, lines[i+1], "time", "micros")
				i += 3
				continue
			}
			if strings.HasPrefix(l, "127.0.0.1:") {
				l = "127.0.0.1:port"
				out = out[:len(out)-1] // its length
			}
			out = append(out, l)
		}
		c.Do("SLOWLOG", "RESET")
		if got := c.Do("SLOWLOG", "LEN"); got != ":1\r\n" { // RESET itself is logged after it ran
			t.Errorf("SLOWLOG LEN after RESET = %q", got)
		}
		c.Do("CONFIG", "SET", "slowlog-max-len", "2")
		for range 5 {
			c.Do("PING")
		}
		if got := c.Do("SLOWLOG", "LEN"); got != ":2\r\n" {
			t.Errorf("SLOWLOG LEN with slowlog-max-len 2 = %q", got)
		}
		return n, out
	}
	check := func(t *testing.T, ours string) {
		redisAddr := startRedis(t)
		gn, got := entries(ours)
		wn, want := entries(redisAddr)
		if gn != wn {
			t.Errorf("SLOWLOG LEN %q, redis %q", gn, wn)
		}
		if !slices.Equal(got, want) {
			t.Errorf("SLOWLOG GET:\n nokv:  %q\n redis: %q", got, want)
		}
	}
	check(t, startServer(t, nil).Addr())
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		check(t, startServer(t, nil).Addr())
	})
}

// bothServers runs f against the event loop and against redcon's server.
func onBothServers(t *testing.T, mutate func(*gatewayserver.Config), f func(t *testing.T, addr string)) {
	t.Run("loop", func(t *testing.T) { f(t, startServer(t, mutate).Addr()) })
	t.Run("redcon", func(t *testing.T) {
		t.Cleanup(gatewayserver.ServeWithRedcon())
		f(t, startServer(t, mutate).Addr())
	})
}

// expectClosed fails unless the server closes c within a few seconds.
func expectClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: connection still open", what)
		}
		return
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// do sends one command on c and reads one reply (a line, or a bulk).
func do(t *testing.T, c net.Conn, rd *bufio.Reader, args ...string) string {
	t.Helper()
	if _, err := c.Write(conformance.Encode(args...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := rd.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if line[0] == '$' {
		n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
		if n >= 0 {
			b := make([]byte, n+2)
			if _, err := io.ReadFull(rd, b); err != nil {
				t.Fatal(err)
			}
			return string(b[:n])
		}
	}
	return strings.TrimRight(line, "\r\n")
}

// waitClientCount waits until CLIENT LIST shows n connections.
func waitClientCount(t *testing.T, c net.Conn, rd *bufio.Reader, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list := strings.TrimSpace(do(t, c, rd, "CLIENT", "LIST"))
		got := len(strings.Split(list, "\n"))
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CLIENT LIST shows %d connections, want %d:\n%s", got, n, list)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// CLIENT KILL closes the connections it names, by each filter and by the
// old address form, on both servers; the killer's own connection only with
// SKIPME no, after its reply.
func TestClientKillClosesConnections(t *testing.T) {
	onBothServers(t, nil, func(t *testing.T, addr string) {
		killer := dial(t, addr)
		kr := bufio.NewReader(killer)
		victim := func() (net.Conn, string, string) {
			c := dial(t, addr)
			rd := bufio.NewReader(c)
			id := strings.TrimPrefix(do(t, c, rd, "CLIENT", "ID"), ":")
			return c, id, c.LocalAddr().String()
		}
		v, id, _ := victim()
		if got := do(t, killer, kr, "CLIENT", "KILL", "ID", id); got != ":1" {
			t.Fatalf("CLIENT KILL ID = %q", got)
		}
		expectClosed(t, v, "killed by ID")
		v, _, vaddr := victim()
		if got := do(t, killer, kr, "CLIENT", "KILL", vaddr); got != "+OK" {
			t.Fatalf("CLIENT KILL addr = %q", got)
		}
		expectClosed(t, v, "killed by the old form")
		if got := do(t, killer, kr, "CLIENT", "KILL", vaddr); got != "-ERR No such client" {
			t.Fatalf("CLIENT KILL of a closed addr = %q", got)
		}
		v, _, vaddr = victim()
		if got := do(t, killer, kr, "CLIENT", "KILL", "ADDR", vaddr, "SKIPME", "yes"); got != ":1" {
			t.Fatalf("CLIENT KILL ADDR = %q", got)
		}
		expectClosed(t, v, "killed by ADDR")
		v1, _, _ := victim()
		v2, _, _ := victim()
		// A killed client's socket closes before the server forgets it
		// (redcon unregisters it on its own goroutine): count only once
		// the killed ones are gone.
		waitClientCount(t, killer, kr, 3)
		if got := do(t, killer, kr, "CLIENT", "KILL", "LADDR", addr, "TYPE", "normal", "USER", "default"); got != ":2" {
			t.Fatalf("CLIENT KILL LADDR TYPE USER = %q", got)
		}
		expectClosed(t, v1, "killed by LADDR")
		expectClosed(t, v2, "killed by LADDR")
		if got := do(t, killer, kr, "PING"); got != "+PONG" {
			t.Fatalf("the killer (SKIPME yes by default) got %q", got)
		}
		v, _, _ = victim()
		waitClientCount(t, killer, kr, 2)
		if got := do(t, killer, kr, "CLIENT", "KILL", "MAXAGE", "1000"); got != ":0" {
			t.Fatalf("CLIENT KILL MAXAGE 1000 = %q", got)
		}
		if got := do(t, killer, kr, "CLIENT", "KILL", "SKIPME", "no"); got != ":2" {
			t.Fatalf("CLIENT KILL SKIPME no = %q", got)
		}
		expectClosed(t, v, "killed with SKIPME no")
		expectClosed(t, killer, "the killer, SKIPME no")
		// A connection killed while its command is held by CLIENT PAUSE.
		a, b := dial(t, addr), dial(t, addr)
		ar, br := bufio.NewReader(a), bufio.NewReader(b)
		bid := strings.TrimPrefix(do(t, b, br, "CLIENT", "ID"), ":")
		do(t, a, ar, "CLIENT", "PAUSE", "20000", "WRITE")
		if _, err := b.Write(conformance.Encode("SET", "k", "v")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if got := do(t, a, ar, "CLIENT", "KILL", "ID", bid); got != ":1" {
			t.Fatalf("CLIENT KILL of a held client = %q", got)
		}
		expectClosed(t, b, "killed while held")
		do(t, a, ar, "CLIENT", "UNPAUSE")
		if got := do(t, a, ar, "GET", "k"); got != "$-1" {
			t.Fatalf("the held SET of a killed client ran: GET k = %q", got)
		}
	})
}

// CLIENT PAUSE WRITE holds other clients' writes until UNPAUSE while their
// reads are served; PAUSE ALL holds everything until its timeout; on both
// servers.
func TestClientPauseHoldsCommands(t *testing.T) {
	onBothServers(t, nil, func(t *testing.T, addr string) {
		a, b, c := dial(t, addr), dial(t, addr), dial(t, addr)
		ar, br, cr := bufio.NewReader(a), bufio.NewReader(b), bufio.NewReader(c)
		do(t, b, br, "SET", "k", "old")
		if got := do(t, a, ar, "CLIENT", "PAUSE", "30000", "WRITE"); got != "+OK" {
			t.Fatalf("CLIENT PAUSE = %q", got)
		}
		done := make(chan string, 1)
		go func() {
			// b pipelines a write and a read behind it: the read waits too.
			_, _ = b.Write(append(conformance.Encode("SET", "k", "new"), conformance.Encode("GET", "k")...))
			_ = b.SetReadDeadline(time.Now().Add(30 * time.Second))
			l1, _ := br.ReadString('\n')
			done <- l1
		}()
		for range 5 {
			if got := do(t, c, cr, "GET", "k"); got != "old" {
				t.Fatalf("a read during PAUSE WRITE = %q, want old", got)
			}
			time.Sleep(50 * time.Millisecond)
		}
		select {
		case l := <-done:
			t.Fatalf("a write ran during CLIENT PAUSE WRITE: %q", l)
		case <-time.After(300 * time.Millisecond):
		}
		if got := do(t, c, cr, "GET", "k"); got != "old" {
			t.Fatalf("GET k during the pause = %q", got)
		}
		start := time.Now()
		if got := do(t, a, ar, "CLIENT", "UNPAUSE"); got != "+OK" {
			t.Fatalf("CLIENT UNPAUSE = %q", got)
		}
		select {
		case l := <-done:
			if l != "+OK\r\n" {
				t.Fatalf("held SET replied %q", l)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the held write did not run after UNPAUSE")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the held write ran %v after UNPAUSE", d)
		}
		_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
		if l, _ := br.ReadString('\n'); l != "$3\r\n" {
			t.Fatalf("GET after the held SET: %q", l)
		}
		br.ReadString('\n')

		// PAUSE ALL: reads wait too, until the timeout.
		do(t, a, ar, "CLIENT", "PAUSE", "400", "ALL")
		start = time.Now()
		if got := do(t, c, cr, "GET", "k"); got != "new" {
			t.Fatalf("GET after PAUSE ALL = %q", got)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("a read during PAUSE ALL ran after %v, before the pause's end", d)
		}
		// A pause of 0 ms holds nothing.
		do(t, a, ar, "CLIENT", "PAUSE", "0")
		do(t, c, cr, "SET", "k", "x")
	})
}

// MONITOR streams every command other clients run, formatted as Redis
// formats it, to real redis-cli; MONITOR itself, CONFIG and other admin
// commands are not shown.
func TestMonitorWithRedisCli(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed")
	}
	onBothServers(t, nil, func(t *testing.T, addr string) {
		host, port, _ := net.SplitHostPort(addr)
		mon := exec.Command("redis-cli", "-h", host, "-p", port, "monitor")
		out, err := mon.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := mon.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mon.Process.Kill(); _ = mon.Wait() })
		lines := make(chan string, 100)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		first := <-lines
		if first != "OK" {
			t.Fatalf("redis-cli monitor printed %q first", first)
		}
		c := dial(t, addr)
		rd := bufio.NewReader(c)
		do(t, c, rd, "CONFIG", "GET", "maxclients")
		do(t, c, rd, "SET", "k", "v w")
		do(t, c, rd, "ECHO", "a\x01\n\"b\\")
		want := []*regexp.Regexp{
			regexp.MustCompile(`^\d{10}\.\d{6} \[0 127\.0\.0\.1:\d+\] "SET" "k" "v w"$`),
			regexp.MustCompile(`^\d{10}\.\d{6} \[0 127\.0\.0\.1:\d+\] "ECHO" "a\\x01\\n\\"b\\\\"$`),
		}
		for _, re := range want {
			select {
			case l := <-lines:
				if !re.MatchString(l) {
					t.Fatalf("redis-cli monitor printed %q, want %s", l, re)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("redis-cli monitor printed nothing for %s", re)
			}
		}
	})
}

// A MONITOR connection that does not read is closed once its stream passes
// its limit, and never slows the clients running commands.
func TestSlowMonitorDoesNotStallOthers(t *testing.T) {
	small := func(c *gatewayserver.Config) {
		c.MaxBulkLen = 1024
		c.ClientOutputBufferLimit = gatewayserver.OutputBufferLimit{Hard: 2 << 20}
	}
	onBothServers(t, small, func(t *testing.T, addr string) {
		mon := dial(t, addr)
		if _, err := mon.Write(conformance.Encode("MONITOR")); err != nil {
			t.Fatal(err)
		}
		mr := bufio.NewReader(mon)
		if l, _ := mr.ReadString('\n'); l != "+OK\r\n" {
			t.Fatalf("MONITOR: %q", l)
		}
		// mon reads nothing more. 40 MB of commands pass through.
		c := dial(t, addr)
		val := strings.Repeat("x", 1000)
		var req []byte
		for i := range 100 {
			req = append(req, conformance.Encode("SET", "k"+strconv.Itoa(i), val)...)
		}
		rd := bufio.NewReader(c)
		start := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 400 {
				if _, err := c.Write(req); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(120 * time.Second))
		for i := 0; i < 400*100; i++ {
			if l, err := rd.ReadString('\n'); err != nil || l != "+OK\r\n" {
				t.Fatalf("reply %d: %q %v", i, l, err)
			}
		}
		wg.Wait()
		t.Logf("40000 SETs of 1000 bytes with a stalled monitor took %v", time.Since(start))
		other := dial(t, addr)
		if got := do(t, other, bufio.NewReader(other), "PING"); got != "+PONG" {
			t.Fatalf("PING: %q", got)
		}
		expectClosed(t, mon, "the monitor fallen behind")
	})
}

// redis-cli --memkeys and --bigkeys report the sizes Redis would: MEMORY
// USAGE's figure for the largest key, asked of a real redis-server.
func TestRedisCliMemkeys(t *testing.T) {
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed")
	}
	redisAddr := startRedis(t)
	theirs := conformance.DialRaw(t, redisAddr)
	theirs.Do("SET", "biggest", strings.Repeat("x", 1000))
	want := strings.TrimSuffix(strings.TrimPrefix(theirs.Do("MEMORY", "USAGE", "biggest"), ":"), "\r\n")
	onBothServers(t, nil, func(t *testing.T, addr string) {
		c := conformance.DialRaw(t, addr)
		c.Do("SET", "small", "1")
		c.Do("SET", "biggest", strings.Repeat("x", 1000))
		c.Do("SET", "mid", strings.Repeat("y", 100))
		host, port, _ := net.SplitHostPort(addr)
		out, err := exec.Command("redis-cli", "-h", host, "-p", port, "--memkeys").CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli --memkeys: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), fmt.Sprintf(`Biggest string found '"biggest"' has %s bytes`, want)) {
			t.Fatalf("redis-cli --memkeys (want %s bytes for biggest):\n%s", want, out)
		}
		out, err = exec.Command("redis-cli", "-h", host, "-p", port, "--bigkeys").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "has 1000 bytes") {
			t.Fatalf("redis-cli --bigkeys: %v\n%s", err, out)
		}
		out, err = exec.Command("redis-cli", "-h", host, "-p", port, "info", "cpu").CombinedOutput()
		if err != nil || !regexp.MustCompile(`used_cpu_user:\d+\.\d{6}`).Match(out) {
			t.Fatalf("redis-cli info cpu: %v\n%s", err, out)
		}
	})
}
