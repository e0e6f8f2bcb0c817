package pdserver

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/nokv/nokv/pkg/config"
)

// EnvPrefix is prepended to the env tags of Config to form variable names,
// e.g. NOKV_PD_ADDR.
const EnvPrefix = "NOKV_PD_"

// Config holds the PD service settings.
type Config struct {
	// Addr is the address PD listens on for clients and stores.
	Addr string `env:"ADDR"`
	// WorkDir is PD's data directory.
	WorkDir string `env:"WORKDIR"`
	// Config is the path of the cluster file (raft_config.example.json);
	// empty means none.
	Config string `env:"CONFIG"`
	// Scope selects host or docker addresses from the cluster file.
	Scope config.Scope `env:"SCOPE"`
	// MetricsAddr is the address of the metrics endpoint; empty disables it.
	MetricsAddr string `env:"METRICS_ADDR"`
	// StoreDownAfter marks a store down when it has not sent a heartbeat for
	// this long.
	StoreDownAfter time.Duration `env:"STORE_DOWN_AFTER"`
	// ReplaceDownAfter is how long a store stays down before its regions get a
	// replacement peer elsewhere.
	ReplaceDownAfter time.Duration `env:"REPLACE_DOWN_AFTER"`
	// RegionMaxSize asks a region to split once it grows past it (bytes).
	RegionMaxSize uint64 `env:"REGION_MAX_SIZE"`
	// RecoverClusterID, on a PD whose state was lost, bootstraps from the
	// cluster file with this cluster id (the one the running stores hold)
	// instead of a new one. Ignored once the state exists.
	RecoverClusterID uint64 `env:"RECOVER_CLUSTER_ID"`
	// RecoverIDFloor, with RecoverClusterID, makes the id allocator start
	// above it: above every region, peer and store id the lost PD handed out.
	RecoverIDFloor uint64 `env:"RECOVER_ID_FLOOR"`

	// Name is this member's name in pd.members; empty is fine with one
	// member (or none: a single PD at pd.addr).
	Name string `env:"NAME"`
	// AdvertiseAddr is the address other processes dial this member at,
	// named to clients by followers; empty means Addr (the address bound,
	// when Addr's port is 0).
	AdvertiseAddr string `env:"ADVERTISE_ADDR"`
	// ListenPeerURL is the URL this member's etcd binds for peer traffic;
	// empty means its peer_url. It differs when the other members reach it
	// through a proxy or NAT (tests/linear puts a proxy there to cut it
	// off).
	ListenPeerURL string `env:"LISTEN_PEER_URL"`
	// Join makes a member with an empty workdir join the running group
	// (after `etcdctl member add`, see README) instead of founding one.
	Join bool `env:"JOIN"`
	// LeaderLease is the leader's etcd lease, rounded up to whole seconds:
	// a dead leader is replaced after at most about this long.
	LeaderLease time.Duration `env:"LEADER_LEASE"`
	// ElectionTimeout is etcd's election timeout (its heartbeat is a tenth
	// of it). All members must use the same value.
	ElectionTimeout time.Duration `env:"ELECTION_TIMEOUT"`
	// EtcdLogLevel is the embedded etcd's log level: debug, info, warn or
	// error.
	EtcdLogLevel string `env:"ETCD_LOG_LEVEL"`
	// Members are the members of the PD group, from pd.members of the
	// cluster file (there is no flag or variable for them); empty means a
	// group of one.
	Members []config.PDMemberAddrs `env:"-"`
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Addr:    "127.0.0.1:2379",
		WorkDir: "./data/pd",
		Scope:   config.ScopeHost,

		StoreDownAfter:   30 * time.Second,
		ReplaceDownAfter: 30 * time.Minute,
		RegionMaxSize:    96 << 20,

		LeaderLease:     3 * time.Second,
		ElectionTimeout: time.Second,
		EtcdLogLevel:    "error",
	}
}

// RegisterFlags registers one flag per setting on fs, bound to c and
// defaulting to c's current values.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen `address` (host:port); overrides pd.addr from the cluster file [env "+EnvPrefix+"ADDR]")
	fs.StringVar(&c.WorkDir, "workdir", c.WorkDir, "data `directory`; overrides pd.work_dir from the cluster file [env "+EnvPrefix+"WORKDIR]")
	fs.StringVar(&c.Config, "config", c.Config, "cluster `file` to load, e.g. raft_config.example.json [env "+EnvPrefix+"CONFIG]")
	fs.Var(&c.Scope, "scope", "address `scope` to use from the cluster file: host or docker [env "+EnvPrefix+"SCOPE]")
	fs.DurationVar(&c.StoreDownAfter, "store-down-after", c.StoreDownAfter, "mark a store down after this long without a heartbeat [env "+EnvPrefix+"STORE_DOWN_AFTER]")
	fs.DurationVar(&c.ReplaceDownAfter, "replace-down-after", c.ReplaceDownAfter, "re-replicate a down store's regions after this long [env "+EnvPrefix+"REPLACE_DOWN_AFTER]")
	fs.Uint64Var(&c.RegionMaxSize, "region-max-size", c.RegionMaxSize, "split a region larger than this many `bytes` [env "+EnvPrefix+"REGION_MAX_SIZE]")
	fs.Uint64Var(&c.RecoverClusterID, "recover-cluster-id", c.RecoverClusterID, "rebuild a PD whose workdir was lost: bootstrap with this cluster `id`, the one the stores hold (see README) [env "+EnvPrefix+"RECOVER_CLUSTER_ID]")
	fs.Uint64Var(&c.RecoverIDFloor, "recover-id-floor", c.RecoverIDFloor, "with --recover-cluster-id: hand out only ids above this `id` [env "+EnvPrefix+"RECOVER_ID_FLOOR]")
	fs.StringVar(&c.Name, "name", c.Name, "this member's `name` in pd.members of the cluster file [env "+EnvPrefix+"NAME]")
	fs.StringVar(&c.AdvertiseAddr, "advertise-addr", c.AdvertiseAddr, "`address` other processes dial this member at; empty means --addr [env "+EnvPrefix+"ADVERTISE_ADDR]")
	fs.StringVar(&c.ListenPeerURL, "listen-peer-url", c.ListenPeerURL, "`URL` (http://host:port) the embedded etcd binds for peer traffic; empty means the member's peer_url [env "+EnvPrefix+"LISTEN_PEER_URL]")
	fs.BoolVar(&c.Join, "join", c.Join, "with an empty workdir, join the running PD group (after adding this member to it) instead of founding one [env "+EnvPrefix+"JOIN]")
	fs.DurationVar(&c.LeaderLease, "leader-lease", c.LeaderLease, "leader lease (whole seconds): a dead leader is replaced after about this long [env "+EnvPrefix+"LEADER_LEASE]")
	fs.DurationVar(&c.ElectionTimeout, "election-timeout", c.ElectionTimeout, "embedded etcd's election timeout, the same on every member [env "+EnvPrefix+"ELECTION_TIMEOUT]")
	fs.StringVar(&c.EtcdLogLevel, "etcd-log-level", c.EtcdLogLevel, "embedded etcd's log `level`: debug, info, warn or error [env "+EnvPrefix+"ETCD_LOG_LEVEL]")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "metrics listen `address` (host:port); empty disables metrics [env "+EnvPrefix+"METRICS_ADDR]")
}

// ClusterFile implements config.Layered.
func (c *Config) ClusterFile() string { return c.Config }

// ApplyCluster applies the cluster file layer: PD's address and data
// directory for the scope, and with pd.members the group's members and
// this member's (named by --name, or the only one) address and workdir.
func (c *Config) ApplyCluster(boot *Config, cluster *config.Cluster) error {
	c.Scope = boot.Scope
	members := cluster.PDMembers(c.Scope)
	if len(members) == 0 {
		c.Addr = cluster.PDAddr(c.Scope)
		if dir := cluster.PDWorkDir(c.Scope); dir != "" {
			c.WorkDir = dir
		}
		return nil
	}
	name := boot.Name
	if name == "" && len(members) == 1 {
		name = members[0].Name
	}
	var names []string
	for _, m := range members {
		names = append(names, m.Name)
		if m.Name == name {
			c.Name, c.Addr = m.Name, m.Addr
			if m.WorkDir != "" {
				c.WorkDir = m.WorkDir
			}
		}
	}
	if c.Name == "" {
		return fmt.Errorf("name: %q is not one of pd.members (%s): start each member with --name", name, strings.Join(names, ", "))
	}
	c.Members = members
	return nil
}

// Validate checks the settings and returns every problem found.
func (c Config) Validate() error {
	var errs []error
	if err := checkAddr(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %w", err))
	}
	if strings.TrimSpace(c.WorkDir) == "" {
		errs = append(errs, errors.New("workdir: must not be empty"))
	}
	if _, err := config.ParseScope(string(c.Scope)); err != nil {
		errs = append(errs, fmt.Errorf("scope: %w", err))
	}
	if c.StoreDownAfter <= 0 {
		errs = append(errs, fmt.Errorf("store_down_after: %v: must be positive", c.StoreDownAfter))
	}
	if c.ReplaceDownAfter < 0 {
		errs = append(errs, fmt.Errorf("replace_down_after: %v: must not be negative", c.ReplaceDownAfter))
	}
	if c.RegionMaxSize == 0 {
		errs = append(errs, errors.New("region_max_size: must be positive"))
	}
	if c.RecoverIDFloor != 0 && c.RecoverClusterID == 0 {
		errs = append(errs, errors.New("recover_id_floor: only with recover_cluster_id"))
	}
	if c.AdvertiseAddr != "" {
		if err := config.CheckAddr(c.AdvertiseAddr); err != nil {
			errs = append(errs, fmt.Errorf("advertise_addr: %w", err))
		}
	}
	if c.LeaderLease < time.Second {
		errs = append(errs, fmt.Errorf("leader_lease: %v: must be at least 1s", c.LeaderLease))
	}
	if c.ElectionTimeout < 50*time.Millisecond || c.ElectionTimeout > 50*time.Second {
		errs = append(errs, fmt.Errorf("election_timeout: %v: must be in 50ms..50s", c.ElectionTimeout))
	} else if c.LeaderLease < 3*c.ElectionTimeout/2 {
		// etcd raises shorter leases to 1.5 election timeouts anyway.
		errs = append(errs, fmt.Errorf("leader_lease: %v: must be at least 1.5 election timeouts (%v)", c.LeaderLease, 3*c.ElectionTimeout/2))
	}
	switch c.EtcdLogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("etcd_log_level: %q: want debug, info, warn or error", c.EtcdLogLevel))
	}
	if c.Join && len(c.Members) < 2 {
		errs = append(errs, errors.New("join: needs pd.members with the running members and this one"))
	}
	if c.MetricsAddr != "" {
		if err := config.CheckAddr(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("metrics_addr: %w", err))
		} else if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			errs = append(errs, fmt.Errorf("metrics_addr: must differ from addr %q", c.Addr))
		}
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
// environment described by env, and the flags set explicitly on fs. It also
// returns the loaded cluster file, or nil if none.
func Resolve(fs *flag.FlagSet, env config.EnvOptions) (Config, *config.Cluster, error) {
	cfg, cluster, err := config.Resolve[Config](fs, env, DefaultConfig)
	if err != nil {
		return Config{}, nil, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, err
	}
	return cfg, cluster, nil
}
