package cluster

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"google.golang.org/protobuf/proto"
)

// storeEntry is one store of the registry. meta is what is persisted (its
// last_heartbeat_ms is kept current in memory but only written along with an
// address or state change).
type storeEntry struct {
	meta  *metapb.Store
	stats *pdpb.StoreStats
	// lastSeen is the last heartbeat, or when PD started tracking the store
	// (bootstrap, registration, Load): a store gets a full StoreDownAfter
	// after a PD restart before it can be marked DOWN.
	lastSeen time.Time
	// downSince is when the store was marked DOWN; zero while it is not.
	downSince time.Time
}

// PutStore registers or replaces a store, persisting it. It can mark a store
// TOMBSTONE but not bring a tombstone back: that fails with a
// *TombstoneError.
func (c *Cluster) PutStore(s *metapb.Store) error {
	if s.GetId() == 0 {
		return fmt.Errorf("cluster: put store: store id 0: %w", ErrInvalidArgument)
	}
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.stores[s.GetId()]
	if old != nil && old.meta.GetState() == metapb.StoreState_TOMBSTONE && s.GetState() != metapb.StoreState_TOMBSTONE {
		return &TombstoneError{StoreID: s.GetId()}
	}
	meta := proto.Clone(s).(*metapb.Store)
	if err := c.persistStore(meta); err != nil {
		return err
	}
	e := &storeEntry{meta: meta, lastSeen: now}
	if old != nil {
		e.stats, e.lastSeen, e.downSince = old.stats, old.lastSeen, old.downSince
	}
	switch {
	case meta.GetState() != metapb.StoreState_DOWN:
		e.downSince = time.Time{}
	case e.downSince.IsZero():
		e.downSince = now
	}
	c.stores[s.GetId()] = e
	return nil
}

// GetStore returns a copy of the store, or an error matching
// ErrStoreNotFound.
func (c *Cluster) GetStore(id uint64) (*metapb.Store, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.stores[id]
	if e == nil {
		return nil, fmt.Errorf("cluster: store %d: %w", id, ErrStoreNotFound)
	}
	return proto.Clone(e.meta).(*metapb.Store), nil
}

// GetAllStores returns copies of the stores ordered by id, without the
// tombstones if excludeTombstones.
func (c *Cluster) GetAllStores(excludeTombstones bool) []*metapb.Store {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*metapb.Store, 0, len(c.stores))
	for _, e := range c.stores {
		if excludeTombstones && e.meta.GetState() == metapb.StoreState_TOMBSTONE {
			continue
		}
		out = append(out, proto.Clone(e.meta).(*metapb.Store))
	}
	slices.SortFunc(out, func(a, b *metapb.Store) int { return cmp.Compare(a.GetId(), b.GetId()) })
	return out
}

// GetStoreStats returns a copy of the statistics of the store's last
// heartbeat, or nil if it has not sent one since PD started.
func (c *Cluster) GetStoreStats(id uint64) *pdpb.StoreStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.stores[id]; e != nil && e.stats != nil {
		return proto.Clone(e.stats).(*pdpb.StoreStats)
	}
	return nil
}

// GetAllStoreStats returns copies of the statistics of every store's last
// heartbeat, ordered by store id, for the stores that have sent one since PD
// started.
func (c *Cluster) GetAllStoreStats() []*pdpb.StoreStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*pdpb.StoreStats
	for _, e := range c.stores {
		if e.stats != nil {
			out = append(out, proto.Clone(e.stats).(*pdpb.StoreStats))
		}
	}
	slices.SortFunc(out, func(a, b *pdpb.StoreStats) int { return cmp.Compare(a.GetStoreId(), b.GetStoreId()) })
	return out
}

// StoreDownSince returns when the store was marked DOWN, and false if it is
// not DOWN (or unknown). After a PD restart it is estimated as the persisted
// last heartbeat plus StoreDownAfter.
func (c *Cluster) StoreDownSince(id uint64) (time.Time, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.stores[id]
	if e == nil || e.meta.GetState() != metapb.StoreState_DOWN {
		return time.Time{}, false
	}
	return e.downSince, true
}

// HandleStoreHeartbeat records a store heartbeat received at now: the
// statistics and heartbeat time in memory, and, persisted first, a new
// address, a DOWN store coming back UP, or an unknown store id (which is
// registered). A tombstone store is rejected with a *TombstoneError.
func (c *Cluster) HandleStoreHeartbeat(stats *pdpb.StoreStats, now time.Time) error {
	id := stats.GetStoreId()
	if id == 0 {
		return fmt.Errorf("cluster: store heartbeat: store id 0: %w", ErrInvalidArgument)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.stores[id]
	if e != nil && e.meta.GetState() == metapb.StoreState_TOMBSTONE {
		return &TombstoneError{StoreID: id}
	}

	var meta *metapb.Store
	switch {
	case e == nil:
		if stats.GetAddress() == "" {
			return fmt.Errorf("cluster: store heartbeat: unknown store %d sent no address: %w", id, ErrInvalidArgument)
		}
		meta = &metapb.Store{Id: id, Address: stats.GetAddress(), State: metapb.StoreState_UP}
	case (stats.GetAddress() != "" && stats.GetAddress() != e.meta.GetAddress()) || e.meta.GetState() != metapb.StoreState_UP:
		meta = proto.Clone(e.meta).(*metapb.Store)
		if stats.GetAddress() != "" {
			meta.Address = stats.GetAddress()
		}
		meta.State = metapb.StoreState_UP
	}
	if meta != nil {
		meta.LastHeartbeatMs = now.UnixMilli()
		if err := c.persistStore(meta); err != nil {
			return fmt.Errorf("cluster: store heartbeat: %w", err)
		}
		e = &storeEntry{meta: meta}
		c.stores[id] = e
	} else {
		// Only this map entry points to e and readers copy under the lock,
		// so updating in place under the write lock is safe.
		e.meta.LastHeartbeatMs = now.UnixMilli()
	}
	e.stats = proto.Clone(stats).(*pdpb.StoreStats)
	e.lastSeen = now
	e.downSince = time.Time{}
	return nil
}

// UpdateLiveness marks DOWN, persisting it in one batch, every UP store whose
// last heartbeat is StoreDownAfter or more before now. It returns the ids it
// marked. A store comes back UP with its next heartbeat.
func (c *Cluster) UpdateLiveness(now time.Time) ([]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var down []*metapb.Store
	for _, e := range c.stores {
		if e.meta.GetState() == metapb.StoreState_UP && now.Sub(e.lastSeen) >= c.opts.StoreDownAfter {
			m := proto.Clone(e.meta).(*metapb.Store)
			m.State = metapb.StoreState_DOWN
			down = append(down, m)
		}
	}
	if len(down) == 0 {
		return nil, nil
	}
	slices.SortFunc(down, func(a, b *metapb.Store) int { return cmp.Compare(a.GetId(), b.GetId()) })
	b := c.st.NewBatch()
	ids := make([]uint64, 0, len(down))
	for _, m := range down {
		if err := putStore(b, m); err != nil {
			return nil, err
		}
		ids = append(ids, m.GetId())
	}
	if err := b.Commit(); err != nil {
		return nil, fmt.Errorf("cluster: mark stores %v down: %w", ids, err)
	}
	for _, m := range down {
		e := c.stores[m.GetId()]
		c.stores[m.GetId()] = &storeEntry{meta: m, stats: e.stats, lastSeen: e.lastSeen, downSince: now}
	}
	return ids, nil
}

func (c *Cluster) persistStore(s *metapb.Store) error {
	b := c.st.NewBatch()
	if err := putStore(b, s); err != nil {
		return err
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("cluster: persist store %d: %w", s.GetId(), err)
	}
	return nil
}
