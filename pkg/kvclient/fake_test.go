package kvclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/api/storepb"
)

// world is a fake cluster for unit tests: a fake PD whose routes may be
// stale, and fake stores that check routes against the true regions and
// leaders and keep committed values in a map. It has no real MVCC: a
// one-phase prewrite writes at once, a two-phase one parks its mutations
// until Commit. Tests script failures with inject.
type world struct {
	t *testing.T

	mu sync.Mutex
	// truth is the real region layout and leaders; pdRegions and pdLeaders
	// are what PD answers.
	truth     []*metapb.Region
	leaders   map[uint64]uint64 // region id → leading store id
	pdRegions []*metapb.Region
	pdLeaders map[uint64]uint64
	stores    map[uint64]string // store id → address
	data      map[string][]byte
	pending   map[uint64][]*kvrpcpb.Mutation // start_ts → parked mutations
	calls     []call
	// inject, if set, runs before a store serves a request: a non-nil
	// region error or error is answered instead.
	inject func(storeID uint64, method string, rc *kvrpcpb.Context, req proto.Message) (*kvrpcpb.RegionError, error)
	nextTS uint64
	// pageKeys, if set, is where a store stops a batch get or scan
	// response, as a real one stops at its byte budget.
	pageKeys int
}

type call struct {
	store  uint64
	method string
	region uint64
	keys   []string
}

func peers(regionID uint64, stores ...uint64) []*metapb.Peer {
	var out []*metapb.Peer
	for _, s := range stores {
		out = append(out, &metapb.Peer{Id: regionID*10 + s, StoreId: s})
	}
	return out
}

func region(id uint64, start, end string, version uint64) *metapb.Region {
	return &metapb.Region{
		Id: id, StartKey: []byte(start), EndKey: []byte(end),
		RegionEpoch: &metapb.RegionEpoch{ConfVer: 1, Version: version}, Peers: peers(id, 1, 2, 3),
	}
}

// newWorld starts PD and the given stores (1..n); stores listed in down
// get an address nobody listens on.
func newWorld(t *testing.T, n int, down ...uint64) *world {
	w := &world{
		t: t, leaders: map[uint64]uint64{}, pdLeaders: map[uint64]uint64{}, stores: map[uint64]string{},
		data: map[string][]byte{}, pending: map[uint64][]*kvrpcpb.Mutation{},
		nextTS: uint64(time.Now().UnixMilli()) << 18,
	}
	for id := uint64(1); id <= uint64(n); id++ {
		if slices.Contains(down, id) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			w.stores[id] = lis.Addr().String()
			lis.Close()
			continue
		}
		w.stores[id] = serveFake(t, func(s *grpc.Server) { storepb.RegisterStoreServer(s, &fakeStore{w: w, id: id}) })
	}
	return w
}

// setRegions sets both the truth and PD's view, with leaders.
func (w *world) setRegions(regions []*metapb.Region, leaders map[uint64]uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.truth, w.pdRegions = regions, regions
	w.leaders, w.pdLeaders = leaders, leaders
}

func (w *world) setTruth(regions []*metapb.Region, leaders map[uint64]uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.truth, w.leaders = regions, leaders
}

func (w *world) callsOf(method string) []call {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []call
	for _, c := range w.calls {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

func serveFake(t *testing.T, register func(*grpc.Server)) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	register(srv)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(lis) })
	t.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})
	return lis.Addr().String()
}

// client starts the fake PD and returns a client of the world.
func (w *world) client(opts Options) *Client {
	addr := serveFake(w.t, func(s *grpc.Server) { pdpb.RegisterPDServer(s, &fakePD{w: w}) })
	if opts.MinBackoff == 0 {
		opts.MinBackoff = time.Millisecond
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = 5 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := New(ctx, addr, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(c.Close)
	return c
}

func findRegion(regions []*metapb.Region, key []byte) *metapb.Region {
	for _, r := range regions {
		if bytes.Compare(key, r.GetStartKey()) >= 0 && (len(r.GetEndKey()) == 0 || bytes.Compare(key, r.GetEndKey()) < 0) {
			return r
		}
	}
	return nil
}

type fakePD struct {
	pdpb.UnimplementedPDServer
	w *world
}

func (p *fakePD) answer(r *metapb.Region) *pdpb.GetRegionResponse {
	if r == nil {
		return &pdpb.GetRegionResponse{Header: &pdpb.ResponseHeader{Error: &pdpb.Error{Type: pdpb.ErrorType_REGION_NOT_FOUND}}}
	}
	return &pdpb.GetRegionResponse{Region: r, Leader: peerOnStore(r, p.w.pdLeaders[r.GetId()])}
}

func (p *fakePD) GetRegionByKey(_ context.Context, req *pdpb.GetRegionByKeyRequest) (*pdpb.GetRegionResponse, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return p.answer(findRegion(p.w.pdRegions, req.GetKey())), nil
}

func (p *fakePD) GetRegionByID(_ context.Context, req *pdpb.GetRegionByIDRequest) (*pdpb.GetRegionResponse, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	for _, r := range p.w.pdRegions {
		if r.GetId() == req.GetRegionId() {
			return p.answer(r), nil
		}
	}
	return p.answer(nil), nil
}

func (p *fakePD) GetStore(_ context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	addr, ok := p.w.stores[req.GetStoreId()]
	if !ok {
		return &pdpb.GetStoreResponse{Header: &pdpb.ResponseHeader{Error: &pdpb.Error{Type: pdpb.ErrorType_STORE_NOT_FOUND}}}, nil
	}
	return &pdpb.GetStoreResponse{Store: &metapb.Store{Id: req.GetStoreId(), Address: addr}}, nil
}

func (p *fakePD) Tso(stream pdpb.PD_TsoServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		n := max(req.GetCount(), 1)
		p.w.mu.Lock()
		now := uint64(time.Now().UnixMilli()) << 18
		p.w.nextTS = max(p.w.nextTS, now)
		first := p.w.nextTS
		p.w.nextTS += uint64(n)
		p.w.mu.Unlock()
		if err := stream.Send(&pdpb.TsoResponse{First: first, Count: n}); err != nil {
			return err
		}
	}
}

type fakeStore struct {
	storepb.UnimplementedStoreServer
	w  *world
	id uint64
}

// enter records the call and checks its route; it returns with w.mu held
// when both are nil.
func (s *fakeStore) enter(method string, rc *kvrpcpb.Context, req proto.Message, keys ...[]byte) (*kvrpcpb.RegionError, error) {
	w := s.w
	w.mu.Lock()
	c := call{store: s.id, method: method, region: rc.GetRegionId()}
	for _, k := range keys {
		c.keys = append(c.keys, string(k))
	}
	w.calls = append(w.calls, c)
	if inject := w.inject; inject != nil {
		w.mu.Unlock()
		if re, err := inject(s.id, method, rc, req); re != nil || err != nil {
			return re, err
		}
		w.mu.Lock()
	}
	var r *metapb.Region
	for _, x := range w.truth {
		if x.GetId() == rc.GetRegionId() {
			r = x
		}
	}
	var re *kvrpcpb.RegionError
	switch {
	case r == nil:
		re = &kvrpcpb.RegionError{RegionNotFound: &kvrpcpb.RegionNotFound{RegionId: rc.GetRegionId()}}
	case w.leaders[r.GetId()] != s.id:
		re = &kvrpcpb.RegionError{NotLeader: &kvrpcpb.NotLeader{RegionId: r.GetId(), Leader: peerOnStore(r, w.leaders[r.GetId()])}}
	case rc.GetRegionEpoch().GetVersion() != r.GetRegionEpoch().GetVersion():
		re = &kvrpcpb.RegionError{EpochNotMatch: &kvrpcpb.EpochNotMatch{CurrentRegions: w.truth}}
	default:
		for _, k := range keys {
			if findRegion([]*metapb.Region{r}, k) == nil {
				re = &kvrpcpb.RegionError{KeyNotInRegion: &kvrpcpb.KeyNotInRegion{Key: k, RegionId: r.GetId()}}
			}
		}
	}
	if re != nil {
		w.mu.Unlock()
	}
	return re, nil
}

func (s *fakeStore) KvGet(_ context.Context, req *kvrpcpb.GetRequest) (*kvrpcpb.GetResponse, error) {
	if re, err := s.enter("Get", req.GetContext(), req, req.GetKey()); re != nil || err != nil {
		return &kvrpcpb.GetResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	v, ok := s.w.data[string(req.GetKey())]
	if req.GetHeadOnly() {
		return &kvrpcpb.GetResponse{Value: v[:min(int(req.GetValuePrefixLen()), len(v))], ValueLen: uint64(len(v)), NotFound: !ok}, nil
	}
	return &kvrpcpb.GetResponse{Value: v, NotFound: !ok}, nil
}

func (s *fakeStore) KvBatchGet(_ context.Context, req *kvrpcpb.BatchGetRequest) (*kvrpcpb.BatchGetResponse, error) {
	if re, err := s.enter("BatchGet", req.GetContext(), req, req.GetKeys()...); re != nil || err != nil {
		return &kvrpcpb.BatchGetResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	resp := &kvrpcpb.BatchGetResponse{}
	for i, k := range req.GetKeys() {
		if s.w.pageKeys > 0 && i >= s.w.pageKeys {
			resp.NextIndex = uint32(i)
			break
		}
		if v, ok := s.w.data[string(k)]; ok {
			p := &kvrpcpb.KvPair{Key: k, Value: v}
			if req.GetHeadOnly() {
				p.Value, p.ValueLen = v[:min(int(req.GetValuePrefixLen()), len(v))], uint64(len(v))
			}
			resp.Pairs = append(resp.Pairs, p)
		}
	}
	return resp, nil
}

func (s *fakeStore) KvScan(_ context.Context, req *kvrpcpb.ScanRequest) (*kvrpcpb.ScanResponse, error) {
	if re, err := s.enter("Scan", req.GetContext(), req, req.GetStartKey()); re != nil || err != nil {
		return &kvrpcpb.ScanResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	var r *metapb.Region
	for _, x := range s.w.truth {
		if x.GetId() == req.GetContext().GetRegionId() {
			r = x
		}
	}
	end := req.GetEndKey()
	if len(end) == 0 || (len(r.GetEndKey()) > 0 && bytes.Compare(r.GetEndKey(), end) < 0) {
		end = r.GetEndKey()
	}
	var keys []string
	for k := range s.w.data {
		if k >= string(req.GetStartKey()) && (len(end) == 0 || k < string(end)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	resp := &kvrpcpb.ScanResponse{}
	for _, k := range keys {
		if (req.GetLimit() > 0 && len(resp.Pairs) >= int(req.GetLimit())) || (s.w.pageKeys > 0 && len(resp.Pairs) >= s.w.pageKeys) {
			resp.ResumeKey = []byte(k)
			break
		}
		resp.Visited++
		p := &kvrpcpb.KvPair{Key: []byte(k), Value: s.w.data[k]}
		if req.GetKeyOnly() {
			p.Value = nil
		}
		resp.Pairs = append(resp.Pairs, p)
	}
	return resp, nil
}

func (s *fakeStore) KvDeleteRange(_ context.Context, req *kvrpcpb.DeleteRangeRequest) (*kvrpcpb.DeleteRangeResponse, error) {
	if re, err := s.enter("DeleteRange", req.GetContext(), req, req.GetStartKey()); re != nil || err != nil {
		return &kvrpcpb.DeleteRangeResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	for k := range s.w.data {
		if k >= string(req.GetStartKey()) && (len(req.GetEndKey()) == 0 || k < string(req.GetEndKey())) {
			delete(s.w.data, k)
		}
	}
	return &kvrpcpb.DeleteRangeResponse{}, nil
}

func mutKeys(ms []*kvrpcpb.Mutation) [][]byte {
	var out [][]byte
	for _, m := range ms {
		out = append(out, m.GetKey())
	}
	return out
}

func (s *fakeStore) KvPrewrite(_ context.Context, req *kvrpcpb.PrewriteRequest) (*kvrpcpb.PrewriteResponse, error) {
	if re, err := s.enter("Prewrite", req.GetContext(), req, mutKeys(req.GetMutations())...); re != nil || err != nil {
		if errors.Is(err, errConflict) {
			k := req.GetMutations()[0].GetKey()
			return &kvrpcpb.PrewriteResponse{Errors: []*kvrpcpb.KeyError{{Conflict: &kvrpcpb.WriteConflict{Key: k}}}}, nil
		}
		return &kvrpcpb.PrewriteResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	if req.GetTryOnePc() {
		s.w.apply(req.GetMutations())
		return &kvrpcpb.PrewriteResponse{OnePcCommitTs: req.GetOnePcCommitTs()}, nil
	}
	s.w.pending[req.GetStartVersion()] = append(s.w.pending[req.GetStartVersion()], req.GetMutations()...)
	return &kvrpcpb.PrewriteResponse{}, nil
}

// apply writes mutations; needs w.mu.
func (w *world) apply(ms []*kvrpcpb.Mutation) {
	for _, m := range ms {
		if m.GetOp() == kvrpcpb.Op_PUT {
			w.data[string(m.GetKey())] = m.GetValue()
		} else {
			delete(w.data, string(m.GetKey()))
		}
	}
}

func (s *fakeStore) KvCommit(_ context.Context, req *kvrpcpb.CommitRequest) (*kvrpcpb.CommitResponse, error) {
	if re, err := s.enter("Commit", req.GetContext(), req, req.GetKeys()...); re != nil || err != nil {
		return &kvrpcpb.CommitResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	var keep, commit []*kvrpcpb.Mutation
	for _, m := range s.w.pending[req.GetStartVersion()] {
		if slices.ContainsFunc(req.GetKeys(), func(k []byte) bool { return bytes.Equal(k, m.GetKey()) }) {
			commit = append(commit, m)
		} else {
			keep = append(keep, m)
		}
	}
	s.w.apply(commit)
	s.w.pending[req.GetStartVersion()] = keep
	return &kvrpcpb.CommitResponse{CommitVersion: req.GetCommitVersion()}, nil
}

func (s *fakeStore) KvBatchRollback(_ context.Context, req *kvrpcpb.BatchRollbackRequest) (*kvrpcpb.BatchRollbackResponse, error) {
	if re, err := s.enter("BatchRollback", req.GetContext(), req, req.GetKeys()...); re != nil || err != nil {
		return &kvrpcpb.BatchRollbackResponse{RegionError: re}, err
	}
	defer s.w.mu.Unlock()
	delete(s.w.pending, req.GetStartVersion())
	return &kvrpcpb.BatchRollbackResponse{}, nil
}
