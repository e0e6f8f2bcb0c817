package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

// A sorted set written through two raft gateways at once: ZINCRBY of
// shared members (every acknowledged increment counted exactly once), and
// a ZADD producer / ZPOPMIN consumer queue (every member added is popped
// or left exactly once, each reply in score order).
func TestZSetAcrossTwoRaftGateways(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	gws := []string{startGateway(t, c).Addr(), startGateway(t, c).Addr()}
	notWritten := func(r string) bool {
		return strings.HasPrefix(r, "-ERR too many concurrent writes") || strings.HasPrefix(r, "-ERR cluster unavailable")
	}
	const workers, perWorker = 4, 40
	var (
		mu       sync.Mutex
		acked    = map[string]int{}
		popped   = map[string]int{}
		failures []string
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conformance.DialRaw(t, gws[w%2])
			for i := 0; i < perWorker; {
				m := string(rune('a' + (w+i)%3))
				r := conn.Do("ZINCRBY", "counts", "1", m)
				switch {
				case r[0] == '$':
					i++
					mu.Lock()
					acked[m]++
					mu.Unlock()
				case !notWritten(r):
					fail("ZINCRBY: %q", r)
					return
				}
			}
		}()
	}
	// The queue: producers add members scored by their sequence number.
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conformance.DialRaw(t, gws[p])
			for i := 0; i < perWorker; {
				r := conn.Do("ZADD", "q", strconv.Itoa(i), fmt.Sprintf("p%d:%03d", p, i))
				switch {
				case r == ":1\r\n":
					i++
				case !notWritten(r):
					fail("ZADD: %q", r)
					return
				}
			}
		}()
	}
	for k := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conformance.DialRaw(t, gws[k])
			for range 4 * perWorker {
				r := conn.Do("ZPOPMIN", "q", "2")
				if r[0] != '*' {
					if !notWritten(r) {
						fail("ZPOPMIN: %q", r)
						return
					}
					continue
				}
				lines := strings.Split(strings.TrimSuffix(r, "\r\n"), "\r\n")
				// One reply's members come lowest score first.
				mu.Lock()
				prev := -1.0
				for j := 2; j+2 < len(lines); j += 4 {
					popped[lines[j]]++
					s, err := strconv.ParseFloat(lines[j+2], 64)
					if err != nil || s < prev {
						failures = append(failures, fmt.Sprintf("ZPOPMIN gave %q, not in score order", r))
					}
					prev = s
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d failures, first: %s", len(failures), failures[0])
	}
	conn := conformance.DialRaw(t, gws[0])
	total := 0
	for m, n := range acked {
		total += n
		if got := conn.Do("ZSCORE", "counts", m); got != fmt.Sprintf("$%d\r\n%d\r\n", len(strconv.Itoa(n)), n) {
			t.Fatalf("ZSCORE counts %s = %q after %d acknowledged increments", m, got, n)
		}
	}
	if total != workers*perWorker {
		t.Fatalf("%d increments acknowledged, want %d", total, workers*perWorker)
	}
	nPopped := len(popped)
	if nPopped == 0 {
		t.Fatalf("no ZPOPMIN popped anything; the queue check proves nothing")
	}
	left := conn.Do("ZRANGE", "q", "0", "-1")
	for _, line := range strings.Split(left, "\r\n") {
		if strings.HasPrefix(line, "p") {
			popped[line]++
		}
	}
	for p := range 2 {
		for i := range perWorker {
			m := fmt.Sprintf("p%d:%03d", p, i)
			if popped[m] != 1 {
				t.Fatalf("member %s popped or left %d times, want exactly once", m, popped[m])
			}
		}
	}
	if len(popped) != 2*perWorker {
		t.Fatalf("%d distinct members seen, want %d", len(popped), 2*perWorker)
	}
	t.Logf("%d increments through two gateways, all counted; %d members popped, %d left, each once", total, nPopped, len(popped)-nPopped)
}

// Pops from both ends of a sorted set on the raft backend step over a
// bounded number of keys each in the stores' MVCC scans (deleted keys
// wait there for GC), not the deletions earlier pops left; the highest
// member is found by forward seeks (command/zmarks.go).
func TestZPopStepsOnTheRaftBackend(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	srv := startGateway(t, c)
	n := 600
	if testing.Short() {
		n = 200
	}
	conformance.RunZPopSteps(t, srv.Addr(), n)
}
