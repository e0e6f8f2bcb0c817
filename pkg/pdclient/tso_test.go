package pdclient

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/pdpb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeTSO serves only Tso from a counter. It keeps its counter across server
// restarts, like PD's persisted oracle.
type fakeTSO struct {
	pdpb.UnimplementedPDServer

	mu     sync.Mutex
	next   uint64
	counts []uint32 // count of every request received

	// hold, if set, is closed by the test to let the first response out;
	// received is closed when that first request has arrived.
	hold     chan struct{}
	received chan struct{}
	once     sync.Once
	// errType, if not OK, is reported in every response header.
	errType atomic.Int32
}

func newFakeTSO() *fakeTSO { return &fakeTSO{next: 1000} }

// holdFirst makes the next request wait for release; it returns when that
// request has arrived at the server.
func (s *fakeTSO) holdFirst() (arrived <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.received, s.once = make(chan struct{}), make(chan struct{}), sync.Once{}
	hold := s.hold
	return s.received, func() { close(hold) }
}

func (s *fakeTSO) Tso(stream pdpb.PD_TsoServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		hold, received := s.hold, s.received
		s.hold = nil
		s.mu.Unlock()
		if hold != nil {
			close(received)
			select {
			case <-hold:
			case <-stream.Context().Done():
				return stream.Context().Err()
			}
		}
		n := max(req.GetCount(), 1)
		s.mu.Lock()
		first := s.next
		s.next += uint64(n)
		s.counts = append(s.counts, req.GetCount())
		s.mu.Unlock()
		resp := &pdpb.TsoResponse{First: first, Count: n}
		if t := pdpb.ErrorType(s.errType.Load()); t != pdpb.ErrorType_OK {
			resp = &pdpb.TsoResponse{Header: &pdpb.ResponseHeader{Error: &pdpb.Error{Type: t, Message: "injected"}}}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *fakeTSO) requestCounts() []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.counts)
}

// serve runs svc on addr ("127.0.0.1:0" for a free port) until the returned
// stop is called (also at cleanup). It returns the bound address.
func serve(t *testing.T, addr string, svc pdpb.PDServer) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	srv := grpc.NewServer()
	pdpb.RegisterPDServer(srv, svc)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Stop()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// dial connects with a short reconnect backoff so restarts are noticed fast.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1.6, MaxDelay: 50 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func newClient(t *testing.T, conn *grpc.ClientConn) *TSOClient {
	t.Helper()
	c, err := NewTSOClient(pdpb.NewPDClient(conn), TSOOptions{MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("new TSO client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// eventually polls cond until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func setup(t *testing.T) (*fakeTSO, *TSOClient) {
	svc := newFakeTSO()
	addr, _ := serve(t, "127.0.0.1:0", svc)
	return svc, newClient(t, dial(t, addr))
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts TSOOptions
		ok   bool
	}{
		{"zero", TSOOptions{}, true},
		{"max batch", TSOOptions{MaxBatch: MaxTSOBatch}, true},
		{"batch too big", TSOOptions{MaxBatch: MaxTSOBatch + 1}, false},
		{"negative batch", TSOOptions{MaxBatch: -1}, false},
		{"negative backoff", TSOOptions{MinBackoff: -time.Second}, false},
		{"min above max", TSOOptions{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, false},
		{"only max", TSOOptions{MaxBackoff: time.Millisecond}, true},
		{"stall timeout", TSOOptions{StallTimeout: time.Millisecond}, true},
		{"negative stall timeout", TSOOptions{StallTimeout: -time.Second}, false},
	}
	if o := (TSOOptions{}).withDefaults(); o.MinBackoff != DefaultTSOMinBackoff || o.MaxBackoff != DefaultTSOMaxBackoff {
		t.Fatalf("zero options got backoff %v..%v, want the defaults %v..%v",
			o.MinBackoff, o.MaxBackoff, DefaultTSOMinBackoff, DefaultTSOMaxBackoff)
	}
	if o := (TSOOptions{MaxBackoff: time.Millisecond}).withDefaults(); o.MinBackoff != time.Millisecond {
		t.Fatalf("MaxBackoff 1ms got MinBackoff %v, want 1ms", o.MinBackoff)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("err %v does not match ErrInvalidOptions", err)
			}
			if err == nil {
				o := tt.opts.withDefaults()
				if o.MinBackoff <= 0 || o.MinBackoff > o.MaxBackoff || o.MaxBatch <= 0 || o.StallTimeout <= 0 {
					t.Fatalf("defaults %+v", o)
				}
			}
		})
	}
}

// TestBatching holds the first request at the server until every other
// caller is queued: they must then all travel in a single second request.
func TestBatching(t *testing.T) {
	svc, c := setup(t)
	arrived, release := svc.holdFirst()
	const callers = 100
	got := make([]uint64, callers)
	var wg sync.WaitGroup
	call := func(i int) {
		wg.Go(func() {
			ts, err := c.GetTS(context.Background())
			if err != nil {
				t.Errorf("GetTS: %v", err)
			}
			got[i] = ts
		})
	}
	call(0)
	<-arrived
	for i := 1; i < callers; i++ {
		call(i)
	}
	eventually(t, "all callers queued", func() bool { return c.queued() == callers-1 })
	release()
	wg.Wait()
	if counts := svc.requestCounts(); !slices.Equal(counts, []uint32{1, callers - 1}) {
		t.Fatalf("request counts = %v, want [1 %d]", counts, callers-1)
	}
	slices.Sort(got)
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("timestamp %d handed out twice", got[i])
		}
	}
}

// TestConcurrentCallers: many callers in a loop get unique timestamps,
// increasing per caller, in fewer stream requests than calls.
func TestConcurrentCallers(t *testing.T) {
	svc, c := setup(t)
	const callers, calls = 64, 200
	got := make([][]uint64, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for range calls {
				ts, err := c.GetTS(context.Background())
				if err != nil {
					t.Errorf("GetTS: %v", err)
					return
				}
				if n := len(got[i]); n > 0 && ts <= got[i][n-1] {
					t.Errorf("caller %d: %d after %d", i, ts, got[i][n-1])
				}
				got[i] = append(got[i], ts)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if len(slices.Compact(all)) != callers*calls {
		t.Fatalf("duplicate timestamps")
	}
	if n := len(svc.requestCounts()); n >= callers*calls {
		t.Fatalf("%d stream requests for %d calls: no batching", n, callers*calls)
	} else {
		t.Logf("%d calls in %d stream requests", callers*calls, n)
	}
}

func TestAsync(t *testing.T) {
	_, c := setup(t)
	futures := make([]TSFuture, 50)
	for i := range futures {
		futures[i] = c.GetTSAsync(context.Background())
	}
	var last uint64
	for i, f := range futures {
		ts, err := f.Wait()
		if err != nil {
			t.Fatalf("future %d: %v", i, err)
		}
		if ts <= last {
			t.Fatalf("future %d: %d after %d: not in request order", i, ts, last)
		}
		last = ts
		if again, err := f.Wait(); again != ts || err != nil {
			t.Fatalf("second Wait = %d, %v; want %d, nil", again, err, ts)
		}
	}
}

func TestPDError(t *testing.T) {
	svc, c := setup(t)
	svc.errType.Store(int32(pdpb.ErrorType_UNKNOWN))
	_, err := c.GetTS(context.Background())
	var pe *PDError
	if !errors.As(err, &pe) || pe.Type != pdpb.ErrorType_UNKNOWN {
		t.Fatalf("err = %v, want a PDError UNKNOWN", err)
	}
	// The stream survives a business error.
	svc.errType.Store(int32(pdpb.ErrorType_OK))
	if _, err := c.GetTS(context.Background()); err != nil {
		t.Fatalf("GetTS after the error: %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	svc, c := setup(t)
	if _, err := c.GetTS(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Already cancelled: fails without waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.GetTS(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: err = %v, want context.Canceled", err)
	}

	// Cancelled while its batch is at the server.
	arrived, release := svc.holdFirst()
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.GetTS(ctx); errc <- err }()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in flight: err = %v, want context.Canceled", err)
	}

	// Cancelled while queued behind that batch: a batch whose callers all
	// gave up is not sent.
	ctx, cancel = context.WithCancel(context.Background())
	go func() { _, err := c.GetTS(ctx); errc <- err }()
	eventually(t, "request queued", func() bool { return c.queued() == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled in queue: err = %v, want context.Canceled", err)
	}
	release()
	// Once the stream goroutine took (and dropped) that batch, a new
	// request starts a batch of its own.
	eventually(t, "abandoned batch taken", func() bool { return c.queued() == 0 })
	live := c.GetTSAsync(context.Background())
	if _, err := live.Wait(); err != nil {
		t.Fatalf("live request: %v", err)
	}
	if counts := svc.requestCounts(); len(counts) != 3 || counts[2] != 1 {
		t.Fatalf("request counts %v, want [1 1 1]: the abandoned batch was sent", counts)
	}

	// Deadline while the server is unreachable.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	c2 := newClient(t, dial(t, "127.0.0.1:1"))
	if _, err := c2.GetTS(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unreachable PD: err = %v, want context.DeadlineExceeded", err)
	}
}

// TestReconnect stops the server with a batch in flight and restarts it on
// the same address: the batch is sent again to the new server, and so are
// requests made while PD was down.
func TestReconnect(t *testing.T) {
	svc := newFakeTSO()
	addr, stop := serve(t, "127.0.0.1:0", svc)
	c := newClient(t, dial(t, addr))
	before, err := c.GetTS(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	arrived, _ := svc.holdFirst()
	errc := make(chan error, 1)
	go func() { _, err := c.GetTS(context.Background()); errc <- err }()
	<-arrived
	stop()

	// While PD is down, requests wait (bounded by their context).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = c.GetTS(ctx)
	cancel()
	if err == nil {
		t.Fatal("GetTS succeeded with PD down")
	}

	serve(t, addr, svc)
	var after uint64
	eventually(t, "GetTS after restart", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		after, err = c.GetTS(ctx)
		return err == nil
	})
	if after <= before {
		t.Fatalf("after restart %d <= before %d", after, before)
	}
	if err := <-errc; err != nil {
		t.Fatalf("request in flight when PD stopped: %v (want it retried on the new server)", err)
	}
}

func TestClose(t *testing.T) {
	svc, c := setup(t)
	arrived, _ := svc.holdFirst()
	inflight := c.GetTSAsync(context.Background())
	<-arrived
	queued := c.GetTSAsync(context.Background())
	eventually(t, "request queued", func() bool { return c.queued() == 1 })

	c.Close()
	c.Close() // idempotent
	for name, f := range map[string]TSFuture{"in flight": inflight, "queued": queued} {
		if _, err := f.Wait(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s request: err = %v, want ErrClosed", name, err)
		}
	}
	if _, err := c.GetTS(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("GetTS after Close: err = %v, want ErrClosed", err)
	}
	if _, err := c.GetTSAsync(context.Background()).Wait(); !errors.Is(err, ErrClosed) {
		t.Errorf("GetTSAsync after Close: err = %v, want ErrClosed", err)
	}
}

// TestCloseWhileDisconnected: Close returns promptly while the client is
// backing off from an unreachable PD.
func TestCloseWhileDisconnected(t *testing.T) {
	conn := dial(t, "127.0.0.1:1")
	c, err := NewTSOClient(pdpb.NewPDClient(conn), TSOOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	f := c.GetTSAsync(context.Background())
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	if _, err := f.Wait(); !errors.Is(err, ErrClosed) {
		t.Fatalf("pending request: err = %v, want ErrClosed", err)
	}
}
