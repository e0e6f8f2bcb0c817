// Package cluster starts an in-process NoKV cluster for tests: one PD and
// several stores on 127.0.0.1, with fast raft ticks and a message filter
// that can partition stores or drop traffic.
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/services/pd/pdserver"
	"github.com/nokv/nokv/services/store/storeserver"
)

// Options shape the cluster.
type Options struct {
	// Stores is the number of stores (default 3).
	Stores int
	// Regions are the initial regions as [start, end) boundaries; nil means
	// one region covering everything. Every region gets a peer on every
	// store.
	SplitKeys []string
	// Tick is the raft tick (default 20ms).
	Tick time.Duration
	// RegionSplitSize enables size splits (default off).
	RegionSplitSize uint64
	// RaftLogKeep (default 1000).
	RaftLogKeep uint64
	// GCInterval and GCLifeTime tune garbage collection (defaults: 100ms, 1h).
	GCInterval, GCLifeTime time.Duration
	// ReplaceDownAfter is PD's wait before re-replicating a down store's
	// regions (default 30m: off for practical purposes).
	ReplaceDownAfter time.Duration
	// ExcludeStores start without any region peer (targets for adding peers).
	ExcludeStores []uint64
	// Verbose logs at debug level instead of warnings only.
	Verbose bool
	// StoreConfig, if set, adjusts a store's settings before it starts
	// (on every start): fault tests set test knobs here, such as a skewed
	// clock. The harness's own message filter is already in place.
	StoreConfig func(id uint64, cfg *storeserver.Config)
	// PDConfig, if set, adjusts PD's settings before it starts, e.g. a
	// region split size that keeps a test's region whole.
	PDConfig func(cfg *pdserver.Config)
}

// Cluster is a running in-process cluster.
type Cluster struct {
	t       testing.TB
	opts    Options
	file    *config.Cluster
	dir     string
	log     *slog.Logger
	PD      *pdserver.Server
	pdAddr  string
	mu      sync.Mutex
	stores  map[uint64]*storeserver.Server
	filters *filters
	// reserved holds listeners on ports picked for servers not yet running.
	reserved map[string]*Port
	pdConn   *grpc.ClientConn
	// PDClient talks to the cluster's PD.
	PDClient *pdclient.Client
	conns    map[uint64]*grpc.ClientConn
	// joined are the stores started with StartJoinStore: id → address
	// (guarded by joinMu, which is taken after mu, never before).
	joinMu sync.Mutex
	joined map[uint64]string
}

// Start starts PD and the stores and waits until every region has a leader.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Stores == 0 {
		opts.Stores = 3
	}
	if opts.Tick == 0 {
		opts.Tick = 20 * time.Millisecond
	}
	if opts.RaftLogKeep == 0 {
		opts.RaftLogKeep = 1000
	}
	level := slog.LevelWarn
	if opts.Verbose || os.Getenv("NOKV_TEST_VERBOSE") != "" {
		level = slog.LevelInfo
	}
	c := &Cluster{
		t: t, opts: opts, dir: t.TempDir(), stores: map[uint64]*storeserver.Server{},
		filters: &filters{}, conns: map[uint64]*grpc.ClientConn{}, reserved: map[string]*Port{}, joined: map[uint64]string{},
		log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	c.file = c.clusterFile()
	if err := c.TryStartPD(); err != nil {
		t.Fatalf("start PD: %v", err)
	}
	t.Cleanup(c.Stop)
	var err error
	for _, st := range c.file.Stores {
		c.StartStore(st.StoreID)
	}
	c.pdConn, err = grpc.NewClient(c.pdAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	if c.PDClient, err = pdclient.New(c.pdConn, pdclient.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range c.file.Regions {
		c.WaitLeader(r.ID)
	}
	return c
}

// TryStartPD starts (or restarts, from its workdir) PD with the cluster
// file, and returns why it did not start.
func (c *Cluster) TryStartPD() error { return c.startPD(0, 0) }

// RecoverPD starts PD on a lost workdir with the documented recovery
// (nokv-pd --recover-cluster-id id --recover-id-floor floor).
func (c *Cluster) RecoverPD(id, floor uint64) {
	c.t.Helper()
	if err := c.startPD(id, floor); err != nil {
		c.t.Fatalf("recover PD: %v", err)
	}
}

func (c *Cluster) startPD(recoverID, recoverFloor uint64) error {
	pcfg := pdserver.DefaultConfig()
	pcfg.RecoverClusterID, pcfg.RecoverIDFloor = recoverID, recoverFloor
	pcfg.Addr, pcfg.WorkDir = c.pdAddr, filepath.Join(c.dir, "pd")
	pcfg.StoreDownAfter = 2 * time.Second
	if c.opts.ReplaceDownAfter != 0 {
		pcfg.ReplaceDownAfter = c.opts.ReplaceDownAfter
	}
	if c.opts.PDConfig != nil {
		c.opts.PDConfig(&pcfg)
	}
	c.release("pd")
	var (
		pd  *pdserver.Server
		err error
	)
	for range 50 { // the port may linger briefly after a stop
		if pd, err = pdserver.New(pcfg, c.file, c.log.With("svc", "pd")); err == nil || !strings.Contains(err.Error(), "listen on") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.rereserve("pd", c.pdAddr)
		return err
	}
	pd.Start()
	c.mu.Lock()
	c.PD = pd
	c.mu.Unlock()
	return nil
}

// StopPD stops PD cleanly.
func (c *Cluster) StopPD() {
	c.mu.Lock()
	pd := c.PD
	c.PD = nil
	c.mu.Unlock()
	if pd != nil {
		if err := pd.Close(); err != nil {
			c.t.Errorf("stop PD: %v", err)
		}
		c.rereserve("pd", c.pdAddr)
	}
}

// WipePD deletes the stopped PD's workdir: PD lost its disk.
func (c *Cluster) WipePD() {
	c.t.Helper()
	c.mu.Lock()
	running := c.PD != nil
	c.mu.Unlock()
	if running {
		c.t.Fatal("wipe PD: it is running")
	}
	if err := os.RemoveAll(filepath.Join(c.dir, "pd")); err != nil {
		c.t.Fatal(err)
	}
}

// reserve holds a free port for the server named key until release.
func (c *Cluster) reserve(key string) string {
	p, err := ReservePort()
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.reserved[key] = p
	c.mu.Unlock()
	return p.Addr
}

// rereserve holds addr again once its server stopped, if nobody took it.
func (c *Cluster) rereserve(key, addr string) {
	p, err := HoldPort(addr)
	if err != nil {
		return
	}
	c.mu.Lock()
	c.reserved[key] = p
	c.mu.Unlock()
}

// release frees a reserved port for its server to bind.
func (c *Cluster) release(key string) {
	c.mu.Lock()
	p := c.reserved[key]
	delete(c.reserved, key)
	c.mu.Unlock()
	p.Release()
}

func (c *Cluster) clusterFile() *config.Cluster {
	c.pdAddr = c.reserve("pd")
	f := &config.Cluster{MaxRetries: 10, PD: config.PD{Addr: c.pdAddr, DockerAddr: "nokv-pd:2379", WorkDir: "pd", DockerWorkDir: "/data/pd"}}
	for i := 1; i <= c.opts.Stores; i++ {
		addr := c.reserve(fmt.Sprintf("store-%d", i))
		f.Stores = append(f.Stores, config.Store{StoreID: uint64(i), ListenAddr: addr, Addr: addr, DockerListenAddr: "0.0.0.0:20160", DockerAddr: fmt.Sprintf("nokv-store-%d:20160", i)})
	}
	bounds := append(append([]string{""}, c.opts.SplitKeys...), "")
	for i := 0; i+1 < len(bounds); i++ {
		r := config.Region{ID: uint64(100 * (i + 1)), StartKey: config.Key(bounds[i]), EndKey: config.Key(bounds[i+1]), Epoch: config.Epoch{Version: 1, ConfVersion: 1}}
		for s := 1; s <= c.opts.Stores; s++ {
			if slices.Contains(c.opts.ExcludeStores, uint64(s)) {
				continue
			}
			r.Peers = append(r.Peers, config.Peer{StoreID: uint64(s), PeerID: uint64(100*(i+1) + s)})
		}
		f.Regions = append(f.Regions, r)
	}
	if err := f.Validate(); err != nil {
		c.t.Fatalf("cluster file: %v", err)
	}
	return f
}

// StoreIDs lists the stores of the cluster file, then the stores that
// joined (StartJoinStore).
func (c *Cluster) StoreIDs() []uint64 {
	var ids []uint64
	for _, s := range c.file.Stores {
		ids = append(ids, s.StoreID)
	}
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	var joined []uint64
	for id := range c.joined {
		joined = append(joined, id)
	}
	slices.Sort(joined)
	return append(ids, joined...)
}

// StoreDir is a store's data directory.
func (c *Cluster) StoreDir(id uint64) string {
	return filepath.Join(c.dir, fmt.Sprintf("store-%d", id))
}

// WipeStore deletes a stopped store's data directory: the store lost its
// disk.
func (c *Cluster) WipeStore(id uint64) {
	c.t.Helper()
	if c.Running(id) {
		c.t.Fatalf("wipe store %d: it is running", id)
	}
	if err := os.RemoveAll(c.StoreDir(id)); err != nil {
		c.t.Fatal(err)
	}
}

// StartStore starts (or restarts, from its workdir) a store.
func (c *Cluster) StartStore(id uint64) {
	c.t.Helper()
	if err := c.TryStartStore(id); err != nil {
		c.t.Fatalf("start store %d: %v", id, err)
	}
}

// TryStartStore starts (or restarts) a store of the cluster file with the
// same settings as always, and returns why it did not start.
func (c *Cluster) TryStartStore(id uint64) error {
	c.t.Helper()
	st, _ := c.file.Store(id)
	cfg := c.storeConfig(id)
	cfg.StoreID, cfg.Addr = id, st.ListenAddr
	cfg.WorkDir = c.StoreDir(id)
	srv, err := c.newStore(fmt.Sprintf("store-%d", id), cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.stores[id] = srv
	c.mu.Unlock()
	return nil
}

// StartJoinStore starts a node with an empty data directory that joins the
// cluster as a new store (nokv-store --join) and returns the store id PD
// gave it. It holds no region until PD places replicas on it.
func (c *Cluster) StartJoinStore() uint64 {
	c.t.Helper()
	c.joinMu.Lock()
	name := fmt.Sprintf("join-%d", len(c.joined)+1)
	c.joinMu.Unlock()
	addr := c.reserve(name)
	cfg := c.storeConfig(0)
	cfg.Join, cfg.Addr = true, addr
	cfg.WorkDir = filepath.Join(c.dir, name)
	srv, err := c.newStore(name, cfg)
	if err != nil {
		c.t.Fatalf("start a joining store: %v", err)
	}
	id := srv.StoreID()
	c.mu.Lock()
	c.stores[id] = srv
	c.mu.Unlock()
	c.joinMu.Lock()
	c.joined[id] = addr
	c.joinMu.Unlock()
	return id
}

// newStore binds the reserved port name and starts a store on it.
func (c *Cluster) newStore(name string, cfg storeserver.Config) (*storeserver.Server, error) {
	var (
		srv *storeserver.Server
		err error
	)
	c.release(name)
	// The port may linger briefly after a stop.
	for range 50 {
		if srv, err = storeserver.New(cfg, c.file, c.log.With("svc", "store", "id", cfg.StoreID)); err == nil || !strings.Contains(err.Error(), "listen on") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.rereserve(name, cfg.Addr)
		return nil, err
	}
	srv.Start()
	return srv, nil
}

// storeConfig is the harness's store settings, for a store of the cluster
// file or (id 0) a joining one.
func (c *Cluster) storeConfig(id uint64) storeserver.Config {
	cfg := storeserver.DefaultConfig()
	cfg.PDAddr = c.pdAddr
	cfg.RaftTickInterval, cfg.RaftElectionTicks, cfg.RaftHeartbeatTicks = c.opts.Tick, 10, 2
	cfg.RaftLogKeep = c.opts.RaftLogKeep
	cfg.RegionSplitSize = c.opts.RegionSplitSize
	cfg.SplitCheckInterval = 200 * time.Millisecond
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.GCInterval, cfg.GCLifeTime = c.opts.GCInterval, c.opts.GCLifeTime
	if cfg.GCInterval == 0 {
		cfg.GCInterval = 100 * time.Millisecond
	}
	if cfg.GCLifeTime == 0 {
		cfg.GCLifeTime = time.Hour
	}
	cfg.TestingKnobs.DropMessage = func(m *raftserverpb.RaftMessage) bool {
		return c.filters.drop(m.GetFromPeer().GetStoreId(), m.GetToPeer().GetStoreId())
	}
	if c.opts.StoreConfig != nil {
		c.opts.StoreConfig(id, &cfg)
	}
	return cfg
}

// StopStore stops a store cleanly.
func (c *Cluster) StopStore(id uint64) {
	c.mu.Lock()
	srv := c.stores[id]
	delete(c.stores, id)
	c.mu.Unlock()
	if srv != nil {
		if err := srv.Close(); err != nil {
			c.t.Errorf("stop store %d: %v", id, err)
		}
		c.joinMu.Lock()
		_, joined := c.joined[id]
		c.joinMu.Unlock()
		if !joined {
			c.rereserve(fmt.Sprintf("store-%d", id), c.StoreAddr(id))
		}
	}
}

// Stop stops everything; it runs at test cleanup.
func (c *Cluster) Stop() {
	for _, id := range c.StoreIDs() {
		c.StopStore(id)
	}
	c.mu.Lock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.conns = map[uint64]*grpc.ClientConn{}
	c.mu.Unlock()
	if c.PDClient != nil {
		c.PDClient.Close()
		c.PDClient = nil
	}
	if c.pdConn != nil {
		c.pdConn.Close()
		c.pdConn = nil
	}
	c.StopPD()
	c.mu.Lock()
	for key, p := range c.reserved {
		p.Release()
		delete(c.reserved, key)
	}
	c.mu.Unlock()
}

// PDAddr is PD's address.
func (c *Cluster) PDAddr() string { return c.pdAddr }

// File is the cluster file the cluster was started from.
func (c *Cluster) File() *config.Cluster { return c.file }

// StoreAddr is a store's gRPC address.
func (c *Cluster) StoreAddr(id uint64) string {
	c.joinMu.Lock()
	addr, joined := c.joined[id]
	c.joinMu.Unlock()
	if joined {
		return addr
	}
	st, _ := c.file.Store(id)
	return st.Addr
}

// Client returns a gRPC client for a store.
func (c *Cluster) Client(id uint64) storepb.StoreClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc, ok := c.conns[id]
	if !ok {
		var err error
		cc, err = grpc.NewClient(c.StoreAddr(id), grpc.WithTransportCredentials(insecure.NewCredentials()),
			// As kvclient and the stores do (api/limits); sending more than
			// a store takes is what some tests try.
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limits.GRPCMaxMessageSize)))
		if err != nil {
			c.t.Fatal(err)
		}
		c.conns[id] = cc
	}
	return storepb.NewStoreClient(cc)
}

// StoreStats returns a running store's counters (NoKV.Stats.store).
func (c *Cluster) StoreStats(id uint64) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	if srv := c.stores[id]; srv != nil {
		return srv.Stats()
	}
	return nil
}

// Running reports whether a store is running.
func (c *Cluster) Running(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stores[id] != nil
}

// RegionInfo asks a store about its peer of a region.
func (c *Cluster) RegionInfo(storeID, regionID uint64) (*raftserverpb.RegionInfoResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Client(storeID).RegionInfo(ctx, &raftserverpb.RegionInfoRequest{RegionId: regionID})
}

// Leader returns the region's leader as agreed by a running store that
// leads it, or nil.
func (c *Cluster) Leader(regionID uint64) *metapb.Peer {
	for _, id := range c.StoreIDs() {
		if !c.Running(id) {
			continue
		}
		info, err := c.RegionInfo(id, regionID)
		if err != nil || info.GetRegionError() != nil || info.GetLeader() == nil {
			continue
		}
		if info.GetLeader().GetStoreId() == id {
			return info.GetLeader()
		}
	}
	return nil
}

// WaitLeader waits until the region has a leader and returns it.
func (c *Cluster) WaitLeader(regionID uint64) *metapb.Peer {
	c.t.Helper()
	var leader *metapb.Peer
	Eventually(c.t, 10*time.Second, func() error {
		if leader = c.Leader(regionID); leader == nil {
			return fmt.Errorf("region %d has no leader", regionID)
		}
		return nil
	})
	return leader
}

// Partition splits the stores into groups that cannot talk to each other;
// stores not named form one more group.
func (c *Cluster) Partition(groups ...[]uint64) {
	c.filters.partition(c.StoreIDs(), groups)
}

// Isolate cuts one store off from all others.
func (c *Cluster) Isolate(id uint64) { c.Partition([]uint64{id}) }

// Heal removes every partition and drop rule.
func (c *Cluster) Heal() { c.filters.heal() }

// DropBetween drops all messages from one store to another (one way).
func (c *Cluster) DropBetween(from, to uint64) { c.filters.dropOneWay(from, to) }

// Eventually retries check until it returns nil or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type filters struct {
	mu     sync.Mutex
	group  map[uint64]int // store → partition group; nil: no partition
	oneWay map[[2]uint64]bool
}

func (f *filters) drop(from, to uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.oneWay[[2]uint64{from, to}] {
		return true
	}
	return f.group != nil && f.group[from] != f.group[to]
}

func (f *filters) partition(all []uint64, groups [][]uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.group = map[uint64]int{}
	for _, id := range all {
		f.group[id] = 0
	}
	for i, g := range groups {
		for _, id := range g {
			f.group[id] = i + 1
		}
	}
}

func (f *filters) dropOneWay(from, to uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.oneWay == nil {
		f.oneWay = map[[2]uint64]bool{}
	}
	f.oneWay[[2]uint64{from, to}] = true
}

func (f *filters) heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.group, f.oneWay = nil, nil
}
