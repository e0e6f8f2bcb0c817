package gatewayserver_test

import (
	"bufio"
	"bytes"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// clientMemBudget is the maxmemory-clients of the tests below: small enough
// that a few clients pass it, while each stays within its own limits.
const clientMemBudget = 16 << 20

func startClientMemServer(t *testing.T) (*gatewayserver.Server, *logBuffer) {
	return startLogged(t, func(c *gatewayserver.Config) {
		c.MaxBulkLen = 8 << 20
		c.ClientOutputBufferLimit = gatewayserver.OutputBufferLimit{Hard: 64 << 20}
		c.MaxMemoryClients = clientMemBudget
	})
}

// infoField reads one INFO field as an integer.
func infoField(t *testing.T, r *conformance.RawConn, section, field string) int64 {
	t.Helper()
	m := regexp.MustCompile(field + `:(-?\d+)`).FindStringSubmatch(r.Do("INFO", section))
	if m == nil {
		t.Fatalf("INFO %s has no %s", section, field)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// Clients that each ask for a reply within their own limit but do not read
// it cannot together make the server hold more than maxmemory-clients: one
// small command (SRANDMEMBER with a negative count) asks for megabytes of
// reply from a one-member set. Past the budget the client holding the most
// is evicted, as Redis 7 evicts; the client whose reply was growing is
// served in full, unless it is itself the largest.
func TestMaxMemoryClientsEvictsLargest(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, logs := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		if got := admin.Do("CONFIG", "GET", "maxmemory-clients"); got != "*2\r\n$17\r\nmaxmemory-clients\r\n$8\r\n16777216\r\n" {
			t.Fatalf("CONFIG GET maxmemory-clients: %q", got)
		}
		if got := admin.Do("SADD", "s", "m"); got != ":1\r\n" {
			t.Fatalf("SADD: %q", got)
		}
		const n = 1_400_000 // "$1\r\nm\r\n" each: 9.8 MB of reply
		reply := "*" + strconv.Itoa(n) + "\r\n" + strings.Repeat("$1\r\nm\r\n", n)

		// a asks and does not read: the server holds most of its reply.
		a := dialSmallWindow(t, srv.Addr())
		if _, err := a.Write(conformance.Encode("SRANDMEMBER", "s", "-"+strconv.Itoa(n))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a's reply held", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") > 6<<20 })
		// CLIENT LIST's tot-mem shows who holds it.
		most := int64(0)
		for _, m := range regexp.MustCompile(`tot-mem=(\d+)`).FindAllStringSubmatch(admin.Do("CLIENT", "LIST"), -1) {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			most = max(most, n)
		}
		if most < 6<<20 {
			t.Fatalf("CLIENT LIST: the largest tot-mem is %d while a holds its reply", most)
		}

		// b asks for as much and reads it: together past the budget, a
		// (the largest) goes, b gets everything.
		b := conformance.DialRaw(t, srv.Addr())
		if got := b.Do("SRANDMEMBER", "s", "-"+strconv.Itoa(n)); got != reply {
			t.Fatalf("b got %d bytes, want %d", len(got), len(reply))
		}
		if got := readUntilClosed(t, a); len(got) >= len(reply) {
			t.Fatalf("a, evicted, got its whole reply (%d bytes)", len(got))
		}
		if got := b.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("b after: %q", got)
		}

		// c asks for more than the budget by itself: it is the largest.
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(conformance.Encode("SRANDMEMBER", "s", "-3000000")); err != nil {
			t.Fatal(err)
		}
		if got := readUntilClosed(t, c); len(got) >= 3_000_000*7 {
			t.Fatalf("c got its whole 21 MB reply (%d bytes) under a 16 MiB budget", len(got))
		}
		if got := admin.Do("PING"); got != "+PONG\r\n" {
			t.Fatalf("admin after: %q", got)
		}
		if got := infoField(t, admin, "stats", "evicted_clients"); got != 2 {
			t.Fatalf("evicted_clients %d, want 2 (a, c)", got)
		}
		waitFor(t, "the memory released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
		if got := strings.Count(logs.String(), "evicting client"); got != 2 {
			t.Fatalf("%d eviction log lines, want 2:\n%s", got, logs.String())
		}
	})
}

// Requests count too: clients that each send most of a large argument
// (within proto-max-bulk-len and their query buffer limit) and stop cannot
// together pass the budget; those evicted are closed, the others finish.
func TestMaxMemoryClientsCountsRequests(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		const size, sent = 8_000_000, 7_000_000
		head := []byte("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$" + strconv.Itoa(size) + "\r\n")
		var conns []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			// An evicted client's write fails: expected.
			_, _ = c.Write(append(append([]byte{}, head...), bytes.Repeat([]byte("v"), sent)...))
			conns = append(conns, c)
			time.Sleep(100 * time.Millisecond)
		}
		if held := infoField(t, admin, "memory", "mem_clients_normal"); held > clientMemBudget {
			t.Fatalf("clients hold %d past the %d budget", held, clientMemBudget)
		}
		evicted := infoField(t, admin, "stats", "evicted_clients")
		if evicted < 1 {
			t.Fatal("three 7 MB requests under a 16 MiB budget: nobody evicted")
		}
		served := 0
		for i, c := range conns {
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			_, werr := c.Write(append(bytes.Repeat([]byte("v"), size-sent), "\r\n"...))
			buf := make([]byte, 16)
			k, rerr := c.Read(buf)
			switch {
			case werr == nil && rerr == nil && string(buf[:k]) == "+OK\r\n":
				served++
			case werr != nil || rerr != nil:
				// evicted: closed
			default:
				t.Fatalf("client %d: %q", i, buf[:k])
			}
		}
		if served < 1 || int64(served) > 3-evicted {
			t.Fatalf("%d served, %d evicted of 3", served, evicted)
		}
		if got := admin.Do("STRLEN", "k"); got != ":8000000\r\n" {
			t.Fatalf("STRLEN: %q", got)
		}
	})
}

// CLIENT SETINFO writes its +OK while holding the client's c.mu
// (defer c.mu.Unlock). If that write grows the reply buffer past the
// budget with this client the largest, Grow evicts it and calls its evict
// function, s.evicted -> Client.Kill -> c.mu.Lock: the goroutine deadlocks
// on its own mutex. Inside EXEC the body Writer holds earlier replies, so
// the +OK can be the write that grows it. On the event loop that stops the
// whole server.
func TestMaxMemoryClientsSelfEvictionUnderClientLock(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		val := string(bytes.Repeat([]byte("v"), 7_000_000))
		if got := admin.Do("SET", "k", val); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// EXEC's body: two 7 MB bulks fill it to 13 bytes short of its
		// capacity; +PONG and +OK leave 1; SETINFO's +OK grows it by a
		// quarter, to 17.5 MB: past the 16 MiB budget, the client alone.
		var req []byte
		for _, cmd := range [][]string{{"MULTI"}, {"GET", "k"}, {"GET", "k"}, {"PING"}, {"SET", "x", "y"},
			{"CLIENT", "SETINFO", "LIB-NAME", "x"}, {"EXEC"}} {
			req = append(req, conformance.Encode(cmd...)...)
		}
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		readUntilClosed(t, c) // evicted: closed
		p, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		_, _ = p.Write(conformance.Encode("PING"))
		_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		if n, err := p.Read(buf); err != nil || string(buf[:n]) != "+PONG\r\n" {
			t.Fatalf("server after the eviction: %q, %v", buf[:n], err)
		}
		done := make(chan string, 1)
		go func() { done <- admin.Do("CLIENT", "LIST") }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("CLIENT LIST hangs: the evicted client's c.mu is held forever")
		}
	})
}

// EXEC's reply is counted twice (its body Writer and then the copy
// into c.Out), so a lone client's transaction is evicted where the same
// commands pipelined without MULTI are served (KEYS has the same shape).
func TestMaxMemoryClientsCountsExecOnce(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		c := conformance.DialRaw(t, srv.Addr())
		val := string(bytes.Repeat([]byte("v"), 6_000_000))
		if got := c.Do("SET", "k", val); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		one := "$6000000\r\n" + val + "\r\n"
		// Pipelined, 12 MB of replies in one buffer: within 16 MiB.
		if got := c.Do("MGET", "k", "k"); got != "*2\r\n"+one+one {
			t.Fatalf("MGET: %d bytes", len(got))
		}
		c.Do("MULTI")
		c.Do("GET", "k")
		c.Do("GET", "k")
		if got := c.Do("EXEC"); got != "*2\r\n"+one+one {
			t.Fatalf("EXEC of the same 12 MB, alone on the server under a 16 MiB budget: got %d bytes (evicted)", len(got))
		}
	})
}

// A MULTI queue holds copies of every queued argument (up to
// client-query-buffer-limit per client): it counts, as Redis counts
// multi-mem, and a client queueing past the budget is evicted.
func TestMaxMemoryClientsCountsMultiQueue(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		val := string(bytes.Repeat([]byte("v"), 7_000_000))
		rd := bufio.NewReader(c)
		send := func(args ...string) (string, error) {
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Write(conformance.Encode(args...)); err != nil {
				return "", err
			}
			return rd.ReadString('\n')
		}
		if got, err := send("MULTI"); got != "+OK\r\n" {
			t.Fatalf("MULTI: %q, %v", got, err)
		}
		queued := 0
		for i := range 4 { // 28 MB under a 16 MiB budget
			got, err := send("SET", "k"+strconv.Itoa(i), val)
			if err != nil {
				break
			}
			if got != "+QUEUED\r\n" {
				t.Fatalf("SET %d: %q", i, got)
			}
			queued++
			if queued == 1 {
				if held := infoField(t, admin, "memory", "mem_clients_normal"); held < 6<<20 {
					t.Fatalf("one 7 MB command queued: mem_clients_normal %d", held)
				}
			}
		}
		if queued > 2 {
			t.Fatalf("%d commands of 7 MB queued under a 16 MiB budget", queued)
		}
		if got := infoField(t, admin, "stats", "evicted_clients"); got != 1 {
			t.Fatalf("evicted_clients %d", got)
		}
		waitFor(t, "the queue released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
	})
}

// CONFIG SET maxmemory-clients takes what Redis 7.0.15 takes, with its
// replies (each case checked against redis-server), and a lower budget
// evicts at once.
func TestConfigSetMaxMemoryClients(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, logs := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		const memErr = "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - argument must be a memory or percent value\r\n"
		const pctErr = "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100\r\n"
		for _, tc := range []struct{ set, reply, get string }{
			{"1gb", "+OK\r\n", "1073741824"},
			{"10%", "+OK\r\n", "10%"},
			{"0", "+OK\r\n", "0"},
			{"-1", memErr, "0"},
			{"100%", "+OK\r\n", "100%"},
			{"101%", pctErr, "100%"},
			{"-10%", memErr, "100%"},
			{"1.5gb", memErr, "100%"},
			{"abc", memErr, "100%"},
			{"", "+OK\r\n", "0"},
			{"9223372036854775807", "+OK\r\n", "9223372036854775807"},
			{"9223372036854775808", pctErr, "9223372036854775807"},
			{"18446744073709551616", "+OK\r\n", "1%"},
			{"0%", "+OK\r\n", "0"},
			{"16mb", "+OK\r\n", "16777216"},
		} {
			if got := admin.Do("CONFIG", "SET", "maxmemory-clients", tc.set); got != tc.reply {
				t.Fatalf("CONFIG SET maxmemory-clients %q: %q, want %q", tc.set, got, tc.reply)
			}
			want := "*2\r\n$17\r\nmaxmemory-clients\r\n$" + strconv.Itoa(len(tc.get)) + "\r\n" + tc.get + "\r\n"
			if got := admin.Do("CONFIG", "GET", "maxmemory-clients"); got != want {
				t.Fatalf("after %q: CONFIG GET %q, want %q", tc.set, got, want)
			}
		}
		// Off, a client holds 10 MB of unread reply; a 4 MiB budget
		// evicts it at once.
		admin.Do("CONFIG", "SET", "maxmemory-clients", "0")
		admin.Do("SADD", "s", "m")
		a := dialSmallWindow(t, srv.Addr())
		if _, err := a.Write(conformance.Encode("SRANDMEMBER", "s", "-1400000")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a's reply held", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") > 6<<20 })
		if got := admin.Do("CONFIG", "SET", "maxmemory-clients", "4mb"); got != "+OK\r\n" {
			t.Fatalf("CONFIG SET 4mb: %q", got)
		}
		if got := readUntilClosed(t, a); len(got) >= 1400000*7 {
			t.Fatalf("a got its whole reply after the budget went down")
		}
		waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "evicting client") })
	})
}

// On redcon's server a large request used to be copied into redcon's Reader
// buffer, which keeps its capacity for the life of the connection
// (rd.buf = rd.buf[:4096] reslices), and into cmd.Raw, none of it counted:
// the guard now keeps large arguments from redcon (resp.GuardedConn).
func TestRedconKeepsNoLargeRequest(t *testing.T) {
	t.Cleanup(gatewayserver.ServeWithRedcon())
	srv, _ := startClientMemServer(t)
	admin := conformance.DialRaw(t, srv.Addr())
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	val := string(bytes.Repeat([]byte("v"), 7_000_000))
	const n = 6
	for range n {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// An unknown command: nothing is stored, the reply is tiny.
		if _, err := c.Write(conformance.Encode("NOSUCHCMD", val)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 256)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(before)
	held := infoField(t, admin, "memory", "mem_clients_normal")
	t.Logf("%d idle clients after one 7 MB request each: heap +%d MB, mem_clients_normal %d", n, grown>>20, held)
	if grown > clientMemBudget && held < grown/2 {
		t.Fatalf("idle clients retain %d MB the budget (%d MB) does not count (counted %d)", grown>>20, clientMemBudget>>20, held)
	}
}

// Whatever way a client's connection ends or its buffers empty, what the
// budget counted of it goes back: QUIT with a MULTI queue, CLIENT KILL of a
// client holding an unread reply, a large KEYS reply read in full.
func TestMaxMemoryClientsReleasedOnEveryEnd(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		released := func(what string) {
			t.Helper()
			waitFor(t, what+": mem_clients_normal back to 0", func() bool {
				return infoField(t, admin, "memory", "mem_clients_normal") == 0
			})
		}
		held := func(what string) {
			t.Helper()
			waitFor(t, what+": counted", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") > 1<<20 })
		}
		val := string(bytes.Repeat([]byte("v"), 3_000_000))

		q := conformance.DialRaw(t, srv.Addr())
		q.Do("MULTI")
		q.Do("SET", "a", val)
		held("MULTI queue")
		if got := q.Do("QUIT"); got != "+OK\r\n" {
			t.Fatalf("QUIT: %q", got)
		}
		released("QUIT with a queue")

		admin.Do("SADD", "s", "m")
		k := dialSmallWindow(t, srv.Addr())
		if _, err := k.Write(conformance.Encode("SRANDMEMBER", "s", "-1000000")); err != nil {
			t.Fatal(err)
		}
		held("unread reply")
		if got := admin.Do("CLIENT", "KILL", "ADDR", k.LocalAddr().String()); got != ":1\r\n" {
			t.Fatalf("CLIENT KILL: %q", got)
		}
		released("CLIENT KILL")

		args := []string{"MSET"}
		for i := range 100_000 {
			args = append(args, "key:"+strconv.Itoa(i), "v")
		}
		admin.Do(args...)
		if got := admin.Do("KEYS", "key:*"); !strings.HasPrefix(got, "*100000\r\n") {
			t.Fatalf("KEYS: %.40q", got)
		}
		released("KEYS read")
	})
}

// A command that runs off the event loop (KEYS) is copied there, as the
// parser moves on, and the copy counts against maxmemory-clients while the
// command runs: many clients sending KEYS with patterns of megabytes over
// a large keyspace must fit the budget too.
func TestOffLoopCommandCounted(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		fillKeys(t, srv.Addr(), "key:", 300_000)
		admin := conformance.DialRaw(t, srv.Addr())
		pattern := "key:*" + strings.Repeat("z", 6<<20)
		const copyCounted = 6<<20 - 64<<10 // a buffer's first 64 KiB are free
		seen := int64(0)
		for try := 0; try < 5 && seen < copyCounted; try++ {
			c := conformance.DialRaw(t, srv.Addr())
			c.Send(conformance.Encode("KEYS", pattern))
			type reply struct {
				s   string
				err error
			}
			done := make(chan reply, 1)
			go func() {
				s, err := c.ReadErr()
				done <- reply{s, err}
			}()
			var r *reply
			for r == nil && seen < copyCounted {
				seen = max(seen, infoField(t, admin, "memory", "mem_clients_normal"))
				select {
				case got := <-done:
					r = &got // KEYS answered
				default:
				}
			}
			if r == nil {
				got := <-done
				r = &got
			}
			if r.err != nil || r.s != "*0\r\n" {
				t.Fatalf("KEYS: %.100q, %v", r.s, r.err)
			}
		}
		if seen < copyCounted {
			t.Fatalf("mem_clients_normal at most %d while KEYS with a 6 MiB pattern ran: its copy is not counted", seen)
		}
		waitFor(t, "the copy released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
	})
}

// A blocked command is kept (copied) for as long as it waits, and the copy
// counts against maxmemory-clients: clients blocking forever on keys of
// megabytes fit the budget too, and the one that would pass it is evicted.
func TestBlockedCommandCounted(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		key := strings.Repeat("k", 6<<20)
		a := conformance.DialRaw(t, srv.Addr())
		a.Send(conformance.Encode("BLPOP", key, "0"))
		waitFor(t, "the blocked command counted", func() bool {
			return infoField(t, admin, "memory", "mem_clients_normal") >= 6<<20-64<<10 // the first 64 KiB are free
		})
		// Two more 6 MiB blocked commands do not fit the 16 MiB budget
		// with the first: one of the clients is evicted (closed).
		b := conformance.DialRaw(t, srv.Addr())
		b.Send(conformance.Encode("BLPOP", key+"b", "0"))
		c := conformance.DialRaw(t, srv.Addr())
		c.Send(conformance.Encode("BLPOP", key+"c", "0"))
		waitFor(t, "a client evicted", func() bool { return infoField(t, admin, "stats", "evicted_clients") >= 1 })
		// An evicted client's memory counts until its connection is
		// closed, which redcon's server does from the client's goroutine.
		waitFor(t, "the clients within the budget", func() bool {
			return infoField(t, admin, "memory", "mem_clients_normal") <= clientMemBudget
		})
		a.Close()
		b.Close()
		c.Close()
		waitFor(t, "the copies released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
	})
}

// Watched keys count against maxmemory-clients: a client that WATCHes
// key after key of megabytes (no per-client limit bounds how many) is
// evicted once it holds the most past the budget, and UNWATCH gives the
// memory back.
func TestWatchedKeysCounted(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		a := conformance.DialRaw(t, srv.Addr())
		key := strings.Repeat("w", 4<<20)
		for _, k := range []string{key + "1", key + "2"} {
			if got := a.Do("WATCH", k); got != "+OK\r\n" {
				t.Fatalf("WATCH: %q", got)
			}
		}
		if held := infoField(t, admin, "memory", "mem_clients_normal"); held < 8<<20-64<<10 { // a buffer's first 64 KiB are free
			t.Fatalf("mem_clients_normal %d with 8 MiB of watched keys", held)
		}
		if got := a.Do("UNWATCH"); got != "+OK\r\n" {
			t.Fatalf("UNWATCH: %q", got)
		}
		if held := infoField(t, admin, "memory", "mem_clients_normal"); held != 0 {
			t.Fatalf("mem_clients_normal %d after UNWATCH", held)
		}
		for i := range 5 {
			a.Send(conformance.Encode("WATCH", key+strconv.Itoa(i)))
			if got, err := a.ReadErr(); err != nil || got != "+OK\r\n" {
				if i < 2 {
					t.Fatalf("WATCH %d: %q, %v", i, got, err)
				}
				break // closed: evicted
			}
		}
		waitFor(t, "the watcher evicted", func() bool { return infoField(t, admin, "stats", "evicted_clients") >= 1 })
		waitFor(t, "its keys released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
	})
}

// Client names and library attributes count against maxmemory-clients:
// one client's are bounded by proto-max-bulk-len, but many clients each
// naming itself with megabytes must fit the budget too.
func TestClientNamesCounted(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		name := strings.Repeat("n", 3<<20)
		a := conformance.DialRaw(t, srv.Addr())
		if got := a.Do("CLIENT", "SETNAME", name); got != "+OK\r\n" {
			t.Fatalf("CLIENT SETNAME: %q", got)
		}
		if got := a.Do("CLIENT", "SETINFO", "LIB-NAME", name); got != "+OK\r\n" {
			t.Fatalf("CLIENT SETINFO: %q", got)
		}
		if held := infoField(t, admin, "memory", "mem_clients_normal"); held < 6<<20-64<<10 {
			t.Fatalf("mem_clients_normal %d with 6 MiB of name and library name", held)
		}
		var others []*conformance.RawConn
		for range 4 {
			c := conformance.DialRaw(t, srv.Addr())
			others = append(others, c)
			c.Send(conformance.Encode("HELLO", "2", "SETNAME", name))
		}
		waitFor(t, "a client evicted", func() bool { return infoField(t, admin, "stats", "evicted_clients") >= 1 })
		// An evicted client's memory counts until its connection is
		// closed, which redcon's server does from the client's goroutine.
		waitFor(t, "the clients within the budget", func() bool {
			return infoField(t, admin, "memory", "mem_clients_normal") <= clientMemBudget
		})
		a.Close()
		for _, c := range others {
			c.Close()
		}
		waitFor(t, "the names released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
	})
}

// A client whose held command runs when the pause ends, and whose
// pipeline then starts a pause of its own and sends a write: that write is
// held again, and runs once that pause ends too (the loop's list of held
// clients once dropped it: no reply, ever, and its copy stayed counted).
// Found by review.
func TestHeldAgainWhileRetried(t *testing.T) {
	bothServers(t, func(t *testing.T) {
		srv, _ := startClientMemServer(t)
		admin := conformance.DialRaw(t, srv.Addr())
		b := conformance.DialRaw(t, srv.Addr())
		if got := admin.Do("CLIENT", "PAUSE", "300", "WRITE"); got != "+OK\r\n" {
			t.Fatalf("CLIENT PAUSE: %q", got)
		}
		var p bytes.Buffer
		p.Write(conformance.Encode("SET", "k1", "v"))
		p.Write(conformance.Encode("CLIENT", "PAUSE", "300", "WRITE"))
		p.Write(conformance.Encode("SET", "k2", strings.Repeat("v", 100)))
		b.Send(p.Bytes())
		for i := range 3 {
			if got, err := b.ReadErr(); err != nil || got != "+OK\r\n" {
				t.Fatalf("reply %d: %q, %v", i, got, err)
			}
		}
		if got := admin.Do("GET", "k2"); got != "$100\r\n"+strings.Repeat("v", 100)+"\r\n" {
			t.Fatalf("GET k2: %.40q", got)
		}
		waitFor(t, "the held copies released", func() bool { return infoField(t, admin, "memory", "mem_clients_normal") == 0 })
	})
}
