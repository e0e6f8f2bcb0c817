package pdclient

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nokv/nokv/api/pdpb"
)

// stallTestDeadline bounds each stall test's own waiting. It is far above
// the stall timeouts the tests use, so that only a client that never gives
// up on a hung member runs into it, however loaded the machine.
const stallTestDeadline = 20 * time.Second

func newStallClient(t *testing.T, mc *MemberConn, stall time.Duration) *TSOClient {
	t.Helper()
	tc, err := NewTSOClient(pdpb.NewPDClient(mc), TSOOptions{
		StallTimeout: stall, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

// getConcurrently asks for n timestamps at once and returns them; any error
// fails the test.
func getConcurrently(t *testing.T, ctx context.Context, tc *TSOClient, n int) []uint64 {
	t.Helper()
	ts := make([]uint64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { ts[i], errs[i] = tc.GetTS(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("GetTS: %v", err)
	}
	return ts
}

// TestTSOStalledMemberAbandoned: member A, which the client talks to and
// which still believes it leads, takes the next batch on the Tso stream and
// never answers (a disk stall under its etcd, a bug); B leads and answers.
// After the stall timeout the stream to A is cancelled, the next one goes to
// B and the batch is sent again there: every caller gets one of B's
// timestamps, long before the test's deadline, and nothing is left running.
func TestTSOStalledMemberAbandoned(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	a, b := &memberPD{}, &memberPD{}
	b.next.Store(1 << 40) // B's timestamps are above A's
	addrA, stopA := serve(t, "127.0.0.1:0", a)
	addrB, stopB := serve(t, "127.0.0.1:0", b)
	mc, err := Dial(addrA + "," + addrB)
	if err != nil {
		t.Fatal(err)
	}
	tc := newStallClient(t, mc, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), stallTestDeadline)
	defer cancel()

	// A answers at first, so the stream to it is open when it hangs.
	before, err := tc.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before >= 1<<40 || mc.Leader() != addrA {
		t.Fatalf("first timestamp %d from %s, want one of A's (%s)", before, mc.Leader(), addrA)
	}
	a.mute.Store(true)
	start := time.Now()
	got := getConcurrently(t, ctx, tc, 8)
	t.Logf("8 callers answered %v after A hung (stall timeout 200ms)", time.Since(start).Round(time.Millisecond))
	seen := map[uint64]bool{}
	for _, ts := range got {
		if ts < 1<<40 || seen[ts] {
			t.Fatalf("timestamps %v: want distinct ones of B's (>= 1<<40)", got)
		}
		seen[ts] = true
	}
	if mc.Leader() != addrB {
		t.Fatalf("following %s, want B %s", mc.Leader(), addrB)
	}
	eventually(t, "A sees its stream cancelled", func() bool { return a.cancelled.Load() == 1 })
	if n := a.streams.Load(); n != 1 {
		t.Fatalf("A got %d streams, want 1: the client went back to the hung member", n)
	}
	if ts, err := tc.GetTS(ctx); err != nil || ts <= slicesMax(got) {
		t.Fatalf("GetTS after the move = %d, %v; want above %d", ts, err, slicesMax(got))
	}

	tc.Close()
	mc.Close()
	stopA()
	stopB()
	goleak.VerifyNone(t, ignore)
}

func slicesMax(s []uint64) uint64 {
	var m uint64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// TestTSOStalledConnectAbandoned: member A accepts TCP connections and
// never speaks (a member whose process hangs, or a proxy holding the
// connection). Opening the stream there is bounded by the stall timeout
// too, so the client moves to B instead of waiting out gRPC's 20 s connect
// timeout.
func TestTSOStalledConnectAbandoned(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		held []net.Conn
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	b := &memberPD{}
	addrB, stopB := serve(t, "127.0.0.1:0", b)
	mc, err := Dial(ln.Addr().String() + "," + addrB)
	if err != nil {
		t.Fatal(err)
	}
	tc := newStallClient(t, mc, 200*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), stallTestDeadline)
	defer cancel()
	start := time.Now()
	if _, err := tc.GetTS(ctx); err != nil {
		t.Fatalf("GetTS with the first member silent: %v", err)
	}
	t.Logf("answered %v after start (stall timeout 200ms)", time.Since(start).Round(time.Millisecond))
	if mc.Leader() != addrB {
		t.Fatalf("following %s, want B %s", mc.Leader(), addrB)
	}

	tc.Close()
	mc.Close()
	stopB()
	ln.Close()
	wg.Wait()
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
	goleak.VerifyNone(t, ignore)
}

// TestTSOSlowMemberKept: a member that answers every request 100 ms late,
// with a stall timeout of 1 s, is slow, not hung: the client keeps its one
// stream to it and never asks the other member.
func TestTSOSlowMemberKept(t *testing.T) {
	a, b := &memberPD{}, &memberPD{}
	a.delay.Store(int64(100 * time.Millisecond))
	b.next.Store(1 << 40)
	addrA, _ := serve(t, "127.0.0.1:0", a)
	addrB, _ := serve(t, "127.0.0.1:0", b)
	mc, err := Dial(addrA + "," + addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	tc := newStallClient(t, mc, time.Second)
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), stallTestDeadline)
	defer cancel()
	for range 5 {
		for _, ts := range getConcurrently(t, ctx, tc, 4) {
			if ts >= 1<<40 {
				t.Fatalf("timestamp %d is B's: the slow member was abandoned", ts)
			}
		}
	}
	if mc.Leader() != addrA || a.streams.Load() != 1 || b.streams.Load() != 0 {
		t.Fatalf("following %s; A got %d streams, B %d: want A, 1, 0",
			mc.Leader(), a.streams.Load(), b.streams.Load())
	}
}

// TestTSOCancelAndCloseKeepMember: a caller giving up on a batch A has not
// answered, and closing the client with it still in flight, cancel nothing
// on A's account: MemberConn stays with A, and only Close ends the stream.
func TestTSOCancelAndCloseKeepMember(t *testing.T) {
	a, b := &memberPD{}, &memberPD{}
	a.mute.Store(true)
	addrA, _ := serve(t, "127.0.0.1:0", a)
	addrB, _ := serve(t, "127.0.0.1:0", b)
	mc, err := Dial(addrA + "," + addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	tc := newStallClient(t, mc, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	f := tc.GetTSAsync(ctx)
	eventually(t, "the batch reached A", func() bool { return a.calls.Load() == 1 })
	cancel()
	if _, err := f.Wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetTS cancelled while A holds its batch: %v, want context.Canceled", err)
	}
	if mc.Leader() != addrA {
		t.Fatalf("following %s after a caller's cancel, want A %s", mc.Leader(), addrA)
	}
	tc.Close()
	eventually(t, "A sees its stream cancelled", func() bool { return a.cancelled.Load() == 1 })
	if mc.Leader() != addrA || b.streams.Load() != 0 {
		t.Fatalf("following %s, B got %d streams: want A and 0 (a cancel or Close is no member failure)",
			mc.Leader(), b.streams.Load())
	}
}
