package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/pdclient"
)

// location is a region and the peer believed to lead it (nil: unknown).
type location struct {
	region *metapb.Region
	leader *metapb.Peer
}

// contains reports whether key is in the region's range.
func (l *location) contains(key []byte) bool {
	r := l.region
	return bytes.Compare(key, r.GetStartKey()) >= 0 && (len(r.GetEndKey()) == 0 || bytes.Compare(key, r.GetEndKey()) < 0)
}

// locate returns the region holding key, from the region cache or PD,
// retrying PD failures within bo's budget.
func (c *Client) locate(ctx context.Context, bo *backoffer, key []byte) (*location, error) {
	for {
		if err := c.ctxErr(ctx); err != nil {
			return nil, err
		}
		// The cache's own region and leader: send and the callers only
		// read them (a new leader goes to the cache as a copy).
		r, leader, err := c.pd.GetRegionShared(ctx, key)
		if err == nil {
			return &location{region: r, leader: leader}, nil
		}
		if errors.Is(err, pdclient.ErrClosed) {
			return nil, ErrClosed
		}
		if cerr := c.ctxErr(ctx); cerr != nil {
			return nil, cerr
		}
		if err := bo.retry(ctx, fmt.Errorf("kvclient: locate key %q: %w", key, err), true, 0); err != nil {
			return nil, err
		}
	}
}

// regionResponse is what every transactional KV response has.
type regionResponse interface {
	GetRegionError() *kvrpcpb.RegionError
}

// send sends one request to the leader of loc's region and handles every
// routing failure; it is the only place that does. rpc builds and sends the
// request with the routing context it is given, within one attempt's
// deadline (Options.RPCTimeout). The rules, each failed attempt spending
// one retry of bo (see the package documentation):
//
//   - NotLeader with a leader hint among the region's peers: record the
//     leader in the region cache and retry there at once (with a backoff if
//     this call was redirected before). A hint outside the region's peers
//     means the cached membership is stale: drop the region, back off,
//     errRegionMoved.
//   - NotLeader without a hint (an election is under way), gRPC Unavailable
//     or an attempt's DeadlineExceeded (the store is down or cut off): try
//     the region's next peer after a backoff; an unreachable store's
//     address is also dropped from the cache.
//   - ServerIsBusy (waiting at least its backoff_ms): back off and retry
//     the same peer; nothing was proposed.
//   - Undetermined (and StaleCommand): the request's command was proposed
//     and may apply; mark bo ambiguous, back off and retry the same peer,
//     which answers once the first command's fate is settled.
//   - RaftEntryTooLarge, and gRPC ResourceExhausted (a message over the
//     size limit): final, matching ErrTooLarge; the same request never
//     fits.
//   - EpochNotMatch: cache the store's current regions (led, presumably, by
//     the peer that answered) and return errRegionMoved at once; if the
//     store's view is not newer than ours, drop the region and back off
//     first.
//   - RegionNotFound, KeyNotInRegion, StoreNotMatch and anything else:
//     drop the region from the cache (and the store, for StoreNotMatch),
//     back off, errRegionMoved.
//
// errRegionMoved tells the caller to locate its keys again and regroup
// them; every other error is final: the context's, ErrClosed, a gRPC error
// that is not an availability problem, or ErrRegionUnavailable once the
// budget is spent. A response without region error is returned as is, key
// errors included.
func send[R regionResponse](ctx context.Context, c *Client, bo *backoffer, loc *location, method string,
	rpc func(ctx context.Context, client storepb.StoreClient, rc *kvrpcpb.Context) (R, error),
) (R, error) {
	var zero R
	region := loc.region
	id := region.GetId()
	leader := loc.leader
	redirected := false
	cache := c.pd.Cache()
	// unreachable: stores this request could not reach. A peer's hint
	// naming one is stale (the peer has not noticed its leader died) and
	// is not followed back there.
	var unreachable []uint64
	for {
		if err := c.ctxErr(ctx); err != nil {
			return zero, err
		}
		peer := leader
		if peer == nil {
			voters := voterPeers(region)
			if len(voters) == 0 {
				cache.InvalidateRegion(id)
				if err := bo.retry(ctx, fmt.Errorf("kvclient: region %d has no voter", id), true, 0); err != nil {
					return zero, err
				}
				return zero, errRegionMoved
			}
			// No leader known: go round the voters as the failures grow.
			peer = voters[bo.failures%len(voters)]
		}
		addr, err := c.storeAddr(ctx, peer.GetStoreId())
		if err != nil {
			if cerr := c.ctxErr(ctx); cerr != nil {
				return zero, cerr
			}
			cause := fmt.Errorf("kvclient: address of store %d: %w", peer.GetStoreId(), err)
			if errors.Is(err, pdclient.ErrStoreNotFound) || errors.Is(err, pdclient.ErrStoreTombstone) {
				cache.InvalidateRegion(id)
				if err := bo.retry(ctx, cause, true, 0); err != nil {
					return zero, err
				}
				return zero, errRegionMoved
			}
			if err := bo.retry(ctx, cause, true, 0); err != nil {
				return zero, err
			}
			continue
		}
		client, err := c.storeClient(addr)
		if err != nil {
			return zero, err
		}
		rc := &kvrpcpb.Context{RegionId: id, RegionEpoch: region.GetRegionEpoch(), Peer: peer}
		actx, cancel := context.WithTimeout(ctx, c.opts.RPCTimeout)
		resp, err := rpc(actx, client, rc)
		cancel()
		if err != nil {
			bo.ambiguous = true
			if cerr := c.ctxErr(ctx); cerr != nil {
				return zero, cerr
			}
			cause := fmt.Errorf("kvclient: %s to region %d on store %d: %w", method, id, peer.GetStoreId(), err)
			code := status.Code(err)
			if code == codes.ResourceExhausted {
				// A message over gRPC's size limit: the same request
				// will never pass.
				return zero, fmt.Errorf("%w: %w", ErrTooLarge, cause)
			}
			if code != codes.Unavailable && code != codes.DeadlineExceeded {
				return zero, cause
			}
			c.opts.Logger.Debug("kvclient: store unreachable", "method", method, "region", id, "store", peer.GetStoreId(), "err", err)
			c.pd.InvalidateStore(peer.GetStoreId())
			if !slices.Contains(unreachable, peer.GetStoreId()) {
				unreachable = append(unreachable, peer.GetStoreId())
			}
			leader = nextPeer(region, peer)
			cache.UpdateLeader(id, leader)
			if err := bo.retryLeaderless(ctx, cause); err != nil {
				return zero, err
			}
			continue
		}
		re := resp.GetRegionError()
		if re == nil {
			return resp, nil
		}
		cause := &RegionError{RegionID: id, StoreID: peer.GetStoreId(), Err: re}
		c.opts.Logger.Debug("kvclient: region error", "method", method, "err", cause)
		switch {
		case re.GetRaftEntryTooLarge() != nil:
			// Nothing was proposed, and the same request never fits. The
			// batching of the callers keeps their requests below the
			// limit, so this is a bug or a foreign client.
			return zero, cause
		case re.GetNotLeader() != nil:
			hint := re.GetNotLeader().GetLeader()
			if hint == nil || hint.GetStoreId() == 0 || slices.Contains(unreachable, hint.GetStoreId()) {
				// An election is under way, or about to be.
				leader = nextPeer(region, peer)
				if err := bo.retryLeaderless(ctx, cause); err != nil {
					return zero, err
				}
				continue
			}
			if !hasPeer(region, hint) {
				// Give PD time to hear of the membership change.
				cache.InvalidateRegion(id)
				if err := bo.retry(ctx, cause, true, 0); err != nil {
					return zero, err
				}
				return zero, errRegionMoved
			}
			cache.UpdateLeader(id, hint)
			sleep := redirected || hint.GetId() == peer.GetId()
			redirected = true
			leader = hint
			if err := bo.retry(ctx, cause, sleep, 0); err != nil {
				return zero, err
			}
		case re.GetServerIsBusy() != nil:
			wait := time.Duration(re.GetServerIsBusy().GetBackoffMs()) * time.Millisecond
			if err := bo.retry(ctx, cause, true, wait); err != nil {
				return zero, err
			}
		case re.GetUndetermined() != nil, re.GetStaleCommand() != nil:
			// The command was proposed and its fate is unknown: never a
			// failure. The same request, idempotent, asks again: the
			// store computes it only once the first one's fate is
			// settled (its latches; a new leader's applying every
			// earlier term), so the answer covers both. If no answer
			// comes, the caller's outcome is unknown.
			bo.ambiguous = true
			if err := bo.retry(ctx, cause, true, 0); err != nil {
				return zero, err
			}
		case re.GetEpochNotMatch() != nil:
			newer := c.cacheCurrentRegions(region, peer.GetStoreId(), re.GetEpochNotMatch().GetCurrentRegions())
			if !newer {
				cache.InvalidateRegion(id)
			}
			if err := bo.retry(ctx, cause, !newer, 0); err != nil {
				return zero, err
			}
			return zero, errRegionMoved
		default:
			if re.GetStoreNotMatch() != nil {
				c.pd.InvalidateStore(peer.GetStoreId())
			}
			cache.InvalidateRegion(id)
			if err := bo.retry(ctx, cause, true, 0); err != nil {
				return zero, err
			}
			return zero, errRegionMoved
		}
	}
}

// cacheCurrentRegions caches the regions a store reported with
// EpochNotMatch, each led (as a guess) by its peer on that store. It
// reports whether they include a newer version of old.
func (c *Client) cacheCurrentRegions(old *metapb.Region, storeID uint64, regions []*metapb.Region) bool {
	newer := false
	for _, r := range regions {
		if !c.pd.Cache().Insert(r, peerOnStore(r, storeID)) {
			continue
		}
		if r.GetId() == old.GetId() && r.GetRegionEpoch().GetVersion() > old.GetRegionEpoch().GetVersion() {
			newer = true
		}
	}
	return newer
}

func voterPeers(r *metapb.Region) []*metapb.Peer {
	var out []*metapb.Peer
	for _, p := range r.GetPeers() {
		if p.GetRole() != metapb.PeerRole_LEARNER {
			out = append(out, p)
		}
	}
	return out
}

// nextPeer returns the voter after cur in the region's peer list, round
// the end; nil if the region has no voter.
func nextPeer(r *metapb.Region, cur *metapb.Peer) *metapb.Peer {
	voters := voterPeers(r)
	if len(voters) == 0 {
		return nil
	}
	for i, p := range voters {
		if p.GetId() == cur.GetId() {
			return voters[(i+1)%len(voters)]
		}
	}
	return voters[0]
}

func hasPeer(r *metapb.Region, peer *metapb.Peer) bool {
	for _, p := range r.GetPeers() {
		if p.GetId() == peer.GetId() && p.GetStoreId() == peer.GetStoreId() {
			return true
		}
	}
	return false
}

func peerOnStore(r *metapb.Region, storeID uint64) *metapb.Peer {
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == storeID && p.GetRole() != metapb.PeerRole_LEARNER {
			return p
		}
	}
	return nil
}

// maxBatchKeys caps the keys of one request, and maxBatchBytes the bytes
// its items are estimated to take in the raft command it makes (a single
// larger item goes alone); more of one region are split over several
// requests.
const (
	maxBatchKeys  = 256
	maxBatchBytes = limits.WriteBatchBytes
)

// batch is items whose keys are all in one region.
type batch[T any] struct {
	loc   *location
	items []T
	size  int
}

// groupByRegion splits items by the region holding their keys, keeping
// their order within each batch, and caps batches at maxBatchKeys items and
// maxBatchBytes of their sizes (size nil: no byte cap). Batches come in the
// order their first item appears, so the first item's batch is first.
// Sorted items need one region lookup per region.
func groupByRegion[T any](ctx context.Context, c *Client, bo *backoffer, items []T, key func(T) []byte, size func(T) int) ([]batch[T], error) {
	var (
		out  []batch[T]
		open = map[uint64]int{} // region id → index in out of its open batch
		last = -1               // index in out of the previous item's batch
	)
	for _, it := range items {
		n := 0
		if size != nil {
			n = size(it)
		}
		k := key(it)
		idx := -1
		if last >= 0 && out[last].loc.contains(k) {
			idx = last
		} else {
			loc, err := c.locate(ctx, bo, k)
			if err != nil {
				return nil, err
			}
			if i, ok := open[loc.region.GetId()]; ok && out[i].loc.contains(k) {
				idx = i
			} else {
				out = append(out, batch[T]{loc: loc})
				idx = len(out) - 1
				open[loc.region.GetId()] = idx
			}
		}
		if b := &out[idx]; len(b.items) >= maxBatchKeys || (len(b.items) > 0 && b.size+n > maxBatchBytes) {
			out = append(out, batch[T]{loc: out[idx].loc})
			idx = len(out) - 1
			open[out[idx].loc.region.GetId()] = idx
		}
		out[idx].items = append(out[idx].items, it)
		out[idx].size += n
		last = idx
	}
	return out, nil
}

// maxParallelBatches bounds the batches one onRegions call has in flight.
// A command of 100k keys makes ~400 batches: sent all at once they would
// queue in the stores, and the last would run out of their RPCTimeout
// there and be sent again, adding load where there is already too much.
const maxParallelBatches = 16

// onRegions runs fn on items grouped by region (groupByRegion, with size):
// the first batch in the calling goroutine, the others on up to
// maxParallelBatches-1 more goroutines (the caller joins them after its
// batch), each batch with a fork of bo. When fn returns errRegionMoved, the
// items of its batch are grouped again and retried; bo's budget bounds
// this. Every batch runs whatever the others return; onRegions returns the
// error of the first batch (in batch order) that failed.
func onRegions[T any](ctx context.Context, c *Client, bo *backoffer, items []T, key func(T) []byte, size func(T) int,
	fn func(ctx context.Context, bo *backoffer, loc *location, items []T) error,
) error {
	batches, err := groupByRegion(ctx, c, bo, items, key, size)
	if err != nil {
		return err
	}
	run := func(bo *backoffer, b batch[T]) error {
		err := fn(ctx, bo, b.loc, b.items)
		if errors.Is(err, errRegionMoved) {
			return onRegions(ctx, c, bo, b.items, key, size, fn)
		}
		return err
	}
	switch len(batches) {
	case 0:
		return nil
	case 1:
		return run(bo, batches[0])
	}
	forks := make([]*backoffer, len(batches))
	for i := range batches {
		forks[i] = bo.fork()
	}
	errs := make([]error, len(batches))
	var next atomic.Int64
	next.Store(1)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= len(batches) {
				return
			}
			errs[i] = run(forks[i], batches[i])
		}
	}
	var wg sync.WaitGroup
	for range min(len(batches)-1, maxParallelBatches-1) {
		wg.Go(work)
	}
	errs[0] = run(forks[0], batches[0])
	work()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// CachedRegion returns the id of the region holding key if the region
// cache knows it, without asking PD. The gateway groups writes by region
// with it; a miss costs nothing but a missed grouping.
func (c *Client) CachedRegion(key []byte) (id uint64, ok bool) {
	return c.pd.Cache().LookupID(key)
}
