package pdclient

import (
	"bytes"
	"sync"
	"time"

	"github.com/google/btree"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/metapb"
)

// DefaultRegionCacheTTL is how long a cached route is trusted when the
// options leave it zero.
const DefaultRegionCacheTTL = 10 * time.Minute

// RegionCache maps keys to the regions holding them, as last learned from
// PD or from stores' routing errors. It is safe for concurrent use; lookups
// take a read lock and run in O(log n), updates take the write lock.
//
// The cached regions never overlap: inserting a region drops every cached
// region whose range it overlaps and any other version of the same region,
// so after a split or merge the newer region replaces its parents. An
// insert that is older than what the cache holds (a smaller epoch for the
// same id, or an overlapping region with a higher version) is refused, so
// an answer that raced with a newer one cannot put a stale route back.
//
// An entry expires TTL after it was inserted: Lookup stops returning it, so
// the caller asks PD again. This bounds how long a route that nobody
// invalidated (no request failed on it) can stay wrong. Expired entries stay
// in memory until a newer region replaces them or they are invalidated; they
// no longer refuse older inserts.
//
// The cache owns what it holds: Insert and UpdateLeader store copies, and
// lookups return copies, so callers may keep or modify what they get;
// LookupShared alone returns the cache's own, for callers that only read
// them.
type RegionCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.RWMutex
	// tree orders the entries by start key; as they never overlap, the one
	// holding a key is the one with the greatest start key not above it.
	tree *btree.BTreeG[treeItem]
	byID map[uint64]*cacheEntry
}

// treeItem is an entry of the tree, by value: a lookup's pivot is a
// treeItem on the stack, so a lookup allocates nothing.
type treeItem struct {
	start []byte
	e     *cacheEntry
}

// cacheEntry is one cached region. region is never modified once inserted
// and leader only replaced (not modified), both under RegionCache.mu, so
// readers may clone them after releasing the lock.
type cacheEntry struct {
	region   *metapb.Region
	leader   *metapb.Peer
	inserted time.Time
}

func (e *cacheEntry) start() []byte { return e.region.GetStartKey() }
func (e *cacheEntry) end() []byte   { return e.region.GetEndKey() }

// NewRegionCache returns an empty cache whose entries expire ttl after
// insertion (ttl <= 0 means DefaultRegionCacheTTL), measured by now (nil
// means time.Now).
func NewRegionCache(ttl time.Duration, now func() time.Time) *RegionCache {
	if ttl <= 0 {
		ttl = DefaultRegionCacheTTL
	}
	if now == nil {
		now = time.Now
	}
	return &RegionCache{
		ttl: ttl,
		now: now,
		tree: btree.NewG(32, func(a, b treeItem) bool {
			return bytes.Compare(a.start, b.start) < 0
		}),
		byID: make(map[uint64]*cacheEntry),
	}
}

func pivot(key []byte) treeItem { return treeItem{start: key} }

func (e *cacheEntry) item() treeItem { return treeItem{start: e.start(), e: e} }

// endAfter reports whether a range ending at end extends past key; an empty
// end is +inf.
func endAfter(end, key []byte) bool {
	return len(end) == 0 || bytes.Compare(end, key) > 0
}

// Lookup returns copies of the region holding key and of its leader (nil if
// unknown). ok is false if no unexpired cached region holds key.
func (c *RegionCache) Lookup(key []byte) (region *metapb.Region, leader *metapb.Peer, ok bool) {
	now := c.now()
	c.mu.RLock()
	e := c.find(key)
	if e == nil || c.expired(e, now) {
		c.mu.RUnlock()
		return nil, nil, false
	}
	region, leader = e.region, e.leader
	c.mu.RUnlock()
	return copies(region, leader)
}

// LookupShared is Lookup without the copies: it returns the region and
// leader the cache holds, which the caller must not modify (the cache
// never does: it replaces them). The transactional client routes every
// request with it.
func (c *RegionCache) LookupShared(key []byte) (region *metapb.Region, leader *metapb.Peer, ok bool) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.find(key)
	if e == nil || c.expired(e, now) {
		return nil, nil, false
	}
	return e.region, e.leader, true
}

// LookupID returns the id of the region holding key, as Lookup would,
// without copying the region: the gateway asks it for every write it
// groups by region.
func (c *RegionCache) LookupID(key []byte) (id uint64, ok bool) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.find(key)
	if e == nil || c.expired(e, now) {
		return 0, false
	}
	return e.region.GetId(), true
}

// LookupByID is Lookup by region id.
func (c *RegionCache) LookupByID(id uint64) (region *metapb.Region, leader *metapb.Peer, ok bool) {
	now := c.now()
	c.mu.RLock()
	e := c.byID[id]
	if e == nil || c.expired(e, now) {
		c.mu.RUnlock()
		return nil, nil, false
	}
	region, leader = e.region, e.leader
	c.mu.RUnlock()
	return copies(region, leader)
}

func copies(region *metapb.Region, leader *metapb.Peer) (*metapb.Region, *metapb.Peer, bool) {
	region = proto.Clone(region).(*metapb.Region)
	if leader != nil {
		leader = proto.Clone(leader).(*metapb.Peer)
	}
	return region, leader, true
}

// Insert caches a copy of region with leader (nil: unknown), stamped with
// the current time, replacing every cached region whose range overlaps it
// and any cached version of the same region id. If leader is nil and the
// cache holds the same region at the same epoch with a known leader, that
// leader is kept.
//
// Insert refuses, and reports false, a region that is nil, has an empty or
// inverted range, or is stale: the cache holds, unexpired, the same region
// id with a higher version or conf_ver, or an overlapping region with a
// higher version (versions grow on every split and merge, so that region is
// newer). Refusing leaves the cache unchanged.
func (c *RegionCache) Insert(region *metapb.Region, leader *metapb.Peer) bool {
	if region == nil || !validRange(region.GetStartKey(), region.GetEndKey()) {
		return false
	}
	e := &cacheEntry{region: proto.Clone(region).(*metapb.Region), inserted: c.now()}
	if leader != nil {
		e.leader = proto.Clone(leader).(*metapb.Peer)
	}
	epoch := region.GetRegionEpoch()

	c.mu.Lock()
	defer c.mu.Unlock()
	same := c.byID[region.GetId()]
	if same != nil && !c.expired(same, e.inserted) {
		old := same.region.GetRegionEpoch()
		if old.GetVersion() > epoch.GetVersion() || old.GetConfVer() > epoch.GetConfVer() {
			return false
		}
		if leader == nil && same.leader != nil &&
			old.GetVersion() == epoch.GetVersion() && old.GetConfVer() == epoch.GetConfVer() {
			e.leader = same.leader
		}
	}
	overlaps := c.overlaps(region.GetStartKey(), region.GetEndKey())
	for _, o := range overlaps {
		if o.region.GetId() != region.GetId() && !c.expired(o, e.inserted) &&
			o.region.GetRegionEpoch().GetVersion() > epoch.GetVersion() {
			return false
		}
	}
	for _, o := range overlaps {
		c.remove(o)
	}
	if same != nil {
		c.remove(same)
	}
	c.tree.ReplaceOrInsert(e.item())
	c.byID[region.GetId()] = e
	return true
}

// validRange reports whether [start, end) is a non-empty range; an empty end
// is +inf.
func validRange(start, end []byte) bool {
	return len(end) == 0 || bytes.Compare(start, end) < 0
}

// UpdateLeader records that leader now leads the cached region regionID,
// as a store's "not leader" answer tells; nil means the leader is unknown.
// It does not renew the entry's TTL: the range is no fresher than before.
//
// It reports whether the region is cached and was updated. If leader is not
// one of the cached region's peers, the cached region predates a membership
// change: it is dropped, so the next lookup asks PD, and UpdateLeader
// reports false.
func (c *RegionCache) UpdateLeader(regionID uint64, leader *metapb.Peer) bool {
	if leader != nil {
		leader = proto.Clone(leader).(*metapb.Peer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byID[regionID]
	if e == nil {
		return false
	}
	if leader == nil {
		e.leader = nil
		return true
	}
	for _, p := range e.region.GetPeers() {
		if p.GetId() == leader.GetId() && p.GetStoreId() == leader.GetStoreId() {
			e.leader = leader
			return true
		}
	}
	c.remove(e)
	return false
}

// InvalidateRegion drops the cached region with that id, if any, so the
// next lookup of its keys asks PD. Call it when a store reports the region
// gone or its epoch changed.
func (c *RegionCache) InvalidateRegion(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.byID[id]; e != nil {
		c.remove(e)
	}
}

// InvalidateKey drops the cached region holding key, if any.
func (c *RegionCache) InvalidateKey(key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.find(key); e != nil {
		c.remove(e)
	}
}

// Clear drops every cached region.
func (c *RegionCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tree.Clear(false)
	clear(c.byID)
}

// Len returns the number of cached regions, expired ones included.
func (c *RegionCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.Len()
}

func (c *RegionCache) expired(e *cacheEntry, now time.Time) bool {
	return now.Sub(e.inserted) >= c.ttl
}

// find returns the entry holding key, expired or not, or nil. Needs c.mu.
func (c *RegionCache) find(key []byte) *cacheEntry {
	var found *cacheEntry
	c.tree.DescendLessOrEqual(pivot(key), func(it treeItem) bool {
		found = it.e
		return false
	})
	if found == nil || !endAfter(found.end(), key) {
		return nil
	}
	return found
}

// overlaps returns the entries whose ranges overlap [start, end), in key
// order. Needs c.mu.
func (c *RegionCache) overlaps(start, end []byte) []*cacheEntry {
	var out []*cacheEntry
	// The entry starting before start may reach into the range; the one
	// starting at start is visited by the ascent below.
	c.tree.DescendLessOrEqual(pivot(start), func(it treeItem) bool {
		e := it.e
		if bytes.Equal(e.start(), start) {
			return true
		}
		if endAfter(e.end(), start) {
			out = append(out, e)
		}
		return false
	})
	c.tree.AscendGreaterOrEqual(pivot(start), func(it treeItem) bool {
		e := it.e
		if len(end) > 0 && bytes.Compare(e.start(), end) >= 0 {
			return false
		}
		out = append(out, e)
		return true
	})
	return out
}

// remove deletes e from the tree and the id index. Needs c.mu for writing.
func (c *RegionCache) remove(e *cacheEntry) {
	if cur, ok := c.tree.Get(e.item()); ok && cur.e == e {
		c.tree.Delete(e.item())
	}
	if c.byID[e.region.GetId()] == e {
		delete(c.byID, e.region.GetId())
	}
}
