// Package storage persists PD's state in an embedded etcd, one member per PD
// process, its data in <workdir>/etcd.
//
// Every write is one etcd transaction: it returns once a quorum of members
// has it in their fsynced raft log, so a kill -9 of any minority at any moment
// leaves either the old or the new state, never a torn one. Keys (each under
// the etcd prefix "nokv/pd/"):
//
//	region/<id BE>          metapb.Region (protobuf)
//	store/<id BE>           metapb.Store (protobuf)
//	meta/id                 uint64 BE: allocator high-water mark (ids below it may have been handed out)
//	meta/tso                int64 BE: TSO high-water mark in Unix ms (timestamps below it may have been handed out)
//	meta/gc_safe_point      uint64 BE
//	meta/bootstrapped       "1" once the cluster file was loaded
//	meta/cluster_id         uint64 BE: the cluster id generated at bootstrap (written with meta/bootstrapped)
//	meta/format             "etcd/1", or "etcd/1 imported from pebble": written once, when the state was created
//	claim/<id BE>           uint64 BE nonce + int64 BE Unix ms: the data directory that claimed the store id, and when
//
// Before etcd, PD kept the same keys in a Pebble store directly in the
// workdir; Open imports such a store on the first start (see import.go).
//
// A Storage may carry a guard (SetGuard): etcd comparisons every commit must
// satisfy, so that a PD that lost its leadership cannot write any more.
package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Well-known keys.
var (
	KeyIDHighWater  = []byte("meta/id")
	KeyTSOHighWater = []byte("meta/tso")
	KeyGCSafePoint  = []byte("meta/gc_safe_point")
	KeyBootstrapped = []byte("meta/bootstrapped")
	KeyClusterID    = []byte("meta/cluster_id")
	KeyFormat       = []byte("meta/format")
	PrefixClaim     = []byte("claim/")
	PrefixRegion    = []byte("region/")
	PrefixStore     = []byte("store/")
)

// EtcdPrefix is prepended to every key in etcd, which leaves the rest of the
// key space (the election key, for one) to others.
const EtcdPrefix = "nokv/pd/"

// Format values of KeyFormat.
const (
	formatEtcd     = "etcd/1"
	formatImported = "etcd/1 imported from pebble"
)

var (
	// ErrLocked means another process holds the workdir.
	ErrLocked = errors.New("storage: PD workdir is locked by another process")
	// ErrGuardFailed means a commit was refused because the guard set with
	// SetGuard no longer holds: this PD is not the leader any more.
	ErrGuardFailed = errors.New("storage: write refused: this PD no longer holds the leadership it wrote under")
	// ErrInvalidOptions is returned by OpenWith for unusable Options.
	ErrInvalidOptions = errors.New("storage: invalid options")
)

// Member is one PD member of the etcd cluster.
type Member struct {
	// Name is the member's etcd name, unique in the cluster.
	Name string
	// PeerURL is where the other members reach its etcd raft traffic,
	// e.g. http://10.0.0.1:2380.
	PeerURL string
	// ClientURL is where etcd clients (etcdctl, nokv-config) reach its etcd;
	// empty serves no etcd client port (PD itself uses an in-process client).
	ClientURL string
}

// Options configures OpenWith. The zero value but Dir opens a single member
// with no network listener.
type Options struct {
	// Dir is PD's workdir; etcd keeps its data in Dir/etcd.
	Dir string
	// Name is this member's name; empty means "pd" (or the only member's).
	Name string
	// Members is the initial cluster, this member included. Empty means
	// one member, Name, that listens on no peer port.
	Members []Member
	// PDAddr is this member's PD gRPC address. A member with no ClientURL
	// advertises it as its etcd client URL (without serving etcd there):
	// etcd tells a member that ran before from one that never started by
	// whether it published client URLs, and refuses to let a member that ran
	// and lost its data found the group again.
	PDAddr string
	// Join makes a member whose data directory is empty join a running
	// cluster ("existing" cluster state) instead of founding a new one. The
	// member must have been added first (etcdctl member add, or
	// nokv-config pd member add).
	Join bool
	// ListenPeerURL is the URL the member binds for peer traffic; empty
	// means its PeerURL (as advertised).
	ListenPeerURL string
	// TickMs and ElectionMs are etcd's heartbeat interval and election
	// timeout; zero means 100 and 1000.
	TickMs, ElectionMs uint
	// StartTimeout bounds the wait for the member to join its cluster; zero
	// means one minute.
	StartTimeout time.Duration
	// LogLevel is etcd's log level (debug, info, warn, error); empty means
	// warn.
	LogLevel string
	// Log receives PD's own messages about the storage.
	Log *slog.Logger
}

// Storage is PD's persistent state. Safe for concurrent use.
type Storage struct {
	// attempt bounds one try of an etcd request (see do).
	attempt time.Duration
	dir     string
	name    string
	etcd    *embed.Etcd
	cli     *clientv3.Client
	lock    io.Closer
	log     *slog.Logger

	// life scopes every request; Interrupt cancels it.
	life      context.Context
	interrupt context.CancelFunc

	guardMu sync.RWMutex
	guard   []clientv3.Cmp
	// leaderCtx, while set, bounds every request: it ends when the
	// leadership the requests are made for ends (SetLeaderContext).
	leaderCtx context.Context

	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the state in dir as a single member.
func Open(dir string, log *slog.Logger) (*Storage, error) {
	return OpenWith(Options{Dir: dir, Log: log})
}

// OpenWith starts the etcd member described by opts, waits until it is part
// of a cluster with a leader, and imports a Pebble state left in the workdir
// by an older PD if the etcd state was never written.
func OpenWith(opts Options) (*Storage, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = time.Minute
	}
	cfg, err := etcdConfig(&opts)
	if err != nil {
		return nil, err
	}
	dir := opts.Dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create PD workdir %s: %w", dir, err)
	}
	// etcd's own file locks make a second process hang rather than fail;
	// the workdir lock (the file Pebble used) fails fast instead.
	lock, err := pebble.LockDirectory(dir, vfs.Default)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) {
			return nil, fmt.Errorf("open %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("lock PD workdir %s: %w", dir, err)
	}
	if err := refuseRefounding(cfg, opts); err != nil {
		_ = lock.Close()
		return nil, err
	}
	e, err := startEtcd(cfg)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("start etcd member %s in %s: %w", cfg.Name, cfg.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("etcd member %s in %s: %w", cfg.Name, cfg.Dir, err)
	case <-time.After(opts.StartTimeout):
		e.Server.Stop()
		e.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("etcd member %s in %s did not join its cluster within %v: are a majority of the members in pd.members up?", cfg.Name, cfg.Dir, opts.StartTimeout)
	}
	life, interrupt := context.WithCancel(context.Background())
	s := &Storage{life: life, interrupt: interrupt, attempt: max(time.Second, 2*time.Duration(cfg.ElectionMs)*time.Millisecond), dir: dir, name: cfg.Name, etcd: e, cli: v3client.New(e.Server), lock: lock, log: opts.Log}
	if err := s.initFormat(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// ErrGroupRunning refuses to found a PD group that already runs: this
// member's data is gone (a wiped or replaced disk) and it must be re-added.
var ErrGroupRunning = errors.New("storage: the PD group already runs without this member's data")

// refuseRefounding stops a member of a group with an empty etcd directory
// from founding the group anew when other members already run it: etcd
// would take the empty member for one that never voted, although it may
// have voted and acknowledged writes before losing its disk. Such a member
// is removed and added again, then started with Join.
func refuseRefounding(cfg *embed.Config, opts Options) error {
	if opts.Join || len(opts.Members) < 2 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, "member")); err == nil {
		return nil // it has data: a restart, not a founding
	}
	hc := &http.Client{Timeout: time.Second}
	for _, m := range opts.Members {
		if m.Name == cfg.Name {
			continue
		}
		// Every etcd member answers GET /members on its peer URL; a member
		// has client URLs there once it started and published them, so a
		// member of the initial list that was never started is told apart
		// from one that ran and lost its data (etcd's own check, with a
		// clearer message).
		resp, err := hc.Get(strings.TrimSuffix(m.PeerURL, "/") + "/members")
		if err != nil {
			continue
		}
		var list []struct {
			PeerURLs   []string `json:"peerURLs"`
			ClientURLs []string `json:"clientURLs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			continue
		}
		for _, other := range list {
			if len(other.ClientURLs) > 0 && slices.Contains(other.PeerURLs, cfg.AdvertisePeerUrls[0].String()) {
				return fmt.Errorf("%w: member %s at %s knows member %s as started before, but %s holds no data: remove this member from the group and add it again, then start it with --join (see services/pd/README.md)",
					ErrGroupRunning, m.Name, m.PeerURL, cfg.Name, cfg.Dir)
			}
		}
	}
	return nil
}

// startEtcd is embed.StartEtcd with its panics (raft panics on a WAL it
// cannot make sense of) turned into errors.
func startEtcd(cfg *embed.Config) (e *embed.Etcd, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("etcd state is corrupt or inconsistent: %v", r)
		}
	}()
	return embed.StartEtcd(cfg)
}

// etcdQuotaBytes is the size past which etcd refuses PD's writes (NOSPACE).
const etcdQuotaBytes = 4 << 30

// etcdConfig translates opts into etcd's configuration.
func etcdConfig(opts *Options) (*embed.Config, error) {
	if strings.TrimSpace(opts.Dir) == "" {
		return nil, fmt.Errorf("%w: empty workdir", ErrInvalidOptions)
	}
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(opts.Dir, "etcd")
	cfg.LogLevel = opts.LogLevel
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if opts.TickMs != 0 {
		cfg.TickMs = opts.TickMs
	}
	if opts.ElectionMs != 0 {
		cfg.ElectionMs = opts.ElectionMs
	}
	// The bootstrap batch and the Pebble import write the whole catalog in
	// one transaction.
	cfg.MaxTxnOps = 1 << 20
	cfg.MaxRequestBytes = 64 << 20
	// etcd maps its bbolt file with 10 GiB of address space up front unless
	// the quota differs from its 2 GiB default, when it maps quota + 10%.
	// PD's catalog is a few hundred bytes per region: 4 GiB is room for
	// millions of regions, and 4.4 GiB of mapping fits a process whose
	// address space is capped (ulimit -v, as tests/hostile runs servers).
	cfg.QuotaBackendBytes = etcdQuotaBytes
	// The TSO and id marks are rewritten every few seconds; keep a bounded
	// history rather than every revision since the beginning.
	cfg.AutoCompactionMode = embed.CompactorModeRevision
	cfg.AutoCompactionRetention = "10000"
	cfg.ListenClientHttpUrls = nil
	cfg.ListenMetricsUrls = nil

	members := opts.Members
	if len(members) == 0 {
		name := opts.Name
		if name == "" {
			name = "pd"
		}
		// One member never talks to a peer: advertise a placeholder it does
		// not listen on. Growing to several members starts from pd.members
		// (see services/pd/README.md).
		members = []Member{{Name: name, PeerURL: "http://127.0.0.1:2380"}}
		cfg.Name = name
		cfg.ListenPeerUrls = nil
		cfg.ListenClientUrls = nil
		cfg.AdvertiseClientUrls = nil
		u, _ := url.Parse(members[0].PeerURL)
		cfg.AdvertisePeerUrls = []url.URL{*u}
		cfg.InitialCluster = name + "=" + members[0].PeerURL
		return cfg, nil
	}
	name := opts.Name
	if name == "" && len(members) == 1 {
		name = members[0].Name
	}
	var self *Member
	var initial []string
	for i := range members {
		m := &members[i]
		if m.Name == name {
			self = m
		}
		if _, err := parseURL(m.PeerURL); err != nil {
			return nil, fmt.Errorf("%w: member %s: peer url: %w", ErrInvalidOptions, m.Name, err)
		}
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	if self == nil {
		return nil, fmt.Errorf("%w: member name %q is not in the member list", ErrInvalidOptions, name)
	}
	cfg.Name = name
	cfg.InitialCluster = strings.Join(initial, ",")
	cfg.InitialClusterToken = "nokv-pd"
	peer, _ := parseURL(self.PeerURL)
	cfg.ListenPeerUrls = []url.URL{listenURL(peer)}
	if opts.ListenPeerURL != "" {
		lp, err := parseURL(opts.ListenPeerURL)
		if err != nil {
			return nil, fmt.Errorf("%w: listen peer url: %w", ErrInvalidOptions, err)
		}
		cfg.ListenPeerUrls = []url.URL{lp}
	}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = nil, nil
	if self.ClientURL != "" {
		cu, err := parseURL(self.ClientURL)
		if err != nil {
			return nil, fmt.Errorf("%w: member %s: client url: %w", ErrInvalidOptions, self.Name, err)
		}
		cfg.ListenClientUrls = []url.URL{listenURL(cu)}
		cfg.AdvertiseClientUrls = []url.URL{cu}
	} else if opts.PDAddr != "" {
		cfg.AdvertiseClientUrls = []url.URL{{Scheme: "http", Host: opts.PDAddr}}
	}
	if opts.Join {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	return cfg, nil
}

func parseURL(s string) (url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return url.URL{}, err
	}
	if u.Scheme != "http" || u.Port() == "" {
		return url.URL{}, fmt.Errorf("%q: want http://host:port", s)
	}
	return *u, nil
}

// listenURL binds a name's port on all interfaces: a container's name does
// not resolve to a local address it could bind; IP addresses bind as given.
func listenURL(u url.URL) url.URL {
	host := u.Hostname()
	if host == "localhost" || isIP(host) {
		return u
	}
	u.Host = "0.0.0.0:" + u.Port()
	return u
}

func isIP(h string) bool {
	for _, c := range h {
		if (c < '0' || c > '9') && c != '.' && c != ':' {
			return false
		}
	}
	return h != ""
}

// initFormat writes the format marker on a new state, importing a Pebble
// state from the workdir first if there is one.
func (s *Storage) initFormat() error {
	f, ok, err := s.Get(KeyFormat)
	if err != nil {
		return err
	}
	if ok {
		if hasPebble(s.dir) && string(f) != formatImported {
			s.log.Warn("the workdir holds a Pebble PD state, but this member's etcd state was created without it: ignoring the Pebble files", "workdir", s.dir, "format", string(f))
		}
		return nil
	}
	if hasPebble(s.dir) {
		return s.importPebble()
	}
	if _, err := s.putIfAbsent(KeyFormat, []byte(formatEtcd)); err != nil {
		return err
	}
	return nil
}

// putIfAbsent writes key unless it exists; it reports whether it wrote.
func (s *Storage) putIfAbsent(key, value []byte) (bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	k := EtcdPrefix + string(key)
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, string(value))).Commit()
	if err != nil {
		return false, fmt.Errorf("write %q to PD state in %s: %w", key, s.dir, err)
	}
	return resp.Succeeded, nil
}

// defaultTimeout bounds one etcd request.
const defaultTimeout = 30 * time.Second

// ctx bounds one etcd request: without a quorum a write would wait forever.
func (s *Storage) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.life, defaultTimeout)
}

// Dir is the workdir.
func (s *Storage) Dir() string { return s.dir }

// Name is this member's etcd name.
func (s *Storage) Name() string { return s.name }

// Client is an etcd client on this member (in-process, no network hop).
func (s *Storage) Client() *clientv3.Client { return s.cli }

// Etcd is the embedded etcd member.
func (s *Storage) Etcd() *embed.Etcd { return s.etcd }

// SetGuard makes every later commit conditional on cmps (nil: none). A commit
// whose guard fails returns ErrGuardFailed and writes nothing.
func (s *Storage) SetGuard(cmps []clientv3.Cmp) {
	s.guardMu.Lock()
	s.guard = cmps
	s.guardMu.Unlock()
}

// SetLeaderContext makes every later request (and, through do, every one in
// progress that started under it) fail at once with ErrGuardFailed when ctx
// ends; nil lifts it. A leader that lost its lease must not keep its
// clients waiting on requests that cannot reach a quorum (without one, do
// retries for up to defaultTimeout): they fail, the clients go on to the
// next leader. The ended context stays in force until the next leadership
// sets its own: a request that started after the step-down (one that waited
// behind another) belongs to the ended leadership too, and must not wait
// out defaultTimeout on a member cut off from the others.
func (s *Storage) SetLeaderContext(ctx context.Context) {
	s.guardMu.Lock()
	s.leaderCtx = ctx
	s.guardMu.Unlock()
}

// do runs one etcd request, retrying it while etcd reports itself
// unavailable (no leader, a leader change) or the try outlives s.attempt,
// until defaultTimeout. A request sent to an etcd leader that then died is
// dropped, and etcd answers it only after its request timeout (5s plus two
// election timeouts); a fresh try goes to the new leader at once. Retrying
// is safe because every PD write is a transaction of absolute puts and
// deletes, under the same guard: applying one twice leaves the same state.
func (s *Storage) do(fn func(ctx context.Context) error) error {
	ctx, cancel := s.ctx()
	defer cancel()
	s.guardMu.RLock()
	lctx := s.leaderCtx
	s.guardMu.RUnlock()
	if lctx != nil {
		defer context.AfterFunc(lctx, cancel)()
	}
	for {
		actx, acancel := context.WithTimeout(ctx, s.attempt)
		err := fn(actx)
		acancel()
		if err != nil && lctx != nil && lctx.Err() != nil {
			return fmt.Errorf("%w: the leadership ended: %w", ErrGuardFailed, err)
		}
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// retryable reports whether err says etcd could not serve a request just
// now, as opposed to having refused it.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable
	}
	return status.Code(err) == codes.Unavailable
}

// Get returns the value of key, or ok=false. The read is linearizable: it
// sees every write committed before it started, by any member.
func (s *Storage) Get(key []byte) ([]byte, bool, error) {
	var resp *clientv3.GetResponse
	err := s.do(func(ctx context.Context) (err error) {
		resp, err = s.cli.Get(ctx, EtcdPrefix+string(key))
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("read %q from PD state in %s: %w", key, s.dir, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// GetUint64 reads a big-endian uint64; absent reads as 0. A value of the wrong
// size is corruption and names the key and directory.
func (s *Storage) GetUint64(key []byte) (uint64, error) {
	v, ok, err := s.Get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("PD state in %s: key %q holds %d bytes, want 8: corrupt", s.dir, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// scanPage is how many keys one etcd range request returns.
const scanPage = 1000

// Scan calls fn for every key with prefix, in key order, from one snapshot
// (all pages read at the revision of the first).
func (s *Storage) Scan(prefix []byte, fn func(key, value []byte) error) error {
	full := EtcdPrefix + string(prefix)
	end := clientv3.GetPrefixRangeEnd(full)
	from := full
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(scanPage), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		var resp *clientv3.GetResponse
		err := s.do(func(ctx context.Context) (err error) {
			resp, err = s.cli.Get(ctx, from, opts...)
			return err
		})
		if err != nil {
			return fmt.Errorf("scan %q in PD state in %s: %w", prefix, s.dir, err)
		}
		rev = resp.Header.Revision
		for _, kv := range resp.Kvs {
			if err := fn(kv.Key[len(EtcdPrefix):], kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Batch collects writes that commit atomically and durably.
type Batch struct {
	s   *Storage
	ops []clientv3.Op
}

// NewBatch starts a batch.
func (s *Storage) NewBatch() *Batch { return &Batch{s: s} }

// Put sets key to value.
func (b *Batch) Put(key, value []byte) {
	b.ops = append(b.ops, clientv3.OpPut(EtcdPrefix+string(key), string(value)))
}

// PutUint64 sets key to a big-endian uint64.
func (b *Batch) PutUint64(key []byte, v uint64) {
	b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

// Delete removes key.
func (b *Batch) Delete(key []byte) {
	b.ops = append(b.ops, clientv3.OpDelete(EtcdPrefix+string(key)))
}

// Commit writes the batch in one etcd transaction, conditional on the guard;
// it returns once a quorum has the transaction in its synced log.
func (b *Batch) Commit() error {
	if len(b.ops) == 0 {
		return nil
	}
	b.s.guardMu.RLock()
	guard := b.s.guard
	b.s.guardMu.RUnlock()
	var resp *clientv3.TxnResponse
	err := b.s.do(func(ctx context.Context) (err error) {
		resp, err = b.s.cli.Txn(ctx).If(guard...).Then(b.ops...).Commit()
		return err
	})
	if err != nil {
		return fmt.Errorf("write PD state in %s: %w", b.s.dir, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("write PD state in %s: %w", b.s.dir, ErrGuardFailed)
	}
	return nil
}

// HandOff moves etcd's raft leadership to another member if this one holds
// it, so that writes after this member stops (the next PD leader's first
// ones) do not wait out etcd's request timeout on a proposal the stopped
// member dropped. It is a no-op for a single member.
func (s *Storage) HandOff() error {
	if err := s.etcd.Server.TryTransferLeadershipOnShutdown(); err != nil {
		return fmt.Errorf("hand the etcd leadership of %s over: %w", s.name, err)
	}
	return nil
}

// Interrupt fails every request in progress and every later one at once:
// a member that is stopping without a quorum must not wait out its writes.
func (s *Storage) Interrupt() { s.interrupt() }

// Close stops the etcd member. Safe to call more than once.
func (s *Storage) Close() error {
	s.closeOnce.Do(func() {
		s.interrupt()
		_ = s.cli.Close()
		s.etcd.Close()
		s.closeErr = s.lock.Close()
	})
	return s.closeErr
}

// RegionKey and StoreKey build the keys of catalog entries.
func RegionKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), PrefixRegion...), id)
}

// StoreKey is the key of a store entry.
func StoreKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), PrefixStore...), id)
}

// ClaimKey is the key of a store's claim record.
func ClaimKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), PrefixClaim...), id)
}

var _ io.Closer = (*Storage)(nil)
