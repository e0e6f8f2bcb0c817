package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/tests/internal/procs"
)

// pdLeader returns the index of the PD member that serves (the leader), or
// -1 if none does.
func (c *procCluster) pdLeader(ctx context.Context) int {
	for i, addr := range c.pdAddrs {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = pdpb.NewPDClient(cc).GetClusterInfo(cctx, &pdpb.GetClusterInfoRequest{})
		cancel()
		cc.Close()
		if err == nil {
			return i
		}
	}
	return -1
}

// tsoWatch takes timestamps in a loop through its own client and checks
// that each is above the one before; it records the longest wait between
// two successful ones.
type tsoWatch struct {
	mu      sync.Mutex
	last    uint64
	lastAt  time.Time
	maxGap  time.Duration
	count   int
	failure error
}

func (w *tsoWatch) run(ctx context.Context, pd *pdclient.Client) {
	w.mu.Lock()
	w.lastAt = time.Now()
	w.mu.Unlock()
	for ctx.Err() == nil {
		ts, err := pd.GetTS(ctx)
		now := time.Now()
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		w.mu.Lock()
		if ts <= w.last && w.failure == nil {
			w.failure = fmt.Errorf("timestamp %d after %d", ts, w.last)
		}
		w.maxGap = max(w.maxGap, now.Sub(w.lastAt))
		w.last, w.lastAt = ts, now
		w.count++
		w.mu.Unlock()
	}
}

// resetGap forgets the longest gap seen so far.
func (w *tsoWatch) resetGap() {
	w.mu.Lock()
	w.maxGap = 0
	w.mu.Unlock()
}

func (w *tsoWatch) snapshot() (last uint64, gap time.Duration, n int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.maxGap, w.count, w.failure
}

// TestPDGroupLeaderKill9UnderWrites: three PD members and three stores, all
// processes. Under write load the PD leader is killed with SIGKILL, then
// every member at once; later a follower's disk is wiped. Timestamps stay
// strictly increasing as one client sees them across every change, TSO and
// routing come back within a few election timeouts, no acknowledged write
// is lost, and the wiped member is refused rather than founding a new group.
func TestPDGroupLeaderKill9UnderWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nine processes")
	}
	c := startProcClusterPD(t, 3)
	r := newRouter(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := r.put(ctx, "warmup", "1"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("cluster never took a write: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	mc, err := pdclient.Dial(c.pdAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	tsoPD, err := pdclient.New(mc, pdclient.Options{MaxRetries: 50, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tsoPD.Close()
	watch := &tsoWatch{}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); watch.run(loadCtx, tsoPD) }()

	var (
		ackMu   sync.Mutex
		acked   = map[string]string{}
		lastAck atomic.Int64 // unix nanos of the last acknowledged write
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; loadCtx.Err() == nil; i++ {
				k, v := fmt.Sprintf("w%d-%06d", w, i), fmt.Sprintf("v%d", i)
				wctx, wcancel := context.WithTimeout(loadCtx, 5*time.Second)
				err := r.put(wctx, k, v)
				wcancel()
				if err != nil {
					continue // not acknowledged: may or may not be there
				}
				ackMu.Lock()
				acked[k] = v
				ackMu.Unlock()
				lastAck.Store(time.Now().UnixNano())
			}
		}()
	}
	// resumed waits for a PD member to lead, then for a timestamp and a
	// write acknowledged after that, and returns how long after since the
	// later of the two came. (Stores keep acknowledging writes whose
	// timestamp was taken before PD went away, so only what follows the
	// new leadership counts.)
	resumed := func(what string, since time.Time) time.Duration {
		t.Helper()
		for c.pdLeader(ctx) < 0 {
			if time.Since(since) > 30*time.Second {
				t.Fatalf("%s: no PD leader within 30s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		led := time.Now()
		for {
			if _, _, _, ferr := watch.snapshot(); ferr != nil {
				t.Fatal(ferr)
			}
			watch.mu.Lock()
			tsAt := watch.lastAt
			watch.mu.Unlock()
			ackAt := time.Unix(0, lastAck.Load())
			if tsAt.After(led) && ackAt.After(led) {
				return max(tsAt.Sub(since), ackAt.Sub(since))
			}
			if time.Since(since) > 30*time.Second {
				t.Fatalf("%s: TSO and writes did not resume within 30s (last ts at %v, last ack at %v)", what, tsAt.Sub(since), ackAt.Sub(since))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	time.Sleep(2 * time.Second)
	lead := c.pdLeader(ctx)
	if lead < 0 {
		t.Fatal("no PD member serves")
	}
	// 1. kill -9 the leader.
	killedAt := time.Now()
	c.kill9(c.pdNames[lead])
	took := resumed("leader killed", killedAt)
	_, gap, _, _ := watch.snapshot()
	t.Logf("PD leader %s killed: TSO and writes resumed after %v (longest TSO gap %v)", c.pdNames[lead], took, gap)
	newLead := c.pdLeader(ctx)
	if newLead < 0 || newLead == lead {
		t.Fatalf("leader after the kill: %d (was %d)", newLead, lead)
	}
	c.startPD(c.pdNames[lead]) // rejoins from its own data
	time.Sleep(2 * time.Second)

	// 2. kill -9 every member, then start them all again.
	watch.resetGap()
	for _, name := range c.pdNames {
		c.kill9(name)
	}
	time.Sleep(500 * time.Millisecond)
	// Nothing can be issued while every member is down: anything after
	// the restart comes from the restarted group.
	restartAt := time.Now()
	for _, name := range c.pdNames {
		c.startPD(name)
	}
	took = resumed("all members restarted", restartAt)
	t.Logf("all PD members killed and restarted: TSO and writes resumed %v after the restart", took)
	time.Sleep(time.Second)

	// 3. A follower's disk is wiped: it must not found a group of its own.
	lead = c.pdLeader(ctx)
	f := (lead + 1) % len(c.pdNames)
	c.kill9(c.pdNames[f])
	if err := os.RemoveAll(filepath.Join(c.dir, "pd", c.pdNames[f])); err != nil {
		t.Fatal(err)
	}
	c.startPD(c.pdNames[f])
	c.mu.Lock()
	p := c.procs[c.pdNames[f]]
	c.mu.Unlock()
	if !p.Wait(30 * time.Second) {
		t.Fatalf("wiped member %s still runs after 30s", c.pdNames[f])
	}
	c.mu.Lock()
	delete(c.procs, c.pdNames[f])
	c.mu.Unlock()
	if out := p.Log.String(); p.Err() == nil || !strings.Contains(out, "already runs without this member's data") {
		t.Fatalf("wiped member exited with %v:\n%s", p.Err(), procs.Tail(out, 2000))
	}
	// The other two keep serving.
	since := time.Now()
	took = resumed("after the wiped member was refused", since)
	t.Logf("wiped member refused; the other two serve (next write %v later)", took)

	stopLoad()
	wg.Wait()
	if _, _, n, ferr := watch.snapshot(); ferr != nil {
		t.Fatal(ferr)
	} else {
		t.Logf("%d timestamps watched, all increasing", n)
	}
	ackMu.Lock()
	defer ackMu.Unlock()
	t.Logf("checking %d acknowledged writes", len(acked))
	for k, v := range acked {
		got, found, err := r.get(ctx, k)
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		if !found || got != v {
			t.Fatalf("acknowledged write %s=%s lost: found=%v value=%q", k, v, found, got)
		}
	}
}
