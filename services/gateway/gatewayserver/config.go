package gatewayserver

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	"github.com/nokv/nokv/services/gateway/internal/command"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// EnvPrefix is prepended to the env tags of Config, e.g. NOKV_GATEWAY_ADDR.
const EnvPrefix = "NOKV_GATEWAY_"

// Backend kinds.
const (
	BackendEmbedded = "embedded"
	BackendRaft     = "raft"
)

// Config holds the gateway settings. Precedence: flag > env > cluster file > default.
type Config struct {
	// Addr is the RESP listen address.
	Addr string `env:"ADDR"`
	// Backend is embedded (local Pebble store) or raft (the cluster).
	Backend string `env:"BACKEND"`
	// WorkDir is the embedded backend's data directory.
	WorkDir string `env:"WORKDIR"`
	// Sync is the embedded backend's fsync policy: always, everysec or no.
	Sync string `env:"SYNC"`
	// KeyCache bounds the embedded backend's key cache in bytes (0:
	// embedded.DefaultKeyCacheBytes, a sixteenth of the memory).
	KeyCache ByteSize `env:"KEY_CACHE"`
	// CacheKeys is the key cache's size in slots, the setting KeyCache
	// replaced: still accepted, as CacheKeys x embedded.KeyCacheEntryBytes
	// bytes (0: unset).
	CacheKeys int `env:"CACHE_KEYS"`
	// BlockCache is the embedded backend's Pebble block cache in bytes
	// (0: embedded.DefaultBlockCacheBytes, a quarter of the memory).
	BlockCache ByteSize `env:"BLOCK_CACHE"`
	// MetricsAddr serves /debug/vars, /metrics and /healthz; empty disables it.
	MetricsAddr string `env:"METRICS_ADDR"`
	// RequirePass makes clients AUTH first; empty disables authentication.
	RequirePass string `env:"REQUIREPASS"`
	// MaxClients bounds concurrent connections.
	MaxClients int `env:"MAXCLIENTS"`
	// Databases is the number of logical databases (SELECT 0 to
	// Databases-1), Redis's databases setting.
	Databases int `env:"DATABASES"`
	// MaxBulkLen bounds one argument and any string value (proto-max-bulk-len).
	MaxBulkLen ByteSize `env:"PROTO_MAX_BULK_LEN"`
	// ClientQueryBufferLimit bounds what a client has sent and the server
	// not yet run, its request in progress included
	// (client-query-buffer-limit); past it the client is closed.
	ClientQueryBufferLimit ByteSize `env:"CLIENT_QUERY_BUFFER_LIMIT"`
	// ClientOutputBufferLimit bounds the replies the server holds for a
	// client that does not read them (client-output-buffer-limit normal).
	ClientOutputBufferLimit OutputBufferLimit `env:"CLIENT_OUTPUT_BUFFER_LIMIT"`
	// MaxMemoryClients bounds what all clients' query and reply buffers
	// hold together (Redis 7's maxmemory-clients); past it the clients
	// holding the most are evicted (closed), largest first. 0: no bound;
	// MaxMemoryClientsAuto (the default): see ClientMemoryBudget.
	MaxMemoryClients ByteSize `env:"MAXMEMORY_CLIENTS"`
	// Config is the cluster file; the raft backend takes PD's address and
	// max_retries from it.
	Config string `env:"CONFIG"`
	// RaftConfig names the cluster file and selects the raft backend: an
	// alias of Backend=raft with Config=RaftConfig (NoKV's documented
	// `nokv-redis --raft-config raft_config.json`).
	RaftConfig string `env:"RAFT_CONFIG"`
	// Scope picks host or docker addresses from the cluster file.
	Scope config.Scope `env:"SCOPE"`
	// PDAddr is PD's address for the raft backend (cluster file: pd.addr).
	PDAddr string `env:"PD_ADDR"`
	// MaxRetries bounds the raft backend's retries (cluster file: max_retries).
	MaxRetries int `env:"MAX_RETRIES"`
	// RaftCombine lets the raft backend combine concurrent writes of one
	// region into one transaction (on by default; off is the benchmarks'
	// baseline).
	RaftCombine bool `env:"RAFT_COMBINE"`
	// RaftReclaimInterval is how often the raft backend drains the queue of
	// dead collection versions (0: 10s; negative: never, leaving it to
	// other gateways). RaftSweepInterval is the least time between two
	// sweeps for versions no queue entry names (expired collections, blind
	// overwrites; 0: 1h; negative: none). docs/architecture.md,
	// "Reclamation of old versions".
	RaftReclaimInterval time.Duration `env:"RAFT_RECLAIM_INTERVAL"`
	RaftSweepInterval   time.Duration `env:"RAFT_SWEEP_INTERVAL"`
	// BlockPoll is how often, on the raft backend, a client blocked in
	// BLPOP, BRPOP, BLMOVE, BRPOPLPUSH or BLMPOP looks at its keys by
	// itself: pushes made through other gateways are served within it.
	// Pushes through the same gateway wake it at once, on either backend.
	BlockPoll time.Duration `env:"BLOCK_POLL"`
	// RaftCombineReads lets the raft backend combine concurrent reads of
	// one region into one read (on by default; RaftCombine off turns it
	// off too).
	RaftCombineReads bool `env:"RAFT_COMBINE_READS"`

	// TestingKnobs are for tests only; main never sets them.
	TestingKnobs TestingKnobs `env:"-"`
}

// TestingKnobs lets tests reach into the server.
type TestingKnobs struct {
	// NowMs replaces the wall clock (Unix milliseconds) for expiry decisions.
	NowMs func() int64
	// PanicOn, if set, is asked about every key a write names; true makes
	// the write panic inside its transaction (latches held), to prove a
	// panic is contained.
	PanicOn func(key []byte) bool
	// PanicIn, if set, is asked before a client's bytes just read are
	// parsed (stage "read") and before replies are written to it ("write");
	// true makes the server panic there, outside any command, to prove such
	// a panic closes that connection only.
	PanicIn func(stage string, data []byte) bool
	// MigrateBatchKeys and MigrateBatchDone reach the raft backend's
	// MigrateFormat (raftbackend.Options' testing fields).
	MigrateBatchKeys int
	MigrateBatchDone func(batches int) error
	// FormatCheckFoundNoRecord, if set, is called by the raft backend's
	// start when its transaction found no format record, before it looks
	// for other data (a test holds it there while another gateway writes).
	FormatCheckFoundNoRecord func()
	// ReclaimHook reaches the raft backend's reclaim-queue drain
	// (raftbackend.Options.TestingReclaimHook).
	ReclaimHook func(stage string) error
}

// DefaultConfig returns the built-in defaults.
func DefaultConfig() Config {
	return Config{
		Addr:             "127.0.0.1:6380",
		Backend:          BackendEmbedded,
		WorkDir:          "./data/gateway",
		Sync:             string(embedded.SyncAlways),
		MaxClients:       10000,
		Databases:        command.DefaultDatabases,
		MaxBulkLen:       resp.DefaultMaxBulkLen,
		Scope:            config.ScopeHost,
		MaxRetries:       8,
		RaftCombine:      true,
		RaftCombineReads: true,
		BlockPoll:        DefaultBlockPoll,

		ClientQueryBufferLimit:  DefaultClientQueryBufferLimit,
		ClientOutputBufferLimit: OutputBufferLimit{Hard: DefaultClientOutputBufferHardLimit},
		MaxMemoryClients:        MaxMemoryClientsAuto,
	}
}

// MaxMemoryClientsAuto, as MaxMemoryClients, asks for the default
// ClientMemoryBudget.
const MaxMemoryClientsAuto ByteSize = -1

// ClientMemoryBudget is the bound over all clients' buffers the server
// enforces (0: none). MaxMemoryClientsAuto stands for a quarter of the
// memory this process may use (the cgroup's limit if it has one, else the
// machine's), and at least room for two clients each receiving a largest
// value (proto-max-bulk-len), which is also the default when the memory
// size cannot be read. Redis has no bound by default; here the per-client
// limits alone would let a thousand clients that send one small command
// each (SRANDMEMBER key -100000000) and read nothing hold a terabyte of
// replies.
func (c Config) ClientMemoryBudget() int64 {
	if c.MaxMemoryClients != MaxMemoryClientsAuto {
		return int64(c.MaxMemoryClients)
	}
	return max(embedded.MemoryLimit()/4, 2*(int64(c.MaxBulkLen)+outputRoom))
}

// DefaultBlockPoll is the raft backend's default BlockPoll.
const DefaultBlockPoll = 100 * time.Millisecond

// Bounds of the cache sizes.
const (
	// MaxCacheBytes bounds key-cache and block-cache: 1 TiB, far past any
	// machine this runs on, only to catch a unit typed wrong.
	MaxCacheBytes = ByteSize(1 << 40)
	// MinBlockCacheBytes is the smallest block-cache: a few blocks, so
	// that an sstable's index and filter can be held while it is read.
	MinBlockCacheBytes = 1 << 20
	// MinKeyCacheBytes is the smallest key-cache: one shard of the cache
	// takes ~68 KiB however little is asked for.
	MinKeyCacheBytes = 1 << 20
)

// KeyCacheBytes is the key cache's size: key-cache, or the deprecated
// cache-keys in slots when that is set.
func (c Config) KeyCacheBytes() int64 {
	if c.CacheKeys > 0 {
		return int64(c.CacheKeys) * embedded.KeyCacheEntryBytes
	}
	return int64(c.KeyCache)
}

// Limits on what a client may make the server hold.
const (
	// DefaultClientQueryBufferLimit is Redis's client-query-buffer-limit.
	DefaultClientQueryBufferLimit = resp.DefaultMaxQueryBuffer
	// MinClientQueryBufferLimit is Redis's lower bound for it.
	MinClientQueryBufferLimit = 1 << 20
	// DefaultClientOutputBufferHardLimit is the default hard output limit.
	// Redis has none for normal clients (0 0 0); here a client that does not
	// read its replies must not make the server hold them without bound. 1
	// GiB is twice the default proto-max-bulk-len: room for the reply of the
	// largest value and more.
	DefaultClientOutputBufferHardLimit = 1 << 30
	// MaxProtoMaxBulkLen is the upper bound of proto-max-bulk-len. The
	// embedded store writes a key and its value (each up to
	// proto-max-bulk-len) and the key again in its expiry index in one
	// Pebble batch, which cannot reach 4 GiB.
	MaxProtoMaxBulkLen = 1 << 30
	// outputRoom is how much more than proto-max-bulk-len the hard output
	// limit must allow: the reply of a largest value (its header and CRLF)
	// after as much as a client may have pending before its next command
	// runs (outputBatch).
	outputRoom = 1 << 20
)

// RegisterFlags binds one flag per setting to c, defaulting to c's values.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	env := func(name string) string { return " [env " + EnvPrefix + name + "]" }
	fs.StringVar(&c.Addr, "addr", c.Addr, "RESP listen `address` (host:port)"+env("ADDR"))
	fs.StringVar(&c.Backend, "backend", c.Backend, "storage `backend`: embedded or raft"+env("BACKEND"))
	fs.StringVar(&c.WorkDir, "workdir", c.WorkDir, "embedded backend data `directory`"+env("WORKDIR"))
	fs.StringVar(&c.Sync, "sync", c.Sync, "fsync `policy`: always (a reply means on disk), everysec or no"+env("SYNC"))
	fs.Var(&c.KeyCache, "key-cache", "embedded backend key cache `bytes`: recently used keys of up to 512 bytes with their values, in front of Pebble (0: a sixteenth of the memory, at least 256mb)"+env("KEY_CACHE"))
	fs.IntVar(&c.CacheKeys, "cache-keys", c.CacheKeys, "deprecated: the key cache in `slots`, taken as slots x "+fmt.Sprint(embedded.KeyCacheEntryBytes)+" bytes; use --key-cache"+env("CACHE_KEYS"))
	fs.Var(&c.BlockCache, "block-cache", "embedded backend Pebble block cache `bytes` (0: a quarter of the memory, at least 64mb)"+env("BLOCK_CACHE"))
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "metrics HTTP `address` (host:port); empty disables"+env("METRICS_ADDR"))
	fs.StringVar(&c.RequirePass, "requirepass", c.RequirePass, "`password` clients must AUTH with; empty disables"+env("REQUIREPASS"))
	fs.IntVar(&c.MaxClients, "maxclients", c.MaxClients, "maximum concurrent client `connections`"+env("MAXCLIENTS"))
	fs.IntVar(&c.Databases, "databases", c.Databases, "`number` of logical databases (SELECT 0 to number-1)"+env("DATABASES"))
	fs.Var(&c.MaxBulkLen, "proto-max-bulk-len", "largest argument or string value in `bytes` (units as in Redis: 512mb)"+env("PROTO_MAX_BULK_LEN"))
	fs.Var(&c.ClientQueryBufferLimit, "client-query-buffer-limit", "`bytes` a client may have sent and not yet had run, its request in progress included; past it the client is closed"+env("CLIENT_QUERY_BUFFER_LIMIT"))
	fs.Var(&c.ClientOutputBufferLimit, "client-output-buffer-limit", "\"`hard soft soft-seconds`\" for a client's pending replies: at hard, or at soft for longer than soft-seconds, the client is closed (0: no limit)"+env("CLIENT_OUTPUT_BUFFER_LIMIT"))
	fs.Var(&c.MaxMemoryClients, "maxmemory-clients", "`bytes` all clients' query and reply buffers may hold together; past it the clients holding the most are closed, largest first (0: no bound; unset: a quarter of the memory, at least twice proto-max-bulk-len + 1mb)"+env("MAXMEMORY_CLIENTS"))
	fs.StringVar(&c.Config, "config", c.Config, "cluster `file` (raft_config.example.json) for the raft backend"+env("CONFIG"))
	fs.StringVar(&c.RaftConfig, "raft-config", c.RaftConfig, "cluster `file`, selecting the raft backend: the same as --backend raft --config file"+env("RAFT_CONFIG"))
	fs.Var(&c.Scope, "scope", "cluster file address `scope`: host or docker"+env("SCOPE"))
	fs.StringVar(&c.PDAddr, "pd-addr", c.PDAddr, "PD `address` for the raft backend; overrides pd.addr"+env("PD_ADDR"))
	fs.IntVar(&c.MaxRetries, "max-retries", c.MaxRetries, "raft backend retry `limit`; overrides max_retries"+env("MAX_RETRIES"))
	fs.DurationVar(&c.BlockPoll, "block-poll", c.BlockPoll, "raft backend: how often a client blocked in BLPOP/BRPOP/BLMOVE/BRPOPLPUSH/BLMPOP/BZPOPMIN/BZPOPMAX/BZMPOP looks at its keys, so that writes through other gateways reach it within this `duration`"+env("BLOCK_POLL"))
	fs.BoolVar(&c.RaftCombine, "raft-combine", c.RaftCombine, "raft backend: combine concurrent writes of a region into one transaction, and reads into one read"+env("RAFT_COMBINE"))
	fs.BoolVar(&c.RaftCombineReads, "raft-combine-reads", c.RaftCombineReads, "raft backend: combine concurrent reads of a region into one read (off with --raft-combine=false too)"+env("RAFT_COMBINE_READS"))
	fs.DurationVar(&c.RaftReclaimInterval, "raft-reclaim-interval", c.RaftReclaimInterval, "raft backend: how often dead collection versions are reclaimed (0: 10s, negative: never)"+env("RAFT_RECLAIM_INTERVAL"))
	fs.DurationVar(&c.RaftSweepInterval, "raft-sweep-interval", c.RaftSweepInterval, "raft backend: least time between sweeps for orphaned collection elements (0: 1h, negative: none)"+env("RAFT_SWEEP_INTERVAL"))
}

// ClusterFile implements config.Layered: --config, or else --raft-config.
func (c *Config) ClusterFile() string {
	if c.Config != "" {
		return c.Config
	}
	return c.RaftConfig
}

// ApplyCluster applies the cluster file layer: PD's address for the scope and
// max_retries; with --raft-config, the raft backend.
func (c *Config) ApplyCluster(boot *Config, cl *config.Cluster) error {
	if boot.RaftConfig != "" {
		c.Backend = BackendRaft
	}
	c.Scope = boot.Scope
	c.PDAddr = cl.PDAddr(c.Scope)
	c.MaxRetries = cl.MaxRetries
	return nil
}

// Validate checks every setting and reports all problems, each naming its setting.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if err := config.CheckAddr(c.Addr); err != nil {
		bad("addr", "%v", err)
	}
	if c.RaftConfig != "" {
		if c.Backend != BackendRaft {
			bad("backend", "%q: --raft-config selects the raft backend", c.Backend)
		}
		if c.Config != "" && c.Config != c.RaftConfig {
			bad("raft-config", "%q: --config names another cluster file (%q); give one of them", c.RaftConfig, c.Config)
		}
	}
	switch c.Backend {
	case BackendEmbedded:
		if strings.TrimSpace(c.WorkDir) == "" {
			bad("workdir", "must not be empty")
		}
	case BackendRaft:
		if c.PDAddr == "" {
			bad("pd-addr", "the raft backend needs PD's address (set --pd-addr or --config)")
		}
	default:
		bad("backend", "%q: want embedded or raft", c.Backend)
	}
	if _, err := embedded.ParseSyncPolicy(c.Sync); err != nil {
		bad("sync", "%v", err)
	}
	if c.CacheKeys != 0 {
		if c.CacheKeys < 1 || c.CacheKeys > 1<<30 {
			bad("cache-keys", "%d: must be between 1 and %d", c.CacheKeys, 1<<30)
		}
		if c.KeyCache != 0 {
			bad("cache-keys", "%d: set together with key-cache (%d); cache-keys (slots) is replaced by key-cache (bytes): give key-cache only", c.CacheKeys, c.KeyCache)
		}
	}
	if c.KeyCache != 0 && (c.KeyCache < MinKeyCacheBytes || c.KeyCache > MaxCacheBytes) {
		bad("key-cache", "%d: must be 0 (a sixteenth of the memory) or between %d and %d", c.KeyCache, MinKeyCacheBytes, int64(MaxCacheBytes))
	}
	if c.BlockCache != 0 && (c.BlockCache < MinBlockCacheBytes || c.BlockCache > MaxCacheBytes) {
		bad("block-cache", "%d: must be 0 (a quarter of the memory) or between %d and %d", c.BlockCache, MinBlockCacheBytes, int64(MaxCacheBytes))
	}
	if c.MetricsAddr != "" {
		if err := config.CheckAddr(c.MetricsAddr); err != nil {
			bad("metrics-addr", "%v", err)
		} else if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			bad("metrics-addr", "must differ from addr %q", c.Addr)
		}
	}
	if c.MaxClients < 1 {
		bad("maxclients", "%d: must be at least 1", c.MaxClients)
	}
	if c.Databases < 1 || c.Databases > keyspace.MaxDatabases {
		bad("databases", "%d: must be between 1 and %d", c.Databases, keyspace.MaxDatabases)
	}
	if c.MaxBulkLen < 1024 || c.MaxBulkLen > MaxProtoMaxBulkLen {
		bad("proto-max-bulk-len", "%d: must be between 1024 and %d", c.MaxBulkLen, MaxProtoMaxBulkLen)
	}
	if c.ClientQueryBufferLimit < MinClientQueryBufferLimit {
		bad("client-query-buffer-limit", "%d: must be at least %d", c.ClientQueryBufferLimit, MinClientQueryBufferLimit)
	} else if c.MaxBulkLen > c.ClientQueryBufferLimit/2 {
		// The query buffer holds the whole request being received: a
		// largest argument must fit with the rest of its request (command,
		// key, headers), or its client would be closed instead of served.
		bad("proto-max-bulk-len", "%d: must be at most half of client-query-buffer-limit (%d), so that a request carrying the largest argument fits in the query buffer", c.MaxBulkLen, c.ClientQueryBufferLimit)
	}
	if o := c.ClientOutputBufferLimit; o.Hard != 0 && o.Hard < c.MaxBulkLen+outputRoom {
		bad("client-output-buffer-limit", "hard limit %d: must be 0 (none) or at least proto-max-bulk-len (%d) + %d, so that the largest value can be sent", o.Hard, c.MaxBulkLen, outputRoom)
	}
	if m := c.MaxMemoryClients; m != 0 && m != MaxMemoryClientsAuto && m < c.MaxBulkLen+outputRoom {
		bad("maxmemory-clients", "%d: must be 0 (none) or at least proto-max-bulk-len (%d) + %d, so that a client can be sent the largest value", int64(m), int64(c.MaxBulkLen), outputRoom)
	}
	if _, err := config.ParseScope(string(c.Scope)); err != nil {
		bad("scope", "%v", err)
	}
	if c.MaxRetries < 0 {
		bad("max-retries", "%d: must not be negative", c.MaxRetries)
	}
	if c.BlockPoll < time.Millisecond || c.BlockPoll > time.Minute {
		bad("block-poll", "%v: must be between 1ms and 1m", c.BlockPoll)
	}
	return errors.Join(errs...)
}

// Resolve builds the validated settings from, in increasing precedence, the
// defaults, the cluster file (if --config names one), the environment and the
// flags set explicitly on fs (already parsed, registered by RegisterFlags).
func Resolve(fs *flag.FlagSet, env config.EnvOptions) (Config, error) {
	cfg, _, err := config.Resolve[Config](fs, env, DefaultConfig)
	if err != nil {
		return Config{}, err
	}
	if cfg.RaftConfig != "" && cfg.Config == "" {
		cfg.Config = cfg.RaftConfig
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}
