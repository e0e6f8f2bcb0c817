package pdclient

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
)

// Client is NoKV's PD client: routing with a region and store cache, ids,
// timestamps, heartbeats, splits and the GC safe point. It is safe for
// concurrent use. See the package documentation for retries and errors.
type Client struct {
	pd        pdpb.PDClient
	opts      Options
	clusterID *atomic.Uint64
	cache     *RegionCache
	tso       *TSOClient

	storeMu sync.RWMutex
	stores  map[uint64]storeEntry

	// life is cancelled by Close; calls in progress watch it.
	life      context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// storeEntry is a cached store; store is never modified once cached.
type storeEntry struct {
	store    *metapb.Store
	inserted time.Time
}

// New returns a client of the PD behind conn and starts its TSO stream
// goroutine, which connects in the background. The caller keeps ownership
// of conn and closes it after Close.
func New(conn grpc.ClientConnInterface, opts Options) (*Client, error) {
	if conn == nil {
		return nil, fmt.Errorf("%w: nil connection", ErrInvalidOptions)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	clusterID := new(atomic.Uint64)
	clusterID.Store(opts.ClusterID)
	pd := pdpb.NewPDClient(idConn{cc: conn, id: clusterID})
	tso, err := NewTSOClient(pd, opts.TSO)
	if err != nil {
		return nil, fmt.Errorf("pdclient: start TSO client: %w", err)
	}
	life, cancel := context.WithCancel(context.Background())
	return &Client{
		pd:        pd,
		opts:      opts,
		clusterID: clusterID,
		cache:     NewRegionCache(opts.RegionCacheTTL, opts.Now),
		tso:       tso,
		stores:    make(map[uint64]storeEntry),
		life:      life,
		cancel:    cancel,
	}, nil
}

// Close fails calls in progress and later ones with ErrClosed, and stops
// the TSO stream goroutine, returning once it has exited. It does not close
// the gRPC connection. It is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(c.cancel)
	c.tso.Close()
}

// Cache returns the client's region cache, for callers that learn about
// routes from stores: they invalidate a region on an epoch error and update
// its leader on a "not leader" hint.
func (c *Client) Cache() *RegionCache { return c.cache }

// GetRegion returns the region holding key and its leader (nil if PD does
// not know it). It answers from the cache when it can; otherwise it asks PD
// and caches the answer. A key that no region holds fails with an error
// matching ErrRegionNotFound.
func (c *Client) GetRegion(ctx context.Context, key []byte) (*metapb.Region, *metapb.Peer, error) {
	if region, leader, ok := c.cache.Lookup(key); ok {
		return region, leader, nil
	}
	return c.getRegion(ctx, key)
}

// GetRegionShared is GetRegion answering from the cache without copying:
// what it returns may be the cache's own region and leader, which the
// caller must not modify. The transactional client locates every request
// with it.
func (c *Client) GetRegionShared(ctx context.Context, key []byte) (*metapb.Region, *metapb.Peer, error) {
	if region, leader, ok := c.cache.LookupShared(key); ok {
		return region, leader, nil
	}
	return c.getRegion(ctx, key)
}

// getRegion asks PD for the region holding key and caches the answer.
func (c *Client) getRegion(ctx context.Context, key []byte) (*metapb.Region, *metapb.Peer, error) {
	resp, err := invoke(ctx, c, pdpb.PD_GetRegionByKey_FullMethodName, c.pd.GetRegionByKey,
		&pdpb.GetRegionByKeyRequest{Key: key})
	if err != nil {
		return nil, nil, fmt.Errorf("pdclient: get region of key %q: %w", key, err)
	}
	if resp.GetRegion() == nil {
		return nil, nil, fmt.Errorf("pdclient: get region of key %q: empty answer: %w", key, ErrRegionNotFound)
	}
	c.cache.Insert(resp.GetRegion(), resp.GetLeader())
	return resp.GetRegion(), resp.GetLeader(), nil
}

// GetRegionByID asks PD for the region with that id and its leader, and
// caches the answer; it never answers from the cache (use
// Cache().LookupByID for that). A region PD does not know fails with an
// error matching ErrRegionNotFound and is dropped from the cache.
func (c *Client) GetRegionByID(ctx context.Context, id uint64) (*metapb.Region, *metapb.Peer, error) {
	resp, err := invoke(ctx, c, pdpb.PD_GetRegionByID_FullMethodName, c.pd.GetRegionByID,
		&pdpb.GetRegionByIDRequest{RegionId: id})
	if err == nil && resp.GetRegion() == nil {
		err = fmt.Errorf("empty answer: %w", ErrRegionNotFound)
	}
	if err != nil {
		if errors.Is(err, ErrRegionNotFound) {
			c.cache.InvalidateRegion(id)
		}
		return nil, nil, fmt.Errorf("pdclient: get region %d: %w", id, err)
	}
	c.cache.Insert(resp.GetRegion(), resp.GetLeader())
	return resp.GetRegion(), resp.GetLeader(), nil
}

// ScanRegions asks PD for the regions overlapping [start, end) in key order,
// at most limit of them (0: all; an empty end: to the end of the key
// space), and caches them.
func (c *Client) ScanRegions(ctx context.Context, start, end []byte, limit int) ([]*pdpb.RegionWithLeader, error) {
	resp, err := invoke(ctx, c, pdpb.PD_ScanRegions_FullMethodName, c.pd.ScanRegions,
		&pdpb.ScanRegionsRequest{StartKey: start, EndKey: end, Limit: int32(min(limit, math.MaxInt32))})
	if err != nil {
		return nil, fmt.Errorf("pdclient: scan regions [%q, %q): %w", start, end, err)
	}
	for _, r := range resp.GetRegions() {
		c.cache.Insert(r.GetRegion(), r.GetLeader())
	}
	return resp.GetRegions(), nil
}

// GetStore returns the store with that id, from the cache if it was fetched
// less than RegionCacheTTL ago. Tombstone stores are returned too (check
// State). A store PD does not know fails with an error matching
// ErrStoreNotFound.
func (c *Client) GetStore(ctx context.Context, id uint64) (*metapb.Store, error) {
	now := c.opts.Now()
	c.storeMu.RLock()
	e, ok := c.stores[id]
	c.storeMu.RUnlock()
	if ok && now.Sub(e.inserted) < c.opts.RegionCacheTTL {
		return proto.Clone(e.store).(*metapb.Store), nil
	}
	resp, err := invoke(ctx, c, pdpb.PD_GetStore_FullMethodName, c.pd.GetStore,
		&pdpb.GetStoreRequest{StoreId: id})
	if err == nil && resp.GetStore() == nil {
		err = fmt.Errorf("empty answer: %w", ErrStoreNotFound)
	}
	if err != nil {
		if errors.Is(err, ErrStoreNotFound) {
			c.InvalidateStore(id)
		}
		return nil, fmt.Errorf("pdclient: get store %d: %w", id, err)
	}
	c.cacheStores(resp.GetStore())
	return resp.GetStore(), nil
}

// InvalidateStore drops the cached store, so the next GetStore asks PD.
// Call it when the store's address stops answering.
func (c *Client) InvalidateStore(id uint64) {
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	delete(c.stores, id)
}

// GetAllStores asks PD for every store, tombstones included, and caches
// them.
func (c *Client) GetAllStores(ctx context.Context) ([]*metapb.Store, error) {
	resp, err := invoke(ctx, c, pdpb.PD_GetAllStores_FullMethodName, c.pd.GetAllStores,
		&pdpb.GetAllStoresRequest{})
	if err != nil {
		return nil, fmt.Errorf("pdclient: get all stores: %w", err)
	}
	c.cacheStores(resp.GetStores()...)
	return resp.GetStores(), nil
}

func (c *Client) cacheStores(stores ...*metapb.Store) {
	now := c.opts.Now()
	entries := make([]storeEntry, 0, len(stores))
	for _, s := range stores {
		if s != nil {
			entries = append(entries, storeEntry{store: proto.Clone(s).(*metapb.Store), inserted: now})
		}
	}
	c.storeMu.Lock()
	defer c.storeMu.Unlock()
	for _, e := range entries {
		c.stores[e.store.GetId()] = e
	}
}

// AllocID reserves count consecutive ids (0 means 1) and returns the
// first. A retried call may leave ids reserved but unused, which is
// harmless: ids only need to be unique.
func (c *Client) AllocID(ctx context.Context, count uint32) (first uint64, err error) {
	n := max(count, 1)
	resp, err := invoke(ctx, c, pdpb.PD_AllocID_FullMethodName, c.pd.AllocID, &pdpb.AllocIDRequest{Count: n})
	if err != nil {
		return 0, fmt.Errorf("pdclient: alloc %d ids: %w", n, err)
	}
	if resp.GetCount() != n {
		return 0, fmt.Errorf("pdclient: alloc %d ids: PD answered %d", n, resp.GetCount())
	}
	return resp.GetFirstId(), nil
}

// GetTS returns a new timestamp; see TSOClient.GetTS. Timestamp requests
// are not retried here: the TSO stream reconnects by itself, and a request
// that failed with ErrUnavailable may be repeated by the caller.
func (c *Client) GetTS(ctx context.Context) (uint64, error) { return c.tso.GetTS(ctx) }

// GetTSAsync requests a timestamp; see TSOClient.GetTSAsync.
func (c *Client) GetTSAsync(ctx context.Context) TSFuture { return c.tso.GetTSAsync(ctx) }

// StoreHeartbeat sends a store heartbeat and returns PD's response.
func (c *Client) StoreHeartbeat(ctx context.Context, req *pdpb.StoreHeartbeatRequest) (*pdpb.StoreHeartbeatResponse, error) {
	resp, err := invoke(ctx, c, pdpb.PD_StoreHeartbeat_FullMethodName, c.pd.StoreHeartbeat, req)
	if err != nil {
		return nil, fmt.Errorf("pdclient: store %d heartbeat: %w", req.GetStats().GetStoreId(), err)
	}
	return resp, nil
}

// RegionHeartbeat sends a region heartbeat and returns PD's response, which
// may carry a scheduling operation. A heartbeat older than what PD knows
// fails with an error matching ErrStaleEpoch.
func (c *Client) RegionHeartbeat(ctx context.Context, req *pdpb.RegionHeartbeatRequest) (*pdpb.RegionHeartbeatResponse, error) {
	resp, err := invoke(ctx, c, pdpb.PD_RegionHeartbeat_FullMethodName, c.pd.RegionHeartbeat, req)
	if err != nil {
		return nil, fmt.Errorf("pdclient: region %d heartbeat: %w", req.GetRegion().GetId(), err)
	}
	return resp, nil
}

// AskSplit asks PD for the ids of the region split off region: a new region
// id and one new peer id per peer of region, in the same order.
func (c *Client) AskSplit(ctx context.Context, region *metapb.Region) (*pdpb.AskSplitResponse, error) {
	resp, err := invoke(ctx, c, pdpb.PD_AskSplit_FullMethodName, c.pd.AskSplit, &pdpb.AskSplitRequest{Region: region})
	if err != nil {
		return nil, fmt.Errorf("pdclient: ask split of region %d: %w", region.GetId(), err)
	}
	if len(resp.GetNewPeerIds()) != len(region.GetPeers()) {
		return nil, fmt.Errorf("pdclient: ask split of region %d: %d peers but PD answered %d peer ids",
			region.GetId(), len(region.GetPeers()), len(resp.GetNewPeerIds()))
	}
	return resp, nil
}

// ReportSplit tells PD that a region split into left and right. On success
// the cached versions of both are dropped (one of them is the parent), so
// the next lookups fetch the new ranges.
func (c *Client) ReportSplit(ctx context.Context, left, right *metapb.Region) error {
	_, err := invoke(ctx, c, pdpb.PD_ReportSplit_FullMethodName, c.pd.ReportSplit,
		&pdpb.ReportSplitRequest{Left: left, Right: right})
	if err != nil {
		return fmt.Errorf("pdclient: report split of regions %d and %d: %w", left.GetId(), right.GetId(), err)
	}
	c.cache.InvalidateRegion(left.GetId())
	c.cache.InvalidateRegion(right.GetId())
	return nil
}

// GetGCSafePoint returns PD's GC safe point.
func (c *Client) GetGCSafePoint(ctx context.Context) (uint64, error) {
	resp, err := invoke(ctx, c, pdpb.PD_GetGCSafePoint_FullMethodName, c.pd.GetGCSafePoint, &pdpb.GetGCSafePointRequest{})
	if err != nil {
		return 0, fmt.Errorf("pdclient: get GC safe point: %w", err)
	}
	return resp.GetSafePoint(), nil
}

// UpdateGCSafePoint asks PD to raise the GC safe point to safePoint and
// returns the safe point after the update: PD never lowers it, so the
// result is above safePoint when another client raised it further.
func (c *Client) UpdateGCSafePoint(ctx context.Context, safePoint uint64) (newSafePoint uint64, err error) {
	resp, err := invoke(ctx, c, pdpb.PD_UpdateGCSafePoint_FullMethodName, c.pd.UpdateGCSafePoint,
		&pdpb.UpdateGCSafePointRequest{SafePoint: safePoint})
	if err != nil {
		return 0, fmt.Errorf("pdclient: update GC safe point to %d: %w", safePoint, err)
	}
	return resp.GetNewSafePoint(), nil
}

// ClusterID is the cluster id the client holds: Options.ClusterID, or the
// one learned from PD's first answer; 0 while it has none.
func (c *Client) ClusterID() uint64 { return c.clusterID.Load() }

// GetClusterInfo asks PD for its cluster id. A client that held none
// holds this one from then on.
func (c *Client) GetClusterInfo(ctx context.Context) (uint64, error) {
	resp, err := invoke(ctx, c, pdpb.PD_GetClusterInfo_FullMethodName, c.pd.GetClusterInfo, &pdpb.GetClusterInfoRequest{})
	if err != nil {
		return 0, fmt.Errorf("pdclient: get cluster info: %w", err)
	}
	c.clusterID.CompareAndSwap(0, resp.GetClusterId())
	return resp.GetClusterId(), nil
}

// ClaimStore claims storeID (0: a new store id) for the data directory
// that recorded nonce, reachable at address, and returns the store id and
// the cluster id. A store id claimed by another data directory fails with
// an error matching ErrStoreClaimed, a removed one with ErrStoreTombstone.
// The client holds the cluster id from then on.
func (c *Client) ClaimStore(ctx context.Context, storeID uint64, address string, nonce uint64) (id, clusterID uint64, err error) {
	resp, err := invoke(ctx, c, pdpb.PD_ClaimStore_FullMethodName, c.pd.ClaimStore,
		&pdpb.ClaimStoreRequest{StoreId: storeID, Address: address, Nonce: nonce})
	if err != nil {
		return 0, 0, fmt.Errorf("pdclient: claim store %d: %w", storeID, err)
	}
	if resp.GetStoreId() == 0 || resp.GetClusterId() == 0 {
		return 0, 0, fmt.Errorf("pdclient: claim store %d: PD answered store %d, cluster %d", storeID, resp.GetStoreId(), resp.GetClusterId())
	}
	c.clusterID.CompareAndSwap(0, resp.GetClusterId())
	return resp.GetStoreId(), resp.GetClusterId(), nil
}

// RemoveStore asks PD to remove a dead store for good (a tombstone); see
// pdpb.RemoveStoreRequest. A store still sending heartbeats is refused
// (ErrInvalidArgument).
func (c *Client) RemoveStore(ctx context.Context, storeID uint64) error {
	if _, err := invoke(ctx, c, pdpb.PD_RemoveStore_FullMethodName, c.pd.RemoveStore,
		&pdpb.RemoveStoreRequest{StoreId: storeID}); err != nil {
		return fmt.Errorf("pdclient: remove store %d: %w", storeID, err)
	}
	c.InvalidateStore(storeID)
	return nil
}
