package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"google.golang.org/protobuf/proto"
)

// DefaultStoreDownAfter is Options.StoreDownAfter when left zero.
const DefaultStoreDownAfter = 30 * time.Second

// Options configures a Cluster.
type Options struct {
	// StoreDownAfter is how long a store may go without a heartbeat before
	// UpdateLiveness marks it DOWN. Zero means DefaultStoreDownAfter.
	StoreDownAfter time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fake one.
	Now func() time.Time
	// Scope selects which store addresses of the cluster file Bootstrap
	// records; empty means config.ScopeHost.
	Scope config.Scope
	// ClusterID, if non-zero, is the cluster id Bootstrap records instead
	// of a random one: recovering a PD whose state was lost adopts the id
	// the stores hold.
	ClusterID uint64
	// AdoptStores makes a heartbeat from an unknown store id that carries
	// a claim nonce and an address register that store: a PD rebuilt after
	// losing its state learns the stores that joined after the cluster
	// file was written. Off otherwise: stores join through ClaimStore.
	AdoptStores bool
}

func (o Options) withDefaults() Options {
	if o.StoreDownAfter <= 0 {
		o.StoreDownAfter = DefaultStoreDownAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Scope == "" {
		o.Scope = config.ScopeHost
	}
	return o
}

// Cluster is the region catalog and store registry. Create it with New, then
// call Bootstrap (with a cluster file) or Load (without) before use.
type Cluster struct {
	st   *storage.Storage
	opts Options

	mu        sync.RWMutex
	clusterID uint64
	tree      *regionTree
	regions   map[uint64]*regionEntry
	stores    map[uint64]*storeEntry
	claims    map[uint64]claim
}

// New returns an empty Cluster persisting through st.
func New(st *storage.Storage, opts Options) *Cluster {
	return &Cluster{
		st:      st,
		opts:    opts.withDefaults(),
		tree:    newRegionTree(),
		regions: make(map[uint64]*regionEntry),
		stores:  make(map[uint64]*storeEntry),
		claims:  make(map[uint64]claim),
	}
}

// ClusterID is the id generated at bootstrap (0 before Bootstrap or Load).
func (c *Cluster) ClusterID() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.clusterID
}

// newClusterID draws a random non-zero cluster id.
func newClusterID() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("cluster: generate cluster id: %w", err)
		}
		// Keep it below 2^63 so it prints the same signed or unsigned.
		if id := binary.BigEndian.Uint64(b[:]) >> 1; id != 0 {
			return id, nil
		}
	}
}

// Bootstrapped reports whether the cluster file was loaded into the
// persisted state already.
func (c *Cluster) Bootstrapped() (bool, error) {
	_, ok, err := c.st.Get(storage.KeyBootstrapped)
	if err != nil {
		return false, fmt.Errorf("cluster: check bootstrap marker: %w", err)
	}
	return ok, nil
}

// Bootstrap seeds the catalog from the cluster file on the first start: its
// stores (UP, with the address of Options.Scope) and regions (the file's
// epoch, every peer a voter, the leader on leader_store_id) are written in one
// batch together with the bootstrap marker. If the marker is present already,
// the file is ignored and Bootstrap is Load: the persisted state wins, because
// regions have split and moved since the file was written.
func (c *Cluster) Bootstrap(file *config.Cluster) error {
	done, err := c.Bootstrapped()
	if err != nil {
		return err
	}
	if done {
		return c.Load()
	}
	if file == nil {
		return fmt.Errorf("cluster: bootstrap: no cluster file: %w", ErrInvalidArgument)
	}

	// Build and check everything first so a bad file writes nothing.
	now := c.opts.Now()
	tree := newRegionTree()
	regions := make(map[uint64]*regionEntry, len(file.Regions))
	stores := make(map[uint64]*storeEntry, len(file.Stores))
	for _, s := range file.Stores {
		if s.StoreID == 0 {
			return fmt.Errorf("cluster: bootstrap: store id 0: %w", ErrInvalidArgument)
		}
		addr, err := file.StoreAddr(s.StoreID, c.opts.Scope)
		if err != nil {
			return fmt.Errorf("cluster: bootstrap store %d: %w", s.StoreID, err)
		}
		meta := &metapb.Store{Id: s.StoreID, Address: addr, State: metapb.StoreState_UP}
		stores[s.StoreID] = &storeEntry{meta: meta, lastSeen: now}
	}
	for i, r := range file.Regions {
		e := regionFromConfig(r)
		if err := validateRegion(e.meta); err != nil {
			return fmt.Errorf("cluster: bootstrap regions[%d]: %w", i, err)
		}
		if _, dup := regions[r.ID]; dup {
			return fmt.Errorf("cluster: bootstrap regions[%d]: duplicate region id %d: %w", i, r.ID, ErrInvalidArgument)
		}
		if ov := tree.overlaps(e.start(), e.end()); len(ov) > 0 {
			return fmt.Errorf("cluster: bootstrap regions[%d]: region %d overlaps region %d: %w", i, r.ID, ov[0].meta.GetId(), ErrInvalidArgument)
		}
		tree.put(e)
		regions[r.ID] = e
	}

	clusterID := c.opts.ClusterID
	if clusterID == 0 {
		if clusterID, err = newClusterID(); err != nil {
			return err
		}
	}
	b := c.st.NewBatch()
	for _, s := range stores {
		if err := putStore(b, s.meta); err != nil {
			return err
		}
	}
	for _, r := range regions {
		if err := putRegion(b, r.meta); err != nil {
			return err
		}
	}
	b.PutUint64(storage.KeyClusterID, clusterID)
	b.Put(storage.KeyBootstrapped, []byte("1"))
	if err := b.Commit(); err != nil {
		return fmt.Errorf("cluster: bootstrap from cluster file: %w", err)
	}

	c.mu.Lock()
	c.tree, c.regions, c.stores, c.claims, c.clusterID = tree, regions, stores, map[uint64]claim{}, clusterID
	c.mu.Unlock()
	return nil
}

func regionFromConfig(r config.Region) *regionEntry {
	meta := r.Meta()
	var leader *metapb.Peer
	for _, peer := range meta.Peers {
		if r.LeaderStoreID != 0 && peer.GetStoreId() == r.LeaderStoreID {
			leader = proto.Clone(peer).(*metapb.Peer)
		}
	}
	return &regionEntry{meta: meta, leader: leader}
}

// Load replaces the in-memory catalog with the persisted one. Leaders and
// statistics are unknown until the next heartbeats; UP stores get a full
// StoreDownAfter from now before they can be marked DOWN. A record that does
// not decode fails with an error matching ErrCorrupt that names the key and
// PD's workdir.
func (c *Cluster) Load() error {
	now := c.opts.Now()
	tree := newRegionTree()
	regions := make(map[uint64]*regionEntry)
	stores := make(map[uint64]*storeEntry)

	err := c.st.Scan(storage.PrefixRegion, func(key, value []byte) error {
		id, err := c.idFromKey(key, storage.PrefixRegion)
		if err != nil {
			return err
		}
		meta := &metapb.Region{}
		if err := proto.Unmarshal(value, meta); err != nil {
			return c.corrupt(key, fmt.Errorf("decode region: %w", err))
		}
		if meta.GetId() != id {
			return c.corrupt(key, fmt.Errorf("holds region %d", meta.GetId()))
		}
		if err := validateRegion(meta); err != nil {
			return c.corrupt(key, err)
		}
		e := &regionEntry{meta: meta}
		if ov := tree.overlaps(e.start(), e.end()); len(ov) > 0 {
			return c.corrupt(key, fmt.Errorf("region %d overlaps region %d", id, ov[0].meta.GetId()))
		}
		tree.put(e)
		regions[id] = e
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: load regions: %w", err)
	}

	err = c.st.Scan(storage.PrefixStore, func(key, value []byte) error {
		id, err := c.idFromKey(key, storage.PrefixStore)
		if err != nil {
			return err
		}
		meta := &metapb.Store{}
		if err := proto.Unmarshal(value, meta); err != nil {
			return c.corrupt(key, fmt.Errorf("decode store: %w", err))
		}
		if meta.GetId() != id {
			return c.corrupt(key, fmt.Errorf("holds store %d", meta.GetId()))
		}
		e := &storeEntry{meta: meta, lastSeen: now}
		if meta.GetState() == metapb.StoreState_DOWN {
			// The store was marked DOWN StoreDownAfter after its last
			// heartbeat; without that, count from now.
			e.downSince = now
			if ms := meta.GetLastHeartbeatMs(); ms > 0 {
				e.downSince = time.UnixMilli(ms).Add(c.opts.StoreDownAfter)
			}
		}
		stores[id] = e
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: load stores: %w", err)
	}
	claims := make(map[uint64]claim)
	err = c.st.Scan(storage.PrefixClaim, func(key, value []byte) error {
		id, err := c.idFromKey(key, storage.PrefixClaim)
		if err != nil {
			return err
		}
		cl, err := decodeClaim(value)
		if err != nil {
			return c.corrupt(key, err)
		}
		claims[id] = cl
		return nil
	})
	if err != nil {
		return fmt.Errorf("cluster: load store claims: %w", err)
	}
	clusterID, err := c.st.GetUint64(storage.KeyClusterID)
	if err != nil {
		return fmt.Errorf("cluster: load cluster id: %w", err)
	}
	if clusterID == 0 {
		// State bootstrapped before cluster ids existed: give it one now.
		// Its stores learn it on their next start.
		if clusterID, err = newClusterID(); err != nil {
			return err
		}
		b := c.st.NewBatch()
		b.PutUint64(storage.KeyClusterID, clusterID)
		if err := b.Commit(); err != nil {
			return fmt.Errorf("cluster: record cluster id: %w", err)
		}
	}

	c.mu.Lock()
	c.tree, c.regions, c.stores, c.claims, c.clusterID = tree, regions, stores, claims, clusterID
	c.mu.Unlock()
	return nil
}

func (c *Cluster) idFromKey(key, prefix []byte) (uint64, error) {
	if len(key) != len(prefix)+8 {
		return 0, c.corrupt(key, fmt.Errorf("key is %d bytes, want %d", len(key), len(prefix)+8))
	}
	return binary.BigEndian.Uint64(key[len(prefix):]), nil
}

func (c *Cluster) corrupt(key []byte, err error) error {
	return fmt.Errorf("%w: key %q in PD workdir %s: %w", ErrCorrupt, key, c.st.Dir(), err)
}

// RegionCount is the number of regions in the catalog.
func (c *Cluster) RegionCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.regions)
}

// StoreCounts counts the stores in each state.
func (c *Cluster) StoreCounts() (up, down, tombstone int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.stores {
		switch s.meta.GetState() {
		case metapb.StoreState_UP:
			up++
		case metapb.StoreState_DOWN:
			down++
		case metapb.StoreState_TOMBSTONE:
			tombstone++
		}
	}
	return up, down, tombstone
}

func putRegion(b *storage.Batch, r *metapb.Region) error {
	v, err := proto.Marshal(r)
	if err != nil {
		return fmt.Errorf("cluster: encode region %d: %w", r.GetId(), err)
	}
	b.Put(storage.RegionKey(r.GetId()), v)
	return nil
}

func putStore(b *storage.Batch, s *metapb.Store) error {
	v, err := proto.Marshal(s)
	if err != nil {
		return fmt.Errorf("cluster: encode store %d: %w", s.GetId(), err)
	}
	b.Put(storage.StoreKey(s.GetId()), v)
	return nil
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
