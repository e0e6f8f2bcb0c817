package grpcsvc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

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

// Service implements pdpb.PDServer.
type Service struct {
	pdpb.UnimplementedPDServer

	Cluster   *cluster.Cluster
	Scheduler *schedule.Scheduler
	IDs       *id.Allocator
	Oracle    *tso.Oracle
	Storage   *storage.Storage
	Now       func() time.Time
	Log       *slog.Logger
	Observe   Observer

	gcMu sync.Mutex

	logMu   sync.Mutex
	lastLog map[string]time.Time
}

var _ pdpb.PDServer = (*Service)(nil)

// GetRegionByKey implements pdpb.PDServer.
func (s *Service) GetRegionByKey(_ context.Context, req *pdpb.GetRegionByKeyRequest) (*pdpb.GetRegionResponse, error) {
	region, leader := s.Cluster.GetRegionByKey(req.GetKey())
	if region == nil {
		return &pdpb.GetRegionResponse{Header: header(fmt.Errorf("no region holds key %q: %w", req.GetKey(), cluster.ErrRegionNotFound))}, nil
	}
	return &pdpb.GetRegionResponse{Header: header(nil), Region: region, Leader: leader}, nil
}

// GetRegionByID implements pdpb.PDServer.
func (s *Service) GetRegionByID(_ context.Context, req *pdpb.GetRegionByIDRequest) (*pdpb.GetRegionResponse, error) {
	region, leader := s.Cluster.GetRegionByID(req.GetRegionId())
	if region == nil {
		return &pdpb.GetRegionResponse{Header: header(fmt.Errorf("region %d: %w", req.GetRegionId(), cluster.ErrRegionNotFound))}, nil
	}
	return &pdpb.GetRegionResponse{Header: header(nil), Region: region, Leader: leader}, nil
}

// ScanRegions implements pdpb.PDServer.
func (s *Service) ScanRegions(_ context.Context, req *pdpb.ScanRegionsRequest) (*pdpb.ScanRegionsResponse, error) {
	if req.GetLimit() < 0 {
		return &pdpb.ScanRegionsResponse{Header: header(fmt.Errorf("limit %d: %w", req.GetLimit(), errInvalid))}, nil
	}
	regions := s.Cluster.ScanRegions(req.GetStartKey(), req.GetEndKey(), int(req.GetLimit()))
	return &pdpb.ScanRegionsResponse{Header: header(nil), Regions: regions}, nil
}

// GetStore implements pdpb.PDServer.
func (s *Service) GetStore(_ context.Context, req *pdpb.GetStoreRequest) (*pdpb.GetStoreResponse, error) {
	st, err := s.Cluster.GetStore(req.GetStoreId())
	if err != nil {
		return &pdpb.GetStoreResponse{Header: header(err)}, nil
	}
	return &pdpb.GetStoreResponse{Header: header(nil), Store: st}, nil
}

// GetAllStores implements pdpb.PDServer.
func (s *Service) GetAllStores(_ context.Context, req *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
	stores := s.Cluster.GetAllStores(req.GetExcludeTombstones())
	var stats []*pdpb.StoreStats
	for _, st := range s.Cluster.GetAllStoreStats() {
		if !req.GetExcludeTombstones() || slices.ContainsFunc(stores, func(m *metapb.Store) bool { return m.GetId() == st.GetStoreId() }) {
			stats = append(stats, st)
		}
	}
	return &pdpb.GetAllStoresResponse{Header: header(nil), Stores: stores, Stats: stats}, nil
}

// StoreHeartbeat implements pdpb.PDServer.
func (s *Service) StoreHeartbeat(_ context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	if req.GetStats().GetStoreId() == 0 {
		return &pdpb.StoreHeartbeatResponse{Header: header(fmt.Errorf("store heartbeat without store id: %w", errInvalid))}, nil
	}
	err := s.Cluster.HandleStoreHeartbeat(req.GetStats(), req.GetNonce(), s.Now())
	if err != nil {
		s.warnEvery("heartbeat", req.GetStats().GetStoreId(), "store heartbeat refused", "store", req.GetStats().GetStoreId(), "address", req.GetStats().GetAddress(), "err", err)
	}
	return &pdpb.StoreHeartbeatResponse{Header: header(err)}, nil
}

// GetClusterInfo implements pdpb.PDServer.
func (s *Service) GetClusterInfo(context.Context, *pdpb.GetClusterInfoRequest) (*pdpb.GetClusterInfoResponse, error) {
	return &pdpb.GetClusterInfoResponse{Header: header(nil), ClusterId: s.Cluster.ClusterID()}, nil
}

// ClaimStore implements pdpb.PDServer.
func (s *Service) ClaimStore(_ context.Context, req *pdpb.ClaimStoreRequest) (*pdpb.ClaimStoreResponse, error) {
	id, err := s.Cluster.ClaimStore(req.GetStoreId(), req.GetAddress(), req.GetNonce(), func() (uint64, error) { return s.IDs.Alloc(1) })
	if err != nil {
		s.Log.Error("store claim refused", "store", req.GetStoreId(), "address", req.GetAddress(), "err", err)
		return &pdpb.ClaimStoreResponse{Header: header(err)}, nil
	}
	s.Log.Info("store claimed its id", "store", id, "address", req.GetAddress(), "asked", req.GetStoreId())
	return &pdpb.ClaimStoreResponse{Header: header(nil), StoreId: id, ClusterId: s.Cluster.ClusterID()}, nil
}

// RemoveStore implements pdpb.PDServer.
func (s *Service) RemoveStore(_ context.Context, req *pdpb.RemoveStoreRequest) (*pdpb.RemoveStoreResponse, error) {
	err := s.Cluster.RemoveStore(req.GetStoreId())
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
func (s *Service) RegionHeartbeat(_ context.Context, req *pdpb.RegionHeartbeatRequest) (*pdpb.RegionHeartbeatResponse, error) {
	if err := s.Cluster.HandleRegionHeartbeat(req); err != nil {
		return &pdpb.RegionHeartbeatResponse{Header: header(err), RegionId: req.GetRegion().GetId()}, nil
	}
	if op := s.Scheduler.Dispatch(req, s.Now()); op != nil {
		op.Header = header(nil)
		return op, nil
	}
	return &pdpb.RegionHeartbeatResponse{Header: header(nil), RegionId: req.GetRegion().GetId(), RegionEpoch: req.GetRegion().GetRegionEpoch()}, nil
}

// AllocID implements pdpb.PDServer.
func (s *Service) AllocID(_ context.Context, req *pdpb.AllocIDRequest) (*pdpb.AllocIDResponse, error) {
	n := max(req.GetCount(), 1)
	first, err := s.IDs.Alloc(n)
	if err != nil {
		return &pdpb.AllocIDResponse{Header: header(err)}, nil
	}
	return &pdpb.AllocIDResponse{Header: header(nil), FirstId: first, Count: n}, nil
}

// Tso implements pdpb.PDServer: each request on the stream gets one block of
// consecutive timestamps.
func (s *Service) Tso(stream pdpb.PD_TsoServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil // the client went away; nothing is owed to it
		}
		n := max(req.GetCount(), 1)
		first, err := s.Oracle.Get(n)
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
func (s *Service) AskSplit(_ context.Context, req *pdpb.AskSplitRequest) (*pdpb.AskSplitResponse, error) {
	r := req.GetRegion()
	if r.GetId() == 0 || len(r.GetPeers()) == 0 {
		return &pdpb.AskSplitResponse{Header: header(fmt.Errorf("ask split needs a region with peers: %w", errInvalid))}, nil
	}
	if known, _ := s.Cluster.GetRegionByID(r.GetId()); known == nil {
		return &pdpb.AskSplitResponse{Header: header(fmt.Errorf("ask split of region %d: %w", r.GetId(), cluster.ErrRegionNotFound))}, nil
	}
	n := uint32(1 + len(r.GetPeers()))
	first, err := s.IDs.Alloc(n)
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
func (s *Service) ReportSplit(_ context.Context, req *pdpb.ReportSplitRequest) (*pdpb.ReportSplitResponse, error) {
	return &pdpb.ReportSplitResponse{Header: header(s.Cluster.ReportSplit(req.GetLeft(), req.GetRight()))}, nil
}

// RemoveRegion implements pdpb.PDServer.
func (s *Service) RemoveRegion(_ context.Context, req *pdpb.RemoveRegionRequest) (*pdpb.RemoveRegionResponse, error) {
	return &pdpb.RemoveRegionResponse{Header: header(s.Cluster.RemoveRegion(req.GetRegionId()))}, nil
}

// GetGCSafePoint implements pdpb.PDServer.
func (s *Service) GetGCSafePoint(context.Context, *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	sp, err := s.Storage.GetUint64(storage.KeyGCSafePoint)
	if err != nil {
		return &pdpb.GetGCSafePointResponse{Header: header(err)}, nil
	}
	return &pdpb.GetGCSafePointResponse{Header: header(nil), SafePoint: sp}, nil
}

// UpdateGCSafePoint implements pdpb.PDServer. The safe point only moves forward:
// a lower value leaves it where it is and is reported back.
func (s *Service) UpdateGCSafePoint(_ context.Context, req *pdpb.UpdateGCSafePointRequest) (*pdpb.UpdateGCSafePointResponse, error) {
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
