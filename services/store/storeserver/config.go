package storeserver

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/store/internal/raftstore"
)

// EnvPrefix is prepended to the env tags of Config to form variable names,
// e.g. NOKV_STORE_STORE_ID.
const EnvPrefix = "NOKV_STORE_"

// Config holds the store service settings.
type Config struct {
	// StoreID identifies this store in the cluster file; it is required
	// unless Join.
	StoreID uint64 `env:"STORE_ID"`
	// Join starts a new store that is not in the cluster file: on the first
	// start of its empty data directory PD gives it a new store id, and it
	// receives replicas by snapshot. Later starts keep the flag and read
	// the id from the data directory. Needs WorkDir and Addr.
	Join bool `env:"JOIN"`
	// Addr is the address the store listens on.
	Addr string `env:"ADDR"`
	// WorkDir is the store's data directory. If no layer sets it, Resolve
	// uses ./data/store-<StoreID>.
	WorkDir string `env:"WORKDIR"`
	// Config is the path of the cluster file (raft_config.example.json);
	// empty means none.
	Config string `env:"CONFIG"`
	// Scope selects host or docker addresses from the cluster file.
	Scope config.Scope `env:"SCOPE"`
	// PDAddr is the address of the placement driver.
	PDAddr string `env:"PD_ADDR"`
	// MetricsAddr is the address of the metrics endpoint; empty disables it.
	MetricsAddr string `env:"METRICS_ADDR"`
	// RaftTickInterval is one raft clock tick; elections and heartbeats
	// are counted in ticks.
	RaftTickInterval time.Duration `env:"RAFT_TICK_INTERVAL"`
	// RaftElectionTicks is the election timeout in ticks.
	RaftElectionTicks int `env:"RAFT_ELECTION_TICKS"`
	// RaftHeartbeatTicks is the leader heartbeat interval in ticks.
	RaftHeartbeatTicks int `env:"RAFT_HEARTBEAT_TICKS"`
	// RaftLogKeep is how many applied log entries a peer keeps behind its
	// applied index before truncating.
	RaftLogKeep uint64 `env:"RAFT_LOG_KEEP"`
	// RegionSplitSize splits a region past this many bytes; 0 disables.
	RegionSplitSize uint64 `env:"REGION_SPLIT_SIZE"`
	// SplitCheckInterval is how often region sizes are checked.
	SplitCheckInterval time.Duration `env:"SPLIT_CHECK_INTERVAL"`
	// HeartbeatInterval paces store and region heartbeats to PD.
	HeartbeatInterval time.Duration `env:"HEARTBEAT_INTERVAL"`
	// GCInterval is how often old MVCC versions and expired values are
	// collected.
	GCInterval time.Duration `env:"GC_INTERVAL"`
	// GCLifeTime is how long old versions stay readable; transactions
	// older than this may fail.
	GCLifeTime time.Duration `env:"GC_LIFE_TIME"`
	// MaxPeerDownDuration: a region leader reports a peer it has not heard
	// from for this long (at least two election timeouts) to PD as down;
	// PD replaces a down peer whose store is up.
	MaxPeerDownDuration time.Duration `env:"MAX_PEER_DOWN_DURATION"`
	// NoHibernate keeps idle regions ticking (hibernation off).
	NoHibernate bool `env:"NO_HIBERNATE"`
	// StoreLivenessTimeout: another store silent this long is taken for
	// down and the followers here of regions it leads elect anew; 0 means
	// one election timeout.
	StoreLivenessTimeout time.Duration `env:"STORE_LIVENESS_TIMEOUT"`

	// TestingKnobs are for tests only; main never sets them.
	TestingKnobs raftstore.TestingKnobs `env:"-"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Addr:                "127.0.0.1:20160",
		Scope:               config.ScopeHost,
		PDAddr:              "127.0.0.1:2379",
		RaftTickInterval:    100 * time.Millisecond,
		RaftElectionTicks:   10,
		RaftHeartbeatTicks:  2,
		RaftLogKeep:         1000,
		RegionSplitSize:     96 << 20,
		SplitCheckInterval:  10 * time.Second,
		HeartbeatInterval:   10 * time.Second,
		GCInterval:          time.Minute,
		GCLifeTime:          10 * time.Minute,
		MaxPeerDownDuration: raftstore.DefaultMaxPeerDownDuration,
	}
}

// RegisterFlags registers one flag per setting on fs, bound to c and
// defaulting to c's current values.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Uint64Var(&c.StoreID, "store-id", c.StoreID, "this store's `id` in the cluster file (required) [env "+EnvPrefix+"STORE_ID]")
	fs.BoolVar(&c.Join, "join", c.Join, "join the cluster as a new store: PD gives the id on the first start (needs --workdir and --addr; --store-id stays 0) [env "+EnvPrefix+"JOIN]")
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen `address` (host:port); overrides the store's listen address from the cluster file [env "+EnvPrefix+"ADDR]")
	fs.StringVar(&c.WorkDir, "workdir", c.WorkDir, "data `directory` (default ./data/store-<store-id>) [env "+EnvPrefix+"WORKDIR]")
	fs.StringVar(&c.Config, "config", c.Config, "cluster `file` to load, e.g. raft_config.example.json [env "+EnvPrefix+"CONFIG]")
	fs.Var(&c.Scope, "scope", "address `scope` to use from the cluster file: host or docker [env "+EnvPrefix+"SCOPE]")
	fs.StringVar(&c.PDAddr, "pd-addr", c.PDAddr, "PD `address` (host:port), or a PD group's members' addresses separated by commas; overrides pd.addr from the cluster file [env "+EnvPrefix+"PD_ADDR]")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "metrics listen `address` (host:port); empty disables metrics [env "+EnvPrefix+"METRICS_ADDR]")
	fs.DurationVar(&c.RaftTickInterval, "raft-tick-interval", c.RaftTickInterval, "length of one raft clock tick [env "+EnvPrefix+"RAFT_TICK_INTERVAL]")
	fs.IntVar(&c.RaftElectionTicks, "raft-election-ticks", c.RaftElectionTicks, "election timeout in `ticks` [env "+EnvPrefix+"RAFT_ELECTION_TICKS]")
	fs.IntVar(&c.RaftHeartbeatTicks, "raft-heartbeat-ticks", c.RaftHeartbeatTicks, "leader heartbeat interval in `ticks` [env "+EnvPrefix+"RAFT_HEARTBEAT_TICKS]")
	fs.Uint64Var(&c.RaftLogKeep, "raft-log-keep", c.RaftLogKeep, "applied log `entries` kept behind the applied index [env "+EnvPrefix+"RAFT_LOG_KEEP]")
	fs.Uint64Var(&c.RegionSplitSize, "region-split-size", c.RegionSplitSize, "split a region past this many `bytes`; 0 disables [env "+EnvPrefix+"REGION_SPLIT_SIZE]")
	fs.DurationVar(&c.SplitCheckInterval, "split-check-interval", c.SplitCheckInterval, "how often region sizes are checked [env "+EnvPrefix+"SPLIT_CHECK_INTERVAL]")
	fs.DurationVar(&c.GCInterval, "gc-interval", c.GCInterval, "how often old versions and expired values are collected [env "+EnvPrefix+"GC_INTERVAL]")
	fs.DurationVar(&c.GCLifeTime, "gc-life-time", c.GCLifeTime, "how long old versions stay readable [env "+EnvPrefix+"GC_LIFE_TIME]")
	fs.DurationVar(&c.MaxPeerDownDuration, "max-peer-down-duration", c.MaxPeerDownDuration, "report a region peer silent this long to PD as down, to be replaced [env "+EnvPrefix+"MAX_PEER_DOWN_DURATION]")
	fs.BoolVar(&c.NoHibernate, "no-hibernate", c.NoHibernate, "keep idle regions ticking instead of hibernating them [env "+EnvPrefix+"NO_HIBERNATE]")
	fs.DurationVar(&c.StoreLivenessTimeout, "store-liveness-timeout", c.StoreLivenessTimeout, "take another store silent this long for down and elect new leaders for its regions (0: one election timeout) [env "+EnvPrefix+"STORE_LIVENESS_TIMEOUT]")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "store and region heartbeat interval to PD [env "+EnvPrefix+"HEARTBEAT_INTERVAL]")
}

// ClusterFile implements config.Layered.
func (c *Config) ClusterFile() string { return c.Config }

// ApplyCluster applies the cluster file layer: this store's listen address
// and the PD address, both for the scope. It fails if the store id (from
// boot) is not a store of the cluster.
func (c *Config) ApplyCluster(boot *Config, cluster *config.Cluster) error {
	c.StoreID, c.Scope, c.Join = boot.StoreID, boot.Scope, boot.Join
	if c.Join {
		// A new store is not in the cluster file: only PD's address is.
		c.PDAddr = cluster.PDAddr(c.Scope)
		return nil
	}
	if c.StoreID == 0 {
		return fmt.Errorf("store_id: must be set (--store-id or %sSTORE_ID) to use the cluster file", EnvPrefix)
	}
	addr, err := cluster.StoreListenAddr(c.StoreID, c.Scope)
	if err != nil {
		return fmt.Errorf("store_id: %w in the cluster file", err)
	}
	c.Addr = addr
	c.PDAddr = cluster.PDAddr(c.Scope)
	return nil
}

// Validate checks the settings and returns every problem found.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Join && c.StoreID != 0:
		errs = append(errs, fmt.Errorf("store_id: %d: a joining store gets its id from PD; leave store_id 0 with join", c.StoreID))
	case !c.Join && c.StoreID == 0:
		errs = append(errs, errors.New("store_id: must be nonzero (or join a new store with --join)"))
	}
	if err := checkAddr(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if strings.TrimSpace(c.WorkDir) == "" {
		errs = append(errs, errors.New("workdir: must not be empty"))
	}
	if _, err := config.ParseScope(string(c.Scope)); err != nil {
		errs = append(errs, fmt.Errorf("scope: %w", err))
	}
	if err := config.CheckAddrList(c.PDAddr); err != nil {
		errs = append(errs, fmt.Errorf("pd_addr: %w", err))
	}
	if c.MetricsAddr != "" {
		if err := config.CheckAddr(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metrics_addr: %w", err))
		} else if c.MetricsAddr == c.Addr {
			errs = append(errs, fmt.Errorf("metrics_addr: must differ from addr %q", c.Addr))
		}
	}
	if c.RaftTickInterval <= 0 {
		errs = append(errs, errors.New("raft_tick_interval: must be positive"))
	}
	if c.RaftHeartbeatTicks <= 0 {
		errs = append(errs, errors.New("raft_heartbeat_ticks: must be positive"))
	}
	if c.RaftElectionTicks <= c.RaftHeartbeatTicks {
		errs = append(errs, fmt.Errorf("raft_election_ticks: must exceed raft_heartbeat_ticks (%d), have %d", c.RaftHeartbeatTicks, c.RaftElectionTicks))
	}
	if c.RaftLogKeep == 0 {
		errs = append(errs, errors.New("raft_log_keep: must be positive"))
	}
	if c.SplitCheckInterval <= 0 {
		errs = append(errs, errors.New("split_check_interval: must be positive"))
	}
	if c.GCInterval <= 0 {
		errs = append(errs, errors.New("gc_interval: must be positive"))
	}
	if c.GCLifeTime <= 0 {
		errs = append(errs, errors.New("gc_life_time: must be positive"))
	}
	if c.HeartbeatInterval <= 0 {
		errs = append(errs, errors.New("heartbeat_interval: must be positive"))
	}
	if c.MaxPeerDownDuration <= 0 {
		errs = append(errs, errors.New("max_peer_down_duration: must be positive"))
	}
	return errors.Join(errs...)
}

func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	return config.CheckAddr(addr)
}

// Resolve builds the validated settings from, in increasing precedence, the
// defaults, the cluster file named by the config setting (if any), the
// environment described by env, and the flags set explicitly on fs. An unset
// WorkDir then defaults to ./data/store-<StoreID>. It also returns the loaded
// cluster file, or nil if none.
func Resolve(fs *flag.FlagSet, env config.EnvOptions) (Config, *config.Cluster, error) {
	cfg, cluster, err := config.Resolve[Config](fs, env, DefaultConfig)
	if err != nil {
		return Config{}, nil, err
	}
	if cfg.WorkDir == "" && cfg.StoreID != 0 {
		cfg.WorkDir = fmt.Sprintf("./data/store-%d", cfg.StoreID)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, err
	}
	return cfg, cluster, nil
}
