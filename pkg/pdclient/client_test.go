package pdclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
)

// fakePD is an in-memory PD: a region catalog, stores, ids, a GC safe
// point, and the Tso stream of fakeTSO. It counts the unary calls it
// receives per method (short names: "GetRegionByKey") and can fail or hang
// the next calls of a method. Its state survives server restarts.
type fakePD struct {
	pdpb.UnimplementedPDServer
	tso *fakeTSO

	mu        sync.Mutex
	regions   []*pdpb.RegionWithLeader // sorted by start key, not overlapping
	stores    map[uint64]*metapb.Store
	nextID    uint64
	safePoint uint64
	calls     map[string]int
	fail      map[string][]codes.Code // status codes of the method's next calls
	hang      map[string]int          // the method's next calls wait for their deadline
}

func newFakePD() *fakePD {
	return &fakePD{
		tso:    newFakeTSO(),
		stores: make(map[uint64]*metapb.Store),
		nextID: 1000,
		calls:  make(map[string]int),
		fail:   make(map[string][]codes.Code),
		hang:   make(map[string]int),
	}
}

// setRegions replaces the catalog; leaders are on the first peer.
func (s *fakePD) setRegions(regions ...*metapb.Region) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regions = s.regions[:0]
	for _, r := range regions {
		s.regions = append(s.regions, &pdpb.RegionWithLeader{Region: r, Leader: r.GetPeers()[0]})
	}
	slices.SortFunc(s.regions, func(a, b *pdpb.RegionWithLeader) int {
		return bytes.Compare(a.GetRegion().GetStartKey(), b.GetRegion().GetStartKey())
	})
}

func (s *fakePD) setStore(st *metapb.Store) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stores[st.GetId()] = st
}

// failNext makes the method's next calls fail with codes, one per call.
func (s *fakePD) failNext(method string, codes ...codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = append(s.fail[method], codes...)
}

// hangNext makes the method's next n calls block until their deadline.
func (s *fakePD) hangNext(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang[method] += n
}

func (s *fakePD) callCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *fakePD) totalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// enter counts a call and applies the injected failure, if any. On success
// it returns with s.mu held; the handler unlocks it.
func (s *fakePD) enter(ctx context.Context, method string) error {
	s.mu.Lock()
	s.calls[method]++
	if f := s.fail[method]; len(f) > 0 {
		s.fail[method] = f[1:]
		s.mu.Unlock()
		return status.Errorf(f[0], "injected %s", f[0])
	}
	if s.hang[method] > 0 {
		s.hang[method]--
		s.mu.Unlock()
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	return nil
}

func notFound(typ pdpb.ErrorType, format string, args ...any) *pdpb.ResponseHeader {
	return &pdpb.ResponseHeader{Error: &pdpb.Error{Type: typ, Message: fmt.Sprintf(format, args...)}}
}

func (s *fakePD) find(pred func(*pdpb.RegionWithLeader) bool) *pdpb.RegionWithLeader {
	for _, r := range s.regions {
		if pred(r) {
			return r
		}
	}
	return nil
}

func contains(r *metapb.Region, key []byte) bool {
	return bytes.Compare(key, r.GetStartKey()) >= 0 && endAfter(r.GetEndKey(), key)
}

func (s *fakePD) GetRegionByKey(ctx context.Context, req *pdpb.GetRegionByKeyRequest) (*pdpb.GetRegionResponse, error) {
	if err := s.enter(ctx, "GetRegionByKey"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	r := s.find(func(r *pdpb.RegionWithLeader) bool { return contains(r.GetRegion(), req.GetKey()) })
	if r == nil {
		return &pdpb.GetRegionResponse{Header: notFound(pdpb.ErrorType_REGION_NOT_FOUND, "no region holds %q", req.GetKey())}, nil
	}
	return &pdpb.GetRegionResponse{Region: r.GetRegion(), Leader: r.GetLeader()}, nil
}

func (s *fakePD) GetRegionByID(ctx context.Context, req *pdpb.GetRegionByIDRequest) (*pdpb.GetRegionResponse, error) {
	if err := s.enter(ctx, "GetRegionByID"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	r := s.find(func(r *pdpb.RegionWithLeader) bool { return r.GetRegion().GetId() == req.GetRegionId() })
	if r == nil {
		return &pdpb.GetRegionResponse{Header: notFound(pdpb.ErrorType_REGION_NOT_FOUND, "region %d", req.GetRegionId())}, nil
	}
	return &pdpb.GetRegionResponse{Region: r.GetRegion(), Leader: r.GetLeader()}, nil
}

func (s *fakePD) ScanRegions(ctx context.Context, req *pdpb.ScanRegionsRequest) (*pdpb.ScanRegionsResponse, error) {
	if err := s.enter(ctx, "ScanRegions"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	resp := &pdpb.ScanRegionsResponse{}
	for _, r := range s.regions {
		if !endAfter(r.GetRegion().GetEndKey(), req.GetStartKey()) {
			continue
		}
		if len(req.GetEndKey()) > 0 && bytes.Compare(r.GetRegion().GetStartKey(), req.GetEndKey()) >= 0 {
			break
		}
		resp.Regions = append(resp.Regions, r)
		if req.GetLimit() > 0 && len(resp.Regions) == int(req.GetLimit()) {
			break
		}
	}
	return resp, nil
}

func (s *fakePD) GetStore(ctx context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	if err := s.enter(ctx, "GetStore"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	st := s.stores[req.GetStoreId()]
	if st == nil {
		return &pdpb.GetStoreResponse{Header: notFound(pdpb.ErrorType_STORE_NOT_FOUND, "store %d", req.GetStoreId())}, nil
	}
	return &pdpb.GetStoreResponse{Store: st}, nil
}

func (s *fakePD) GetAllStores(ctx context.Context, _ *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
	if err := s.enter(ctx, "GetAllStores"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	resp := &pdpb.GetAllStoresResponse{}
	for _, st := range s.stores {
		resp.Stores = append(resp.Stores, st)
	}
	slices.SortFunc(resp.Stores, func(a, b *metapb.Store) int { return int(a.GetId()) - int(b.GetId()) })
	return resp, nil
}

func (s *fakePD) StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	if err := s.enter(ctx, "StoreHeartbeat"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if s.stores[req.GetStats().GetStoreId()] == nil {
		return &pdpb.StoreHeartbeatResponse{Header: notFound(pdpb.ErrorType_STORE_NOT_FOUND, "store %d", req.GetStats().GetStoreId())}, nil
	}
	return &pdpb.StoreHeartbeatResponse{}, nil
}

func (s *fakePD) RegionHeartbeat(ctx context.Context, req *pdpb.RegionHeartbeatRequest) (*pdpb.RegionHeartbeatResponse, error) {
	if err := s.enter(ctx, "RegionHeartbeat"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	id := req.GetRegion().GetId()
	if r := s.find(func(r *pdpb.RegionWithLeader) bool { return r.GetRegion().GetId() == id }); r != nil &&
		r.GetRegion().GetRegionEpoch().GetVersion() > req.GetRegion().GetRegionEpoch().GetVersion() {
		return &pdpb.RegionHeartbeatResponse{Header: notFound(pdpb.ErrorType_STALE_EPOCH, "region %d is stale", id), RegionId: id}, nil
	}
	return &pdpb.RegionHeartbeatResponse{RegionId: id, RegionEpoch: req.GetRegion().GetRegionEpoch()}, nil
}

func (s *fakePD) AllocID(ctx context.Context, req *pdpb.AllocIDRequest) (*pdpb.AllocIDResponse, error) {
	if err := s.enter(ctx, "AllocID"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	n := max(req.GetCount(), 1)
	first := s.nextID
	s.nextID += uint64(n)
	return &pdpb.AllocIDResponse{FirstId: first, Count: n}, nil
}

func (s *fakePD) Tso(stream pdpb.PD_TsoServer) error { return s.tso.Tso(stream) }

func (s *fakePD) AskSplit(ctx context.Context, req *pdpb.AskSplitRequest) (*pdpb.AskSplitResponse, error) {
	if err := s.enter(ctx, "AskSplit"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	resp := &pdpb.AskSplitResponse{NewRegionId: s.nextID}
	s.nextID++
	for range req.GetRegion().GetPeers() {
		resp.NewPeerIds = append(resp.NewPeerIds, s.nextID)
		s.nextID++
	}
	return resp, nil
}

func (s *fakePD) ReportSplit(ctx context.Context, req *pdpb.ReportSplitRequest) (*pdpb.ReportSplitResponse, error) {
	if err := s.enter(ctx, "ReportSplit"); err != nil {
		return nil, err
	}
	s.mu.Unlock()
	var keep []*metapb.Region
	s.mu.Lock()
	for _, r := range s.regions {
		if id := r.GetRegion().GetId(); id != req.GetLeft().GetId() && id != req.GetRight().GetId() {
			keep = append(keep, r.GetRegion())
		}
	}
	s.mu.Unlock()
	s.setRegions(append(keep, req.GetLeft(), req.GetRight())...)
	return &pdpb.ReportSplitResponse{}, nil
}

func (s *fakePD) GetGCSafePoint(ctx context.Context, _ *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	if err := s.enter(ctx, "GetGCSafePoint"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return &pdpb.GetGCSafePointResponse{SafePoint: s.safePoint}, nil
}

func (s *fakePD) UpdateGCSafePoint(ctx context.Context, req *pdpb.UpdateGCSafePointRequest) (*pdpb.UpdateGCSafePointResponse, error) {
	if err := s.enter(ctx, "UpdateGCSafePoint"); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.safePoint = max(s.safePoint, req.GetSafePoint())
	return &pdpb.UpdateGCSafePointResponse{NewSafePoint: s.safePoint}, nil
}

// fastOptions retries quickly, so tests of retries take milliseconds.
func fastOptions() Options {
	return Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
}

func newPDClient(t *testing.T, conn grpc.ClientConnInterface, opts Options) *Client {
	t.Helper()
	c, err := New(conn, opts)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// threeRegions is the catalog most tests start from: ["", "g"), ["g", "p"),
// ["p", "") on stores 1-3, leaders on store 1.
func threeRegions() []*metapb.Region {
	return []*metapb.Region{
		testRegion(1, "", "g", 1, 1, 1, 2, 3),
		testRegion(2, "g", "p", 1, 1, 1, 2, 3),
		testRegion(3, "p", "", 1, 1, 1, 2, 3),
	}
}

// setupPD starts a fake PD with threeRegions and a client of it.
func setupPD(t *testing.T, opts Options) (*fakePD, *Client) {
	t.Helper()
	svc := newFakePD()
	svc.setRegions(threeRegions()...)
	addr, _ := serve(t, "127.0.0.1:0", svc)
	return svc, newPDClient(t, dial(t, addr), opts)
}

func mustRegion(t *testing.T, c *Client, key string) (*metapb.Region, *metapb.Peer) {
	t.Helper()
	r, l, err := c.GetRegion(context.Background(), []byte(key))
	if err != nil {
		t.Fatalf("GetRegion(%q): %v", key, err)
	}
	if !contains(r, []byte(key)) {
		t.Fatalf("GetRegion(%q) = region %d [%q, %q)", key, r.GetId(), r.GetStartKey(), r.GetEndKey())
	}
	return r, l
}

func TestClientOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"no retries", Options{MaxRetries: NoRetries}, true},
		{"negative backoff", Options{MinBackoff: -1}, false},
		{"min above max", Options{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, false},
		{"negative attempt timeout", Options{AttemptTimeout: -1}, false},
		{"negative TTL", Options{RegionCacheTTL: -1}, false},
		{"bad TSO options", Options{TSO: TSOOptions{MaxBatch: -1}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidOptions)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if o := (Options{}).withDefaults(); o.MaxRetries != DefaultMaxRetries || o.RegionCacheTTL != DefaultRegionCacheTTL ||
		o.MinBackoff != DefaultMinBackoff || o.MaxBackoff != DefaultMaxBackoff || o.Now == nil {
		t.Fatalf("defaults %+v", o)
	}
	if o := (Options{MaxRetries: NoRetries}).withDefaults(); o.MaxRetries != 0 {
		t.Fatalf("NoRetries became MaxRetries %d", o.MaxRetries)
	}
	if _, err := New(nil, Options{}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("New(nil conn) = %v, want ErrInvalidOptions", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	c := &Client{opts: Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}}
	for n, want := range map[int]time.Duration{1: 10, 2: 20, 3: 40, 4: 80, 5: 100, 50: 100} {
		want *= time.Millisecond
		for range 100 {
			if d := c.backoff(n); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

// TestClientRegionCacheHits: a region is fetched once; later keys in it are
// answered from the cache without an RPC.
func TestClientRegionCacheHits(t *testing.T) {
	svc, c := setupPD(t, fastOptions())
	r, l := mustRegion(t, c, "a")
	if r.GetId() != 1 || l.GetStoreId() != 1 {
		t.Fatalf("GetRegion(a) = region %d leader %v", r.GetId(), l)
	}
	for _, key := range []string{"", "a", "b", "f\xff"} {
		if r, _ := mustRegion(t, c, key); r.GetId() != 1 {
			t.Fatalf("GetRegion(%q) = region %d, want 1", key, r.GetId())
		}
	}
	if n := svc.callCount("GetRegionByKey"); n != 1 {
		t.Fatalf("%d GetRegionByKey calls for one region, want 1", n)
	}
	mustRegion(t, c, "g")
	mustRegion(t, c, "zzz")
	mustRegion(t, c, "h")
	mustRegion(t, c, "q")
	if n := svc.callCount("GetRegionByKey"); n != 3 {
		t.Fatalf("%d GetRegionByKey calls for three regions, want 3", n)
	}
	// What GetRegion returns is the caller's.
	r.StartKey = []byte("zz")
	if again, _ := mustRegion(t, c, "a"); again.GetId() != 1 {
		t.Fatal("cache changed through a returned region")
	}
}

// TestClientSplit: PD splits a cached region. The stale route is served
// until the caller invalidates it (as it would on a store's epoch error);
// then the new regions replace it.
func TestClientSplit(t *testing.T) {
	svc, c := setupPD(t, fastOptions())
	mustRegion(t, c, "h")
	svc.setRegions(
		testRegion(1, "", "g", 1, 1, 1, 2, 3),
		testRegion(2, "g", "k", 2, 1, 1, 2, 3),
		testRegion(4, "k", "p", 2, 1, 1, 2, 3),
		testRegion(3, "p", "", 1, 1, 1, 2, 3),
	)
	if r, _ := mustRegion(t, c, "m"); r.GetId() != 2 {
		t.Fatalf("before invalidation: region %d, want the cached parent 2", r.GetId())
	}
	before := svc.callCount("GetRegionByKey")

	c.Cache().InvalidateKey([]byte("m"))
	if r, _ := mustRegion(t, c, "m"); r.GetId() != 4 {
		t.Fatalf("after invalidation: region %d, want 4", r.GetId())
	}
	if r, _ := mustRegion(t, c, "h"); r.GetId() != 2 || string(r.GetEndKey()) != "k" {
		t.Fatalf("left half: region %d [%q, %q), want 2 [g, k)", r.GetId(), r.GetStartKey(), r.GetEndKey())
	}
	if n := svc.callCount("GetRegionByKey") - before; n != 2 {
		t.Fatalf("%d lookups after the split, want 2", n)
	}
	// Both halves are cached now.
	mustRegion(t, c, "j")
	mustRegion(t, c, "o")
	if n := svc.callCount("GetRegionByKey") - before; n != 2 {
		t.Fatalf("%d lookups after the split, want still 2", n)
	}
}

// TestClientInvalidation: invalidating sends the next lookup to PD; a leader
// update is served without one.
func TestClientInvalidation(t *testing.T) {
	svc, c := setupPD(t, fastOptions())
	r, _ := mustRegion(t, c, "a")
	mustRegion(t, c, "h")

	if !c.Cache().UpdateLeader(1, peerOf(r, 3)) {
		t.Fatal("UpdateLeader refused a peer of the region")
	}
	if _, l := mustRegion(t, c, "a"); l.GetStoreId() != 3 {
		t.Fatalf("leader on store %d after UpdateLeader, want 3", l.GetStoreId())
	}
	if n := svc.callCount("GetRegionByKey"); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}

	c.Cache().InvalidateRegion(1)
	if _, l := mustRegion(t, c, "a"); l.GetStoreId() != 1 {
		t.Fatalf("leader on store %d after refetch, want PD's 1", l.GetStoreId())
	}
	c.Cache().InvalidateKey([]byte("i"))
	mustRegion(t, c, "h")
	if n := svc.callCount("GetRegionByKey"); n != 4 {
		t.Fatalf("%d calls after two invalidations, want 4", n)
	}
}

// TestClientTTL: routes and stores are refetched once their TTL passes.
func TestClientTTL(t *testing.T) {
	clock := newFakeClock()
	opts := fastOptions()
	opts.RegionCacheTTL = time.Minute
	opts.Now = clock.Now
	svc, c := setupPD(t, opts)
	svc.setStore(&metapb.Store{Id: 1, Address: "s1:1"})
	ctx := context.Background()

	mustRegion(t, c, "a")
	if _, err := c.GetStore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute - time.Second)
	mustRegion(t, c, "a")
	if _, err := c.GetStore(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if a, b := svc.callCount("GetRegionByKey"), svc.callCount("GetStore"); a != 1 || b != 1 {
		t.Fatalf("before the TTL: %d region and %d store calls, want 1 and 1", a, b)
	}

	svc.setStore(&metapb.Store{Id: 1, Address: "s1:2"})
	clock.Advance(time.Second)
	mustRegion(t, c, "a")
	st, err := c.GetStore(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := svc.callCount("GetRegionByKey"), svc.callCount("GetStore"); a != 2 || b != 2 {
		t.Fatalf("at the TTL: %d region and %d store calls, want 2 and 2", a, b)
	}
	if st.GetAddress() != "s1:2" {
		t.Fatalf("store address %q after refresh, want s1:2", st.GetAddress())
	}
}

func TestClientStores(t *testing.T) {
	svc, c := setupPD(t, fastOptions())
	ctx := context.Background()
	for id := uint64(1); id <= 3; id++ {
		svc.setStore(&metapb.Store{Id: id, Address: fmt.Sprintf("s%d:1", id)})
	}
	svc.setStore(&metapb.Store{Id: 4, Address: "s4:1", State: metapb.StoreState_TOMBSTONE})

	all, err := c.GetAllStores(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("GetAllStores = %d stores, %v; want 4", len(all), err)
	}
	// GetAllStores filled the cache.
	for id := uint64(1); id <= 4; id++ {
		if _, err := c.GetStore(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := svc.callCount("GetStore"); n != 0 {
		t.Fatalf("%d GetStore calls after GetAllStores, want 0", n)
	}
	st, _ := c.GetStore(ctx, 1)
	st.Address = "corrupted"
	if again, _ := c.GetStore(ctx, 1); again.GetAddress() != "s1:1" {
		t.Fatal("store cache changed through a returned store")
	}

	svc.setStore(&metapb.Store{Id: 2, Address: "s2:new"})
	c.InvalidateStore(2)
	if st, err := c.GetStore(ctx, 2); err != nil || st.GetAddress() != "s2:new" {
		t.Fatalf("after InvalidateStore: %v, %v; want s2:new", st, err)
	}

	_, err = c.GetStore(ctx, 9)
	var pe *PDError
	if !errors.Is(err, ErrStoreNotFound) || !errors.As(err, &pe) {
		t.Fatalf("unknown store: err = %v, want a PDError matching ErrStoreNotFound", err)
	}
}

func TestClientRetry(t *testing.T) {
	const maxRetries = 3
	unavailable := func(n int) []codes.Code { return slices.Repeat([]codes.Code{codes.Unavailable}, n) }
	tests := []struct {
		name       string
		maxRetries int
		fail       []codes.Code
		wantOK     bool
		wantCode   codes.Code // of the error, if it fails
		wantUnavl  bool       // the error matches ErrUnavailable
		wantCalls  int
		wantRetry  int // OnRetry calls
	}{
		{"no failure", maxRetries, nil, true, 0, false, 1, 0},
		{"one failure", maxRetries, unavailable(1), true, 0, false, 2, 1},
		{"failures up to MaxRetries", maxRetries, unavailable(maxRetries), true, 0, false, maxRetries + 1, maxRetries},
		{"one failure beyond MaxRetries", maxRetries, unavailable(maxRetries + 1), false, codes.Unavailable, true, maxRetries + 1, maxRetries},
		{"resource exhausted is retried", maxRetries, []codes.Code{codes.ResourceExhausted, codes.Unavailable}, true, 0, false, 3, 2},
		{"deadline exceeded of an attempt is retried", maxRetries, []codes.Code{codes.DeadlineExceeded}, true, 0, false, 2, 1},
		{"NoRetries", NoRetries, unavailable(1), false, codes.Unavailable, true, 1, 0},
		{"internal is not retried", maxRetries, []codes.Code{codes.Internal}, false, codes.Internal, false, 1, 0},
		{"invalid argument is not retried", maxRetries, []codes.Code{codes.InvalidArgument}, false, codes.InvalidArgument, false, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var retries []int
			opts := fastOptions()
			opts.MaxRetries = tt.maxRetries
			opts.TestingKnobs.OnRetry = func(method string, attempt int, err error) {
				mu.Lock()
				defer mu.Unlock()
				if method != pdpb.PD_GetRegionByID_FullMethodName {
					t.Errorf("OnRetry method %q", method)
				}
				retries = append(retries, attempt)
			}
			svc, c := setupPD(t, opts)
			svc.failNext("GetRegionByID", tt.fail...)

			r, _, err := c.GetRegionByID(context.Background(), 2)
			if tt.wantOK {
				if err != nil || r.GetId() != 2 {
					t.Fatalf("GetRegionByID = %v, %v; want region 2", r, err)
				}
			} else {
				if err == nil {
					t.Fatal("GetRegionByID succeeded")
				}
				if got := status.Code(err); got != tt.wantCode {
					t.Errorf("status code %v, want %v (err %v)", got, tt.wantCode, err)
				}
				if got := errors.Is(err, ErrUnavailable); got != tt.wantUnavl {
					t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v (err %v)", got, tt.wantUnavl, err)
				}
			}
			if n := svc.callCount("GetRegionByID"); n != tt.wantCalls {
				t.Errorf("%d attempts, want %d", n, tt.wantCalls)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(retries) != tt.wantRetry {
				t.Errorf("OnRetry after attempts %v, want %d calls", retries, tt.wantRetry)
			}
		})
	}
}

// TestClientAttemptTimeout: an attempt PD does not answer in time is
// abandoned and retried.
func TestClientAttemptTimeout(t *testing.T) {
	opts := fastOptions()
	opts.AttemptTimeout = 50 * time.Millisecond
	svc, c := setupPD(t, opts)
	svc.hangNext("AllocID", 2)
	if _, err := c.AllocID(context.Background(), 1); err != nil {
		t.Fatalf("AllocID: %v", err)
	}
	if n := svc.callCount("AllocID"); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}

	// Without retries left, the attempt's deadline is an availability error.
	opts.MaxRetries = NoRetries
	svc, c = setupPD(t, opts)
	svc.hangNext("AllocID", 1)
	_, err := c.AllocID(context.Background(), 1)
	if !errors.Is(err, ErrUnavailable) || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("AllocID = %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
}

// TestClientHeaderErrorsNotRetried: business errors come back at once, as
// *PDError matching their sentinel.
func TestClientHeaderErrorsNotRetried(t *testing.T) {
	svc, c := setupPD(t, fastOptions())
	svc.setRegions(testRegion(1, "a", "m", 1, 1, 1)) // keys below "a" and from "m" have no region
	ctx := context.Background()

	_, _, err := c.GetRegion(ctx, []byte("z"))
	var pe *PDError
	if !errors.Is(err, ErrRegionNotFound) || !errors.As(err, &pe) || pe.Type != pdpb.ErrorType_REGION_NOT_FOUND {
		t.Fatalf("GetRegion in a gap: err = %v, want a PDError matching ErrRegionNotFound", err)
	}
	if errors.Is(err, ErrUnavailable) {
		t.Fatalf("header error %v matches ErrUnavailable", err)
	}
	if n := svc.callCount("GetRegionByKey"); n != 1 {
		t.Fatalf("%d attempts for a header error, want 1", n)
	}

	// GetRegionByID of a region PD no longer has drops it from the cache.
	c.Cache().Insert(testRegion(7, "m", "z", 1, 1, 1), nil)
	if _, _, err := c.GetRegionByID(ctx, 7); !errors.Is(err, ErrRegionNotFound) {
		t.Fatalf("GetRegionByID(7) = %v, want ErrRegionNotFound", err)
	}
	if _, _, ok := c.Cache().LookupByID(7); ok {
		t.Fatal("region PD does not know is still cached")
	}

	_, err = c.RegionHeartbeat(ctx, &pdpb.RegionHeartbeatRequest{Region: testRegion(1, "a", "m", 0, 1, 1)})
	if !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale RegionHeartbeat: err = %v, want ErrStaleEpoch", err)
	}
	if n := svc.callCount("RegionHeartbeat"); n != 1 {
		t.Fatalf("%d attempts for a stale heartbeat, want 1", n)
	}
}

// TestClientCancelDuringBackoff: a call waiting out a long backoff returns
// as soon as its context ends, or the client is closed.
func TestClientCancelDuringBackoff(t *testing.T) {
	opts := Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}
	backingOff := make(chan struct{}, 1)
	opts.TestingKnobs.OnRetry = func(string, int, error) { backingOff <- struct{}{} }
	svc, c := setupPD(t, opts)

	for _, tt := range []struct {
		name   string
		cancel func(context.CancelFunc)
		want   error
	}{
		{"cancel", func(cancel context.CancelFunc) { cancel() }, context.Canceled},
		{"close", func(context.CancelFunc) { c.Close() }, ErrClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc.failNext("GetGCSafePoint", codes.Unavailable)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { _, err := c.GetGCSafePoint(ctx); errc <- err }()
			<-backingOff
			tt.cancel(cancel)
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("call still backing off")
			}
		})
	}

	// After Close every call fails with ErrClosed at once.
	before := svc.totalCalls()
	ctx := context.Background()
	if _, _, err := c.GetRegion(ctx, []byte("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("GetRegion after Close: %v", err)
	}
	if _, err := c.AllocID(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("AllocID after Close: %v", err)
	}
	if _, err := c.GetTS(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("GetTS after Close: %v", err)
	}
	if n := svc.totalCalls(); n != before {
		t.Errorf("%d RPCs after Close", n-before)
	}

	// A deadline shorter than the backoff ends the call at the deadline.
	svc, c = setupPD(t, Options{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	svc.failNext("GetGCSafePoint", codes.Unavailable)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.GetGCSafePoint(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("call took %v with a 50ms deadline", d)
	}
}

// TestClientPDRestart stops PD under a client and restarts it on the same
// address while a call is retrying: the call, and later ones, succeed.
func TestClientPDRestart(t *testing.T) {
	svc := newFakePD()
	svc.setRegions(threeRegions()...)
	addr, stop := serve(t, "127.0.0.1:0", svc)

	failures := make(chan struct{}, 1000)
	opts := Options{MaxRetries: 1000, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}
	opts.TestingKnobs.OnRetry = func(string, int, error) {
		select {
		case failures <- struct{}{}:
		default:
		}
	}
	c := newPDClient(t, dial(t, addr), opts)
	ctx := context.Background()
	ts1, err := c.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mustRegion(t, c, "a")

	stop()
	// Cached routes still answer while PD is down.
	mustRegion(t, c, "a")
	errc := make(chan error, 1)
	go func() { _, _, err := c.GetRegionByID(ctx, 3); errc <- err }()
	<-failures
	<-failures // the call is retrying against a dead PD
	serve(t, addr, svc)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("call spanning the restart: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call spanning the restart did not finish")
	}

	if _, err := c.AllocID(ctx, 1); err != nil {
		t.Fatalf("AllocID after restart: %v", err)
	}
	var ts2 uint64
	eventually(t, "GetTS after restart", func() bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ts2, err = c.GetTS(ctx)
		return err == nil
	})
	if ts2 <= ts1 {
		t.Fatalf("timestamp %d after restart, not above %d", ts2, ts1)
	}
}

// TestClientAPI runs each remaining method once against the fake PD.
func TestClientAPI(t *testing.T) {
	svc, c := setupPD(t, fastOptions())
	svc.setStore(&metapb.Store{Id: 1})
	ctx := context.Background()

	first, err := c.AllocID(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.AllocID(ctx, 0)
	if err != nil || next != first+5 {
		t.Fatalf("AllocID(0) = %d, %v; want %d", next, err, first+5)
	}

	regions, err := c.ScanRegions(ctx, []byte("h"), nil, 0)
	if err != nil || len(regions) != 2 || regions[0].GetRegion().GetId() != 2 {
		t.Fatalf("ScanRegions(h, +inf) = %v, %v; want regions 2 and 3", regions, err)
	}
	if regions, err := c.ScanRegions(ctx, nil, nil, 1); err != nil || len(regions) != 1 {
		t.Fatalf("ScanRegions limit 1 = %d regions, %v", len(regions), err)
	}
	// The scan filled the cache.
	mustRegion(t, c, "h")
	mustRegion(t, c, "q")
	if n := svc.callCount("GetRegionByKey"); n != 0 {
		t.Fatalf("%d GetRegionByKey calls after a scan, want 0", n)
	}

	if sp, err := c.UpdateGCSafePoint(ctx, 100); err != nil || sp != 100 {
		t.Fatalf("UpdateGCSafePoint(100) = %d, %v", sp, err)
	}
	if sp, err := c.UpdateGCSafePoint(ctx, 50); err != nil || sp != 100 {
		t.Fatalf("UpdateGCSafePoint(50) = %d, %v; want 100", sp, err)
	}
	if sp, err := c.GetGCSafePoint(ctx); err != nil || sp != 100 {
		t.Fatalf("GetGCSafePoint = %d, %v; want 100", sp, err)
	}

	if _, err := c.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{Stats: &pdpb.StoreStats{StoreId: 1}}); err != nil {
		t.Fatalf("StoreHeartbeat: %v", err)
	}
	if _, err := c.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{Stats: &pdpb.StoreStats{StoreId: 9}}); !errors.Is(err, ErrStoreNotFound) {
		t.Fatalf("StoreHeartbeat of an unknown store: %v", err)
	}
	resp, err := c.RegionHeartbeat(ctx, &pdpb.RegionHeartbeatRequest{Region: testRegion(2, "g", "p", 1, 1, 1, 2, 3)})
	if err != nil || resp.GetRegionId() != 2 {
		t.Fatalf("RegionHeartbeat = %v, %v", resp, err)
	}

	parent, _ := mustRegion(t, c, "h")
	split, err := c.AskSplit(ctx, parent)
	if err != nil || len(split.GetNewPeerIds()) != 3 {
		t.Fatalf("AskSplit = %v, %v", split, err)
	}
	left := testRegion(2, "g", "k", 2, 1, 1, 2, 3)
	right := proto.Clone(left).(*metapb.Region)
	right.Id, right.StartKey, right.EndKey = split.GetNewRegionId(), []byte("k"), []byte("p")
	for i, p := range right.Peers {
		p.Id = split.GetNewPeerIds()[i]
	}
	if err := c.ReportSplit(ctx, left, right); err != nil {
		t.Fatalf("ReportSplit: %v", err)
	}
	if r, _ := mustRegion(t, c, "m"); r.GetId() != right.GetId() {
		t.Fatalf("after ReportSplit: region %d holds m, want %d", r.GetId(), right.GetId())
	}

	ts, err := c.GetTS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ts2, err := c.GetTSAsync(ctx).Wait(); err != nil || ts2 <= ts {
		t.Fatalf("GetTSAsync = %d, %v; want above %d", ts2, err, ts)
	}
}

// TestClientCloseNoLeak: a client with a live TSO stream, closed with a call
// retrying, leaves no goroutine behind once the connection is closed.
func TestClientCloseNoLeak(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	svc := newFakePD()
	svc.setRegions(threeRegions()...)
	addr, stop := serve(t, "127.0.0.1:0", svc)
	conn := dial(t, addr)
	backingOff := make(chan struct{})
	opts := Options{MinBackoff: time.Hour, MaxBackoff: time.Hour}
	opts.TestingKnobs.OnRetry = func(string, int, error) { close(backingOff) }
	c, err := New(conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTS(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustRegion(t, c, "a")
	svc.failNext("AllocID", codes.Unavailable)
	errc := make(chan error, 1)
	go func() { _, err := c.AllocID(context.Background(), 1); errc <- err }()
	<-backingOff

	c.Close()
	c.Close() // idempotent
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("call backing off at Close: %v, want ErrClosed", err)
	}
	conn.Close()
	stop()
	goleak.VerifyNone(t, ignore)
}
