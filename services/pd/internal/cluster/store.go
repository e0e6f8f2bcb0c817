package cluster

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/services/pd/internal/storage"
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
// address or a DOWN store coming back UP. nonce is the token of the store's
// claim: a store that claimed its id must present it (else a
// *ClaimedError), and only a store that did may change its address. An
// unknown store id is refused with ErrStoreNotFound (stores join through
// ClaimStore), a tombstone with a *TombstoneError.
func (c *Cluster) HandleStoreHeartbeat(stats *pdpb.StoreStats, nonce uint64, now time.Time) error {
	id := stats.GetStoreId()
	if id == 0 {
		return fmt.Errorf("cluster: store heartbeat: store id 0: %w", ErrInvalidArgument)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.stores[id]
	if e == nil && c.opts.AdoptStores && nonce != 0 && stats.GetAddress() != "" {
		meta := &metapb.Store{Id: id, Address: stats.GetAddress(), State: metapb.StoreState_UP, LastHeartbeatMs: now.UnixMilli()}
		cl := claim{nonce: nonce, at: now}
		b := c.st.NewBatch()
		if err := putStore(b, meta); err != nil {
			return err
		}
		b.Put(storage.ClaimKey(id), cl.encode())
		if err := b.Commit(); err != nil {
			return fmt.Errorf("cluster: store heartbeat: adopt store %d: %w", id, err)
		}
		c.claims[id] = cl
		e = &storeEntry{meta: meta, lastSeen: now}
		c.stores[id] = e
	}
	if e == nil {
		return fmt.Errorf("cluster: store heartbeat from unknown store %d at %q: a heartbeat does not register a store; "+
			"a new store joins with ClaimStore (nokv-store --join): %w", id, stats.GetAddress(), ErrStoreNotFound)
	}
	if e.meta.GetState() == metapb.StoreState_TOMBSTONE {
		return &TombstoneError{StoreID: id}
	}
	cl, claimed := c.claims[id]
	if claimed && nonce != cl.nonce {
		return &ClaimedError{StoreID: id, ClaimedAt: cl.at, Heartbeat: true}
	}
	moved := stats.GetAddress() != "" && stats.GetAddress() != e.meta.GetAddress()
	if moved && !claimed && nonce == 0 {
		return fmt.Errorf("cluster: store %d heartbeat from address %q, PD has %q: only a store that claimed its id may change its address: %w",
			id, stats.GetAddress(), e.meta.GetAddress(), ErrStoreClaimed)
	}

	if !claimed && nonce != 0 {
		// A PD recovered after losing its state has no claims: the stores'
		// heartbeats record them again, first come first served.
		cl = claim{nonce: nonce, at: now}
		b := c.st.NewBatch()
		b.Put(storage.ClaimKey(id), cl.encode())
		if err := b.Commit(); err != nil {
			return fmt.Errorf("cluster: store heartbeat: record claim of store %d: %w", id, err)
		}
		c.claims[id] = cl
	}

	var meta *metapb.Store
	if moved || e.meta.GetState() != metapb.StoreState_UP {
		meta = proto.Clone(e.meta).(*metapb.Store)
		if moved {
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

// claim records which data directory claimed a store id: the random nonce
// it wrote before claiming, and when.
type claim struct {
	nonce uint64
	at    time.Time
}

func (cl claim) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, cl.nonce)
	return binary.BigEndian.AppendUint64(b, uint64(cl.at.UnixMilli()))
}

func decodeClaim(v []byte) (claim, error) {
	if len(v) != 16 {
		return claim{}, fmt.Errorf("claim record holds %d bytes, want 16", len(v))
	}
	return claim{nonce: binary.BigEndian.Uint64(v), at: time.UnixMilli(int64(binary.BigEndian.Uint64(v[8:])))}, nil
}

// ClaimStore binds store id to the data directory holding nonce, at
// address, and returns the store id. The first claim of an id is recorded
// (persisted before the answer); a repeat with the same nonce succeeds again
// (the store crashed before it recorded the answer) and may move the
// address; a claim with another nonce fails with a *ClaimedError: the data
// directory that claimed the id was lost, and a store without its data may
// never take part in its regions again. id 0 asks for a new store: alloc
// gives its id, unless a store was already created for this nonce. An id
// PD does not know fails with ErrStoreNotFound, a tombstone with a
// *TombstoneError.
func (c *Cluster) ClaimStore(id uint64, address string, nonce uint64, alloc func() (uint64, error)) (uint64, error) {
	if nonce == 0 {
		return 0, fmt.Errorf("cluster: claim store %d: nonce 0: %w", id, ErrInvalidArgument)
	}
	if address == "" {
		return 0, fmt.Errorf("cluster: claim store %d: no address: %w", id, ErrInvalidArgument)
	}
	now := c.opts.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == 0 {
		for sid, cl := range c.claims {
			if cl.nonce == nonce {
				id = sid
				break
			}
		}
	}
	var meta *metapb.Store
	if id == 0 {
		newID, err := alloc()
		if err != nil {
			return 0, fmt.Errorf("cluster: claim a new store id: %w", err)
		}
		if c.stores[newID] != nil {
			return 0, fmt.Errorf("cluster: claim a new store id: allocated id %d is a store already", newID)
		}
		id = newID
		meta = &metapb.Store{Id: id, Address: address, State: metapb.StoreState_UP}
	} else {
		e := c.stores[id]
		if e == nil {
			return 0, fmt.Errorf("cluster: claim store %d: not a store of this cluster; start the node with --join to get a new store id: %w", id, ErrStoreNotFound)
		}
		if e.meta.GetState() == metapb.StoreState_TOMBSTONE {
			return 0, &TombstoneError{StoreID: id}
		}
		if cl, ok := c.claims[id]; ok && cl.nonce != nonce {
			return 0, &ClaimedError{StoreID: id, ClaimedAt: cl.at}
		}
		if e.meta.GetAddress() != address {
			meta = proto.Clone(e.meta).(*metapb.Store)
			meta.Address = address
		}
	}
	cl, repeat := c.claims[id]
	if repeat && meta == nil {
		return id, nil
	}
	if !repeat {
		cl = claim{nonce: nonce, at: now}
	}
	b := c.st.NewBatch()
	if meta != nil {
		if err := putStore(b, meta); err != nil {
			return 0, err
		}
	}
	b.Put(storage.ClaimKey(id), cl.encode())
	if err := b.Commit(); err != nil {
		return 0, fmt.Errorf("cluster: claim store %d: %w", id, err)
	}
	c.claims[id] = cl
	if meta != nil {
		e := &storeEntry{meta: meta, lastSeen: now}
		if old := c.stores[id]; old != nil {
			e.stats, e.lastSeen, e.downSince = old.stats, old.lastSeen, old.downSince
		}
		c.stores[id] = e
	}
	return id, nil
}

// RemoveStore marks a store TOMBSTONE for good: its claims and heartbeats
// are refused from then on, and the scheduler replaces its peers. A store
// that is still UP is refused with ErrStoreUp (stop it and wait until PD
// marks it DOWN); removing a tombstone again succeeds.
func (c *Cluster) RemoveStore(id uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.stores[id]
	switch {
	case e == nil:
		return fmt.Errorf("cluster: remove store %d: %w", id, ErrStoreNotFound)
	case e.meta.GetState() == metapb.StoreState_TOMBSTONE:
		return nil
	case e.meta.GetState() == metapb.StoreState_UP:
		return fmt.Errorf("cluster: remove store %d: it sent a heartbeat %v ago; stop it and wait until PD marks it down (%v without heartbeats): %w",
			id, c.opts.Now().Sub(e.lastSeen).Round(time.Millisecond), c.opts.StoreDownAfter, ErrStoreUp)
	}
	meta := proto.Clone(e.meta).(*metapb.Store)
	meta.State = metapb.StoreState_TOMBSTONE
	if err := c.persistStore(meta); err != nil {
		return fmt.Errorf("cluster: remove store %d: %w", id, err)
	}
	c.stores[id] = &storeEntry{meta: meta, stats: e.stats, lastSeen: e.lastSeen}
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
