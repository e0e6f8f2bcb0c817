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

// A list used as a queue through two raft gateways at once: producers
// RPUSH through both, consumers LPOP through both. Every list write
// rewrites the list's record, so the gateways' transactions conflict and
// retry (or give up with an error that promises nothing was written); in
// the end every pushed element was popped or is still queued, exactly
// once, and each producer's elements left in the order it pushed them.
func TestListQueueAcrossTwoRaftGateways(t *testing.T) {
	c := cluster.Start(t, cluster.Options{})
	gws := []string{startGateway(t, c).Addr(), startGateway(t, c).Addr()}
	const producers, perProducer, consumers = 4, 60, 4
	var (
		mu       sync.Mutex
		popped   []string
		wg       sync.WaitGroup
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	// notWritten is an error reply after which the command had no effect.
	notWritten := func(r string) bool {
		return strings.HasPrefix(r, "-ERR too many concurrent writes") || strings.HasPrefix(r, "-ERR cluster unavailable")
	}
	done := make(chan struct{})
	var prodWG sync.WaitGroup
	for p := range producers {
		prodWG.Add(1)
		go func() {
			defer prodWG.Done()
			conn := conformance.DialRaw(t, gws[p%2])
			for i := 0; i < perProducer; {
				r := conn.Do("RPUSH", "q", fmt.Sprintf("%d:%03d", p, i))
				switch {
				case r[0] == ':':
					i++
				case !notWritten(r):
					fail("RPUSH: %q", r)
					return
				}
			}
		}()
	}
	for k := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conformance.DialRaw(t, gws[k%2])
			for {
				r := conn.Do("LPOP", "q", "3")
				switch {
				case strings.HasPrefix(r, "*-1"): // empty queue
					select {
					case <-done:
						return
					default:
					}
				case r[0] == '*':
					lines := strings.Split(strings.TrimSuffix(r, "\r\n"), "\r\n")
					mu.Lock()
					for j := 2; j < len(lines); j += 2 {
						popped = append(popped, lines[j])
					}
					mu.Unlock()
				case !notWritten(r):
					fail("LPOP: %q", r)
					return
				}
			}
		}()
	}
	prodWG.Wait()
	close(done)
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	rest := conformance.DialRaw(t, gws[0]).Do("LRANGE", "q", "0", "-1")
	if rest != "*0\r\n" {
		t.Errorf("queue not drained: %q", rest)
	}
	seen := map[string]bool{}
	last := map[string]int{}
	for _, v := range popped {
		if seen[v] {
			t.Fatalf("%s popped twice", v)
		}
		seen[v] = true
		prod, n, _ := strings.Cut(v, ":")
		i, _ := strconv.Atoi(n)
		if l, ok := last[prod]; ok && i < l {
			// Pops by different consumers are appended in the order
			// their replies arrived, which may swap two adjacent batches;
			// the list itself never reorders, so order is only checked
			// loosely here: no element overtakes by more than a batch per
			// consumer.
			if l-i > 3*consumers {
				t.Fatalf("producer %s: element %d popped after %d", prod, i, l)
			}
		}
		last[prod] = max(last[prod], i)
	}
	if len(seen) != producers*perProducer {
		t.Fatalf("%d distinct elements popped, %d pushed", len(seen), producers*perProducer)
	}
}
