package cluster

import (
	"bytes"
	"fmt"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"google.golang.org/protobuf/proto"
)

// GetRegionByKey returns copies of the region containing key and of its last
// reported leader (nil if unknown). The region is nil if no region holds key.
func (c *Cluster) GetRegionByKey(key []byte) (*metapb.Region, *metapb.Peer) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.tree.find(key).copies()
}

// GetRegionByID returns copies of the region and of its last reported leader
// (nil if unknown). The region is nil if there is no such region.
func (c *Cluster) GetRegionByID(id uint64) (*metapb.Region, *metapb.Peer) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.regions[id].copies()
}

// ScanRegions returns copies of the regions overlapping [start, end) in key
// order, at most limit of them (limit <= 0: all), each with its leader and the
// statistics of its last heartbeat. An empty end is the end of the key space.
func (c *Cluster) ScanRegions(start, end []byte, limit int) []*pdpb.RegionWithLeader {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*pdpb.RegionWithLeader
	c.tree.scan(start, end, func(e *regionEntry) bool {
		r, l := e.copies()
		rl := &pdpb.RegionWithLeader{Region: r, Leader: l, ApproximateSize: e.approxSize, ApproximateKeys: e.approxKeys}
		for _, d := range e.downPeers {
			rl.DownPeers = append(rl.DownPeers, proto.Clone(d).(*pdpb.PeerStats))
		}
		for _, p := range e.pendingPeers {
			rl.PendingPeers = append(rl.PendingPeers, proto.Clone(p).(*metapb.Peer))
		}
		out = append(out, rl)
		return limit <= 0 || len(out) < limit
	})
	return out
}

func (e *regionEntry) copies() (*metapb.Region, *metapb.Peer) {
	if e == nil {
		return nil, nil
	}
	var leader *metapb.Peer
	if e.leader != nil {
		leader = proto.Clone(e.leader).(*metapb.Peer)
	}
	return proto.Clone(e.meta).(*metapb.Region), leader
}

// HandleRegionHeartbeat records a region heartbeat.
//
// A heartbeat older than what PD knows is rejected with a *StaleEpochError:
// its version or conf_ver is below the known ones for the same region, its
// epoch equals the known one but it comes from an older raft term, or a region
// its range overlaps has a higher version. Otherwise the region replaces the
// catalog entry, and every other region its range overlaps is removed (they
// are the stale parents or neighbours of a split or merge). Epoch, range and
// peer changes and the removals are persisted in one synced batch before the
// catalog changes; leader, down and pending peers and the approximate size and
// key count are kept in memory only.
func (c *Cluster) HandleRegionHeartbeat(req *pdpb.RegionHeartbeatRequest) error {
	r := req.GetRegion()
	if err := validateRegion(r); err != nil {
		return fmt.Errorf("cluster: region heartbeat: %w", err)
	}
	if l := req.GetLeader(); l != nil && findPeer(r, l.GetId()) == nil {
		return fmt.Errorf("cluster: region heartbeat: region %d: leader peer %d is not a peer of the region: %w",
			r.GetId(), l.GetId(), ErrInvalidArgument)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	known := c.regions[r.GetId()]
	if known != nil {
		if err := checkNotOlder(r, known.meta); err != nil {
			return err
		}
		if epochEqual(r.GetRegionEpoch(), known.meta.GetRegionEpoch()) && req.GetTerm() < known.term {
			return &StaleEpochError{
				RegionID: r.GetId(), Epoch: cloneEpoch(r.GetRegionEpoch()),
				Newer:  proto.Clone(known.meta).(*metapb.Region),
				Reason: fmt.Sprintf("raft term %d is older than %d", req.GetTerm(), known.term),
			}
		}
	}
	overlaps := c.overlapsExcept(r.GetStartKey(), r.GetEndKey(), r.GetId())
	for _, o := range overlaps {
		if o.meta.GetRegionEpoch().GetVersion() > r.GetRegionEpoch().GetVersion() {
			return &StaleEpochError{
				RegionID: r.GetId(), Epoch: cloneEpoch(r.GetRegionEpoch()),
				Newer:  proto.Clone(o.meta).(*metapb.Region),
				Reason: "an overlapping region has a higher version",
			}
		}
	}

	var meta *metapb.Region
	if known != nil && len(overlaps) == 0 && proto.Equal(known.meta, r) {
		meta = known.meta // leader or statistics only: nothing to persist
	} else {
		meta = proto.Clone(r).(*metapb.Region)
		b := c.st.NewBatch()
		for _, o := range overlaps {
			b.Delete(storage.RegionKey(o.meta.GetId()))
		}
		if err := putRegion(b, meta); err != nil {
			return err
		}
		if err := b.Commit(); err != nil {
			return fmt.Errorf("cluster: region heartbeat: persist region %d: %w", r.GetId(), err)
		}
	}

	e := &regionEntry{
		meta:       meta,
		approxSize: req.GetApproximateSize(),
		approxKeys: req.GetApproximateKeys(),
		term:       req.GetTerm(),
	}
	if l := req.GetLeader(); l != nil {
		e.leader = proto.Clone(l).(*metapb.Peer)
	}
	for _, d := range req.GetDownPeers() {
		e.downPeers = append(e.downPeers, proto.Clone(d).(*pdpb.PeerStats))
	}
	for _, p := range req.GetPendingPeers() {
		e.pendingPeers = append(e.pendingPeers, proto.Clone(p).(*metapb.Peer))
	}
	c.replaceLocked(known, overlaps, e)
	return nil
}

// ReportSplit records a split reported by the store that performed it: left
// and right are the two halves, left.end_key == right.start_key. Both epochs
// must be at least those of the region they replace (the parent, and any half
// a heartbeat already brought in); otherwise the report is stale and a
// *StaleEpochError is returned. The halves replace every region overlapping
// their union, in one synced batch.
//
// A half that keeps a known region's id keeps its leader if that peer is still
// in it; the other half's leader is guessed as its peer on the parent leader's
// store, where raft campaigns first. The next heartbeat corrects either.
func (c *Cluster) ReportSplit(left, right *metapb.Region) error {
	if err := validateSplit(left, right); err != nil {
		return fmt.Errorf("cluster: report split: %w", err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	overlaps := c.tree.overlaps(left.GetStartKey(), right.GetEndKey())
	for _, id := range []uint64{left.GetId(), right.GetId()} {
		if e := c.regions[id]; e != nil && !containsEntry(overlaps, e) {
			overlaps = append(overlaps, e)
		}
	}
	for _, o := range overlaps {
		for _, half := range []*metapb.Region{left, right} {
			if half.GetRegionEpoch().GetVersion() < o.meta.GetRegionEpoch().GetVersion() {
				return &StaleEpochError{
					RegionID: half.GetId(), Epoch: cloneEpoch(half.GetRegionEpoch()),
					Newer:  proto.Clone(o.meta).(*metapb.Region),
					Reason: "split half has a lower version than the region it replaces",
				}
			}
			if half.GetId() == o.meta.GetId() {
				if err := checkNotOlder(half, o.meta); err != nil {
					return err
				}
			}
		}
	}

	// The parent's leader store: the overlapped region holding the split key.
	var parentLeaderStore uint64
	for _, o := range overlaps {
		if o.leader != nil && bytes.Compare(o.start(), left.GetEndKey()) <= 0 && endAfter(o.end(), left.GetEndKey()) {
			parentLeaderStore = o.leader.GetStoreId()
		}
	}

	halves := []*regionEntry{
		{meta: proto.Clone(left).(*metapb.Region)},
		{meta: proto.Clone(right).(*metapb.Region)},
	}
	b := c.st.NewBatch()
	for _, o := range overlaps {
		if id := o.meta.GetId(); id != left.GetId() && id != right.GetId() {
			b.Delete(storage.RegionKey(id))
		}
	}
	for _, h := range halves {
		if err := putRegion(b, h.meta); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("cluster: report split of regions %d and %d: %w", left.GetId(), right.GetId(), err)
	}

	for _, h := range halves {
		if old := c.regions[h.meta.GetId()]; old != nil && old.leader != nil && findPeer(h.meta, old.leader.GetId()) != nil {
			h.leader = proto.Clone(old.leader).(*metapb.Peer)
		} else if p := peerOnStore(h.meta, parentLeaderStore); p != nil {
			h.leader = proto.Clone(p).(*metapb.Peer)
		}
	}
	for _, o := range overlaps {
		c.tree.remove(o)
		delete(c.regions, o.meta.GetId())
	}
	for _, h := range halves {
		c.tree.put(h)
		c.regions[h.meta.GetId()] = h
	}
	return nil
}

// RemoveRegion deletes a region from the catalog, for example after a merge
// or when a store reports it destroyed. An unknown id fails with an error
// matching ErrRegionNotFound.
func (c *Cluster) RemoveRegion(id uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.regions[id]
	if e == nil {
		return fmt.Errorf("cluster: remove region %d: %w", id, ErrRegionNotFound)
	}
	b := c.st.NewBatch()
	b.Delete(storage.RegionKey(id))
	if err := b.Commit(); err != nil {
		return fmt.Errorf("cluster: remove region %d: %w", id, err)
	}
	c.tree.remove(e)
	delete(c.regions, id)
	return nil
}

// overlapsExcept returns the regions overlapping [start, end) other than id.
func (c *Cluster) overlapsExcept(start, end []byte, id uint64) []*regionEntry {
	var out []*regionEntry
	for _, o := range c.tree.overlaps(start, end) {
		if o.meta.GetId() != id {
			out = append(out, o)
		}
	}
	return out
}

// replaceLocked swaps old (may be nil) and the overlapped entries for e.
func (c *Cluster) replaceLocked(old *regionEntry, overlaps []*regionEntry, e *regionEntry) {
	for _, o := range overlaps {
		c.tree.remove(o)
		delete(c.regions, o.meta.GetId())
	}
	if old != nil {
		c.tree.remove(old)
	}
	c.tree.put(e)
	c.regions[e.meta.GetId()] = e
}

// checkNotOlder fails if r's epoch is older than known's, the same region.
func checkNotOlder(r, known *metapb.Region) error {
	got, have := r.GetRegionEpoch(), known.GetRegionEpoch()
	var reason string
	switch {
	case got.GetVersion() < have.GetVersion():
		reason = fmt.Sprintf("version %d is older than %d", got.GetVersion(), have.GetVersion())
	case got.GetConfVer() < have.GetConfVer():
		reason = fmt.Sprintf("conf_ver %d is older than %d", got.GetConfVer(), have.GetConfVer())
	default:
		return nil
	}
	return &StaleEpochError{
		RegionID: r.GetId(), Epoch: cloneEpoch(got),
		Newer: proto.Clone(known).(*metapb.Region), Reason: reason,
	}
}

func epochEqual(a, b *metapb.RegionEpoch) bool {
	return a.GetVersion() == b.GetVersion() && a.GetConfVer() == b.GetConfVer()
}

func cloneEpoch(e *metapb.RegionEpoch) *metapb.RegionEpoch {
	if e == nil {
		return nil
	}
	return proto.Clone(e).(*metapb.RegionEpoch)
}

// validateRegion checks the shape of a region from a request, the cluster
// file or storage.
func validateRegion(r *metapb.Region) error {
	switch {
	case r == nil:
		return fmt.Errorf("no region: %w", ErrInvalidArgument)
	case r.GetId() == 0:
		return fmt.Errorf("region id 0: %w", ErrInvalidArgument)
	case r.GetRegionEpoch() == nil:
		return fmt.Errorf("region %d has no epoch: %w", r.GetId(), ErrInvalidArgument)
	case len(r.GetEndKey()) > 0 && bytes.Compare(r.GetStartKey(), r.GetEndKey()) >= 0:
		return fmt.Errorf("region %d: start key %q is not below end key %q: %w", r.GetId(), r.GetStartKey(), r.GetEndKey(), ErrInvalidArgument)
	case len(r.GetPeers()) == 0:
		return fmt.Errorf("region %d has no peers: %w", r.GetId(), ErrInvalidArgument)
	}
	peers := make(map[uint64]bool, len(r.GetPeers()))
	stores := make(map[uint64]bool, len(r.GetPeers()))
	for _, p := range r.GetPeers() {
		switch {
		case p.GetId() == 0 || p.GetStoreId() == 0:
			return fmt.Errorf("region %d: peer %d on store %d: ids must be non-zero: %w", r.GetId(), p.GetId(), p.GetStoreId(), ErrInvalidArgument)
		case peers[p.GetId()]:
			return fmt.Errorf("region %d: duplicate peer %d: %w", r.GetId(), p.GetId(), ErrInvalidArgument)
		case stores[p.GetStoreId()]:
			return fmt.Errorf("region %d: two peers on store %d: %w", r.GetId(), p.GetStoreId(), ErrInvalidArgument)
		}
		peers[p.GetId()], stores[p.GetStoreId()] = true, true
	}
	return nil
}

func validateSplit(left, right *metapb.Region) error {
	if err := validateRegion(left); err != nil {
		return fmt.Errorf("left: %w", err)
	}
	if err := validateRegion(right); err != nil {
		return fmt.Errorf("right: %w", err)
	}
	switch {
	case left.GetId() == right.GetId():
		return fmt.Errorf("both halves are region %d: %w", left.GetId(), ErrInvalidArgument)
	case len(left.GetEndKey()) == 0 || !bytes.Equal(left.GetEndKey(), right.GetStartKey()):
		return fmt.Errorf("left region %d ends at %q but right region %d starts at %q: %w",
			left.GetId(), left.GetEndKey(), right.GetId(), right.GetStartKey(), ErrInvalidArgument)
	}
	return nil
}

func findPeer(r *metapb.Region, peerID uint64) *metapb.Peer {
	for _, p := range r.GetPeers() {
		if p.GetId() == peerID {
			return p
		}
	}
	return nil
}

func peerOnStore(r *metapb.Region, storeID uint64) *metapb.Peer {
	if storeID == 0 {
		return nil
	}
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == storeID {
			return p
		}
	}
	return nil
}

func containsEntry(list []*regionEntry, e *regionEntry) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}
