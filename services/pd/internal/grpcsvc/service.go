package grpcsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/services/pd/internal/cluster"
	"github.com/nokv/nokv/services/pd/internal/id"
	"github.com/nokv/nokv/services/pd/internal/schedule"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"github.com/nokv/nokv/services/pd/internal/tso"
)

// Observer receives TSO statistics (for metrics); nil fields are skipped.
type Observer struct {
	TSOBatch func(count uint32)
}

// Leader is what the leading PD member serves from. It is built when the
// member wins the election and dropped when it loses it.
type Leader struct {
	Cluster   *cluster.Cluster
	Scheduler *schedule.Scheduler
	IDs       *id.Allocator
	Oracle    *tso.Oracle
}

// Service implements pdpb.PDServer.
type Service struct {
	pdpb.UnimplementedPDServer

	// Lead returns the leader state if this member leads and still holds
	// its lease; otherwise an error for the caller, a NotLeader status
	// naming the leader when it is known.
	Lead    func(ctx context.Context) (*Leader, error)
	Storage *storage.Storage
	// LeaderAddr, if set, names the PD leader's address for ListMembers.
	LeaderAddr func() string
	Now        func() time.Time
	Log        *slog.Logger
	Observe    Observer

	gcMu sync.Mutex

	logMu   sync.Mutex
	lastLog map[string]time.Time
}

var _ pdpb.PDServer = (*Service)(nil)

// GetRegionByKey implements pdpb.PDServer.
func (s *Service) GetRegionByKey(ctx context.Context, req *pdpb.GetRegionByKeyRequest) (*pdpb.GetRegionResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	region, leader := l.Cluster.GetRegionByKey(req.GetKey())
	if region == nil {
		return &pdpb.GetRegionResponse{Header: header(fmt.Errorf("no region holds key %q: %w", req.GetKey(), cluster.ErrRegionNotFound))}, nil
	}
	return &pdpb.GetRegionResponse{Header: header(nil), Region: region, Leader: leader}, nil
}

// GetRegionByID implements pdpb.PDServer.
func (s *Service) GetRegionByID(ctx context.Context, req *pdpb.GetRegionByIDRequest) (*pdpb.GetRegionResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	region, leader := l.Cluster.GetRegionByID(req.GetRegionId())
	if region == nil {
		return &pdpb.GetRegionResponse{Header: header(fmt.Errorf("region %d: %w", req.GetRegionId(), cluster.ErrRegionNotFound))}, nil
	}
	return &pdpb.GetRegionResponse{Header: header(nil), Region: region, Leader: leader}, nil
}

// ScanRegions implements pdpb.PDServer.
func (s *Service) ScanRegions(ctx context.Context, req *pdpb.ScanRegionsRequest) (*pdpb.ScanRegionsResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetLimit() < 0 {
		return &pdpb.ScanRegionsResponse{Header: header(fmt.Errorf("limit %d: %w", req.GetLimit(), errInvalid))}, nil
	}
	regions := l.Cluster.ScanRegions(req.GetStartKey(), req.GetEndKey(), int(req.GetLimit()))
	return &pdpb.ScanRegionsResponse{Header: header(nil), Regions: regions}, nil
}

// GetStore implements pdpb.PDServer.
func (s *Service) GetStore(ctx context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	st, err := l.Cluster.GetStore(req.GetStoreId())
	if err != nil {
		return &pdpb.GetStoreResponse{Header: header(err)}, nil
	}
	return &pdpb.GetStoreResponse{Header: header(nil), Store: st}, nil
}

// GetAllStores implements pdpb.PDServer.
func (s *Service) GetAllStores(ctx context.Context, req *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	stores := l.Cluster.GetAllStores(req.GetExcludeTombstones())
	var stats []*pdpb.StoreStats
	for _, st := range l.Cluster.GetAllStoreStats() {
		if !req.GetExcludeTombstones() || slices.ContainsFunc(stores, func(m *metapb.Store) bool { return m.GetId() == st.GetStoreId() }) {
			stats = append(stats, st)
		}
	}
	return &pdpb.GetAllStoresResponse{Header: header(nil), Stores: stores, Stats: stats}, nil
}

// StoreHeartbeat implements pdpb.PDServer.
func (s *Service) StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetStats().GetStoreId() == 0 {
		return &pdpb.StoreHeartbeatResponse{Header: header(fmt.Errorf("store heartbeat without store id: %w", errInvalid))}, nil
	}
	err = l.Cluster.HandleStoreHeartbeat(req.GetStats(), req.GetNonce(), s.Now())
	if err != nil {
		s.warnEvery("heartbeat", req.GetStats().GetStoreId(), "store heartbeat refused", "store", req.GetStats().GetStoreId(), "address", req.GetStats().GetAddress(), "err", err)
	}
	return &pdpb.StoreHeartbeatResponse{Header: header(err)}, nil
}

// GetClusterInfo implements pdpb.PDServer.
func (s *Service) GetClusterInfo(ctx context.Context, _ *pdpb.GetClusterInfoRequest) (*pdpb.GetClusterInfoResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	return &pdpb.GetClusterInfoResponse{Header: header(nil), ClusterId: l.Cluster.ClusterID()}, nil
}

// ClaimStore implements pdpb.PDServer.
func (s *Service) ClaimStore(ctx context.Context, req *pdpb.ClaimStoreRequest) (*pdpb.ClaimStoreResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	id, err := l.Cluster.ClaimStore(req.GetStoreId(), req.GetAddress(), req.GetNonce(), func() (uint64, error) { return l.IDs.Alloc(1) })
	if err != nil {
		s.Log.Error("store claim refused", "store", req.GetStoreId(), "address", req.GetAddress(), "err", err)
		return &pdpb.ClaimStoreResponse{Header: header(err)}, nil
	}
	s.Log.Info("store claimed its id", "store", id, "address", req.GetAddress(), "asked", req.GetStoreId())
	return &pdpb.ClaimStoreResponse{Header: header(nil), StoreId: id, ClusterId: l.Cluster.ClusterID()}, nil
}

// RemoveStore implements pdpb.PDServer.
func (s *Service) RemoveStore(ctx context.Context, req *pdpb.RemoveStoreRequest) (*pdpb.RemoveStoreResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	err = l.Cluster.RemoveStore(req.GetStoreId())
	if err == nil {
		s.Log.Warn("store removed: it is a tombstone now and its peers will be replaced", "store", req.GetStoreId())
	}
	return &pdpb.RemoveStoreResponse{Header: header(err)}, nil
}

// warnEvery logs at most once a minute per kind and store: a refused store
// retries every heartbeat.
func (s *Service) warnEvery(kind string, store uint64, msg string, args ...any) {
	key := fmt.Sprintf("%s/%d", kind, store)
	now := s.Now()
	s.logMu.Lock()
	if s.lastLog == nil {
		s.lastLog = map[string]time.Time{}
	}
	last, seen := s.lastLog[key]
	if seen && now.Sub(last) < time.Minute {
		s.logMu.Unlock()
		return
	}
	s.lastLog[key] = now
	s.logMu.Unlock()
	s.Log.Warn(msg, args...)
}

// RegionHeartbeat implements pdpb.PDServer: the catalog takes the heartbeat
// first (rejecting stale ones), then the scheduler may answer with one operation.
func (s *Service) RegionHeartbeat(ctx context.Context, req *pdpb.RegionHeartbeatRequest) (*pdpb.RegionHeartbeatResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.Cluster.HandleRegionHeartbeat(req); err != nil {
		return &pdpb.RegionHeartbeatResponse{Header: header(err), RegionId: req.GetRegion().GetId()}, nil
	}
	if op := l.Scheduler.Dispatch(req, s.Now()); op != nil {
		op.Header = header(nil)
		return op, nil
	}
	return &pdpb.RegionHeartbeatResponse{Header: header(nil), RegionId: req.GetRegion().GetId(), RegionEpoch: req.GetRegion().GetRegionEpoch()}, nil
}

// AllocID implements pdpb.PDServer.
func (s *Service) AllocID(ctx context.Context, req *pdpb.AllocIDRequest) (*pdpb.AllocIDResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	n := max(req.GetCount(), 1)
	first, err := l.IDs.Alloc(n)
	if err != nil {
		return &pdpb.AllocIDResponse{Header: header(err)}, nil
	}
	return &pdpb.AllocIDResponse{Header: header(nil), FirstId: first, Count: n}, nil
}

// Tso implements pdpb.PDServer: each request on the stream gets one block of
// consecutive timestamps. Leadership is checked on every request: a member
// that lost it ends the stream with the NotLeader status, and the client
// reconnects to the new leader.
func (s *Service) Tso(stream pdpb.PD_TsoServer) error {
	ctx := stream.Context()
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client went away; nothing is owed to it
		}
		l, err := s.Lead(ctx)
		if err != nil {
			return err
		}
		n := max(req.GetCount(), 1)
		first, err := l.Oracle.Get(n)
		if err != nil {
			// If the leadership ended under this request, the stream ends
			// with NotLeader and the client reconnects to the new leader;
			// a header error would keep it here.
			if _, lerr := s.Lead(ctx); lerr != nil {
				return lerr
			}
			if errors.Is(err, tso.ErrClosed) || errors.Is(err, storage.ErrGuardFailed) {
				return status.Error(codes.Unavailable, err.Error())
			}
		}
		resp := &pdpb.TsoResponse{Header: header(err)}
		if err == nil {
			resp.First, resp.Count = first, n
			if s.Observe.TSOBatch != nil {
				s.Observe.TSOBatch(n)
			}
		}
		if err := stream.Send(resp); err != nil {
			return nil
		}
	}
}

// AskSplit implements pdpb.PDServer: ids for the new region and one per peer.
func (s *Service) AskSplit(ctx context.Context, req *pdpb.AskSplitRequest) (*pdpb.AskSplitResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	r := req.GetRegion()
	if r.GetId() == 0 || len(r.GetPeers()) == 0 {
		return &pdpb.AskSplitResponse{Header: header(fmt.Errorf("ask split needs a region with peers: %w", errInvalid))}, nil
	}
	if known, _ := l.Cluster.GetRegionByID(r.GetId()); known == nil {
		return &pdpb.AskSplitResponse{Header: header(fmt.Errorf("ask split of region %d: %w", r.GetId(), cluster.ErrRegionNotFound))}, nil
	}
	n := uint32(1 + len(r.GetPeers()))
	first, err := l.IDs.Alloc(n)
	if err != nil {
		return &pdpb.AskSplitResponse{Header: header(err)}, nil
	}
	peers := make([]uint64, len(r.GetPeers()))
	for i := range peers {
		peers[i] = first + 1 + uint64(i)
	}
	return &pdpb.AskSplitResponse{Header: header(nil), NewRegionId: first, NewPeerIds: peers}, nil
}

// ReportSplit implements pdpb.PDServer.
func (s *Service) ReportSplit(ctx context.Context, req *pdpb.ReportSplitRequest) (*pdpb.ReportSplitResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	return &pdpb.ReportSplitResponse{Header: header(l.Cluster.ReportSplit(req.GetLeft(), req.GetRight()))}, nil
}

// RemoveRegion implements pdpb.PDServer.
func (s *Service) RemoveRegion(ctx context.Context, req *pdpb.RemoveRegionRequest) (*pdpb.RemoveRegionResponse, error) {
	l, err := s.Lead(ctx)
	if err != nil {
		return nil, err
	}
	return &pdpb.RemoveRegionResponse{Header: header(l.Cluster.RemoveRegion(req.GetRegionId()))}, nil
}

// GetGCSafePoint implements pdpb.PDServer.
func (s *Service) GetGCSafePoint(ctx context.Context, _ *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	if _, err := s.Lead(ctx); err != nil {
		return nil, err
	}
	sp, err := s.Storage.GetUint64(storage.KeyGCSafePoint)
	if err != nil {
		return &pdpb.GetGCSafePointResponse{Header: header(err)}, nil
	}
	return &pdpb.GetGCSafePointResponse{Header: header(nil), SafePoint: sp}, nil
}

// UpdateGCSafePoint implements pdpb.PDServer. The safe point only moves forward:
// a lower value leaves it where it is and is reported back.
func (s *Service) UpdateGCSafePoint(ctx context.Context, req *pdpb.UpdateGCSafePointRequest) (*pdpb.UpdateGCSafePointResponse, error) {
	if _, err := s.Lead(ctx); err != nil {
		return nil, err
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	cur, err := s.Storage.GetUint64(storage.KeyGCSafePoint)
	if err != nil {
		return &pdpb.UpdateGCSafePointResponse{Header: header(err)}, nil
	}
	if req.GetSafePoint() > cur {
		b := s.Storage.NewBatch()
		b.PutUint64(storage.KeyGCSafePoint, req.GetSafePoint())
		if err := b.Commit(); err != nil {
			return &pdpb.UpdateGCSafePointResponse{Header: header(err)}, nil
		}
		cur = req.GetSafePoint()
	}
	return &pdpb.UpdateGCSafePointResponse{Header: header(nil), NewSafePoint: cur}, nil
}

// maxClusterID returns the largest region or peer id in the catalog, so the
// allocator never hands out an id the bootstrap file already used.
func MaxClusterID(regions []*pdpb.RegionWithLeader, stores []*metapb.Store) uint64 {
	var m uint64
	for _, r := range regions {
		m = max(m, r.GetRegion().GetId())
		for _, p := range r.GetRegion().GetPeers() {
			m = max(m, p.GetId())
		}
	}
	for _, st := range stores {
		m = max(m, st.GetId())
	}
	return m
}
