package hostile_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// startBudgetGateway starts a real nokv-redis (embedded) with a 32 MiB
// --maxmemory-clients and a 16 MiB --proto-max-bulk-len, plus args.
func startBudgetGateway(t *testing.T, args ...string) *target {
	t.Helper()
	bin := binaries(t)
	port, err := cluster.ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{backend: "embedded", addr: port.Addr, timeout: 10 * time.Second, slow: 60 * time.Second}
	port.Release()
	tg.gw = startProc(t, "nokv-redis", filepath.Join(bin, "nokv-redis"), append([]string{"--addr", tg.addr,
		"--workdir", filepath.Join(t.TempDir(), "gateway"), "--maxmemory-clients", "32mb",
		"--proto-max-bulk-len", "16mb"}, args...)...)
	tg.servers = []*proc{tg.gw}
	t.Cleanup(func() {
		tg.gw.stop(t)
		if t.Failed() {
			t.Logf("--- nokv-redis output (tail)\n%s", tg.gw.tail(3000))
		}
	})
	tg.waitReady(t)
	return tg
}

// dialMany opens n connections to addr, closed when the test ends.
func dialMany(t *testing.T, addr string, n int) []*conn {
	t.Helper()
	conns := make([]*conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := dial(addr, pingTimeout)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		conns = append(conns, c)
	}
	return conns
}

// Many clients that each stay within their own limits but do not read (or
// stop sending halfway through a large argument) cannot together make the
// gateway hold more than --maxmemory-clients: the real binary, its resident
// set measured. Each client here asks for 140 MB of reply with a 40-byte
// command (SRANDMEMBER with a negative count of a one-member set), 2.2 GB
// for the sixteen; or sends 15 MB of a 16 MB argument, 240 MB in all.
func TestClientsTogetherStayWithinMaxMemoryClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real server; skipped in -short mode")
	}
	tg := startBudgetGateway(t, "--client-query-buffer-limit", "32mb")
	tg.gw.rebase()
	tg.gw.startKiB = tg.gw.baseKiB
	if r := mustDo(t, tg.addr, "SADD", "hostile:one", "m"); r != ":1\r\n" {
		t.Fatalf("SADD: %q", r)
	}
	evicted := func() int {
		m := regexp.MustCompile(`evicted_clients:(\d+)`).FindStringSubmatch(mustDo(t, tg.addr, "INFO", "stats"))
		if m == nil {
			t.Fatal("INFO stats has no evicted_clients")
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}

	const clients = 16
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"SRANDMEMBER-140MB-reply-unread", encode("SRANDMEMBER", "hostile:one", "-20000000")},
		{"SET-15MB-of-16MB-argument", append([]byte("*3\r\n$3\r\nSET\r\n$7\r\nhostile\r\n$16000000\r\n"), bytes.Repeat([]byte("v"), 15_000_000)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := evicted()
			for _, c := range dialMany(t, tg.addr, clients) {
				go func() { _ = c.send(tc.data, 30*time.Second) }() // an evicted client's send fails
			}
			time.Sleep(2 * time.Second)
			// The peak stays within the suite's bound for one request.
			tg.check(t, fmt.Sprintf("%d clients x %s", clients, tc.name))
			got := evicted() - before
			if got < clients/2 {
				t.Errorf("%d of %d clients evicted, each holding or asking for far more than the 32 MiB budget allows together", got, clients)
			}
			if lines := strings.Count(tg.gw.Log.String(), "evicting client"); lines < got {
				t.Errorf("%d eviction log lines for %d evictions", lines, got)
			}
		})
	}
}

// Many MONITOR clients that do not read cannot make one large command
// cost its size once per monitor: each command's line is formatted once
// and shared by every monitor's stream, and the copies the server makes to
// send it count against --maxmemory-clients, which closes the monitors
// holding the most. Before, 100 monitors each copied every 8 MB SET into
// their own stream, 800 MB a command, before anything was sent or counted.
func TestUnreadMonitorsStayWithinMaxMemoryClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real server; skipped in -short mode")
	}
	tg := startBudgetGateway(t)

	const monitors = 100
	for _, c := range dialMany(t, tg.addr, monitors) {
		if err := c.send(encode("MONITOR"), pingTimeout); err != nil {
			t.Fatal(err)
		}
		if r, err := c.read(pingTimeout); err != nil || r != "+OK\r\n" {
			t.Fatalf("MONITOR: %q, %v", r, err)
		}
		// Then never read again.
	}
	tg.gw.rebase()
	tg.gw.startKiB = tg.gw.baseKiB
	value := strings.Repeat("v", 8<<20)
	for i := range 3 {
		if r := mustDo(t, tg.addr, "SET", fmt.Sprintf("hostile:mon:%d", i), value); r != "+OK\r\n" {
			t.Fatalf("SET: %.100q", r)
		}
	}
	time.Sleep(time.Second)
	tg.check(t, fmt.Sprintf("%d unread monitors x 3 SETs of 8 MB", monitors))
	if r := mustDo(t, tg.addr, "STRLEN", "hostile:mon:2"); r != fmt.Sprintf(":%d\r\n", len(value)) {
		t.Fatalf("STRLEN after the SETs: %q", r)
	}
}

// Commands that CLIENT PAUSE holds count against --maxmemory-clients: the
// event loop keeps a copy of each held command (the client's query buffer
// moves on), and sixteen clients whose 15 MB SETs wait for the pause to
// end must not hold 240 MB under a 32 MiB budget.
func TestPausedCommandsStayWithinMaxMemoryClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real server; skipped in -short mode")
	}
	tg := startBudgetGateway(t, "--client-query-buffer-limit", "32mb")
	tg.gw.rebase()
	tg.gw.startKiB = tg.gw.baseKiB
	if r := mustDo(t, tg.addr, "CLIENT", "PAUSE", "60000", "WRITE"); r != "+OK\r\n" {
		t.Fatalf("CLIENT PAUSE: %q", r)
	}
	const clients = 16
	set := encode("SET", "hostile:paused", strings.Repeat("v", 15_000_000))
	conns := dialMany(t, tg.addr, clients)
	for i, c := range conns {
		// One at a time: each whole SET is read (and held) before the next
		// client sends, so the query buffers alone never pass the budget.
		if err := c.send(set, 30*time.Second); err != nil {
			t.Logf("client %d: send: %v (evicted)", i+1, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	tg.check(t, fmt.Sprintf("%d clients x a 15 MB SET held by CLIENT PAUSE", clients))
	if r := mustDo(t, tg.addr, "CLIENT", "UNPAUSE"); r != "+OK\r\n" {
		t.Fatalf("CLIENT UNPAUSE: %q", r)
	}
	// The clients still connected get their SET run once the pause ends;
	// the evicted ones were closed (a read ends at once, not in a timeout).
	ran := 0
	for i, c := range conns {
		r, err := c.read(10 * time.Second)
		switch {
		case err == nil && r == "+OK\r\n":
			ran++
		case err == nil:
			t.Errorf("client %d: %q after the pause", i, r)
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Errorf("client %d: neither run nor closed 10 s after the pause", i)
		}
	}
	if ran == 0 || ran == clients {
		t.Errorf("%d of %d held SETs ran after the pause: want some (the budget's share) and not all", ran, clients)
	}
	if r := mustDo(t, tg.addr, "STRLEN", "hostile:paused"); r != ":15000000\r\n" {
		t.Errorf("STRLEN after the pause: %q", r)
	}
}
