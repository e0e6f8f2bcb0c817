package storeserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/pkg/kvclient"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/services/store/internal/kvsvc"
	"github.com/nokv/nokv/services/store/internal/raftstore"
)

// Server is a running nokv-store: its engine, raft store, PD client and
// gRPC endpoint.
type Server struct {
	cfg     Config
	log     *slog.Logger
	db      *pebble.DB
	pdConn  *pdclient.MemberConn
	pd      *pdclient.Client
	kv      *kvclient.Client // resolves locks while this store drives GC
	store   *raftstore.Store
	svc     *kvsvc.Service
	grpc    *grpc.Server
	ln      net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	metrics *metrics

	cancelGC  context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// streamWorkers is how many goroutines serve the gRPC requests.
const streamWorkers = 64

// New opens the store's engine in cfg.WorkDir, bootstraps it from the
// cluster file's regions on the first start (cluster may be nil later), and
// binds the listeners. Nothing is served until Start.
func New(cfg Config, cluster *config.Cluster, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid settings: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log}
	ok := false
	defer func() {
		if !ok {
			s.release()
		}
	}()
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("create workdir %s: %w", cfg.WorkDir, err)
	}
	db, err := openEngine(cfg.WorkDir, log)
	if err != nil {
		return nil, err
	}
	s.db = db
	// PDAddr lists every member of a PD group; the connection follows its
	// leader.
	if s.pdConn, err = pdclient.Dial(cfg.PDAddr); err != nil {
		return nil, fmt.Errorf("connect to PD at %s: %w", cfg.PDAddr, err)
	}
	// A store names the cluster its data belongs to on every PD request,
	// so a PD that lost its state and bootstrapped a new cluster is refused.
	ident, err := raftstore.ReadIdent(db)
	if err != nil {
		return nil, fmt.Errorf("read store identity: %w", err)
	}
	if s.pd, err = pdclient.New(s.pdConn, pdclient.Options{ClusterID: ident.GetClusterId()}); err != nil {
		return nil, fmt.Errorf("PD client: %w", err)
	}
	if s.kv, err = kvclient.NewWithPD(s.pd, kvclient.Options{Logger: log.With("component", "gc")}); err != nil {
		return nil, fmt.Errorf("KV client: %w", err)
	}
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	var (
		bootstrap []*metapb.Region
		campaign  []uint64
	)
	if cluster != nil && !cfg.Join {
		for _, r := range cluster.Regions {
			bootstrap = append(bootstrap, r.Meta())
			if r.LeaderStoreID == cfg.StoreID {
				campaign = append(campaign, r.ID)
			}
		}
	}
	// Other stores reach this one at the address PD has for it: the cluster
	// file's, or (without one) the address actually bound.
	advertise := s.ln.Addr().String()
	if cluster != nil && !cfg.Join {
		if a, err := cluster.StoreAddr(cfg.StoreID, cfg.Scope); err == nil {
			advertise = a
		}
	}
	rcfg := raftstore.Config{
		StoreID:                 cfg.StoreID,
		Join:                    cfg.Join,
		TickInterval:            cfg.RaftTickInterval,
		ElectionTicks:           cfg.RaftElectionTicks,
		HeartbeatTicks:          cfg.RaftHeartbeatTicks,
		RaftLogKeep:             cfg.RaftLogKeep,
		RaftLogMax:              20 * cfg.RaftLogKeep,
		RegionSplitSize:         cfg.RegionSplitSize,
		SplitCheckInterval:      cfg.SplitCheckInterval,
		RegionHeartbeatInterval: cfg.HeartbeatInterval,
		StoreHeartbeatInterval:  cfg.HeartbeatInterval,
		CampaignOnBootstrap:     campaign,
		// Beside the engine's files: the engine links ingested ones in.
		SnapshotDir:          filepath.Join(cfg.WorkDir, "snap"),
		MaxPeerDownDuration:  cfg.MaxPeerDownDuration,
		DisableHibernation:   cfg.NoHibernate,
		StoreLivenessTimeout: cfg.StoreLivenessTimeout,
		Knobs:                cfg.TestingKnobs,
	}
	if s.store, err = raftstore.Open(rcfg, db, s.pd, advertise, bootstrap, log); err != nil {
		return nil, err
	}
	s.cfg.StoreID = s.store.StoreID() // a joining store learned it from PD
	s.svc = kvsvc.New(s.store, s.pd)
	s.metrics = newMetrics(s.store, s.svc)
	s.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.metrics.unary, s.announceCluster),
		// Raft and snapshot streams from a store of another cluster are
		// refused.
		grpc.ChainStreamInterceptor(s.checkPeerCluster),
		// Every size a client or another store sends or is sent is bounded
		// below this (api/limits).
		grpc.MaxRecvMsgSize(limits.GRPCMaxMessageSize), grpc.MaxSendMsgSize(limits.GRPCMaxMessageSize),
		// Other stores ping their raft streams every 10 s to find dead links.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<22),
		// Stop cancels the handlers' contexts and waits for them to return:
		// the engine is closed next, and a read still running would find
		// it closed (Pebble panics).
		grpc.WaitForHandlers(true),
		// Requests run on long-lived worker goroutines, whose stacks have
		// grown already: a goroutine per request grew its stack (copying
		// it) several times on every read's way through Pebble, 17% of the
		// leader's CPU under a GET load. Past the workers (raft streams
		// hold some for good) a request gets a goroutine of its own.
		grpc.NumStreamWorkers(streamWorkers),
	)
	storepb.RegisterStoreServer(s.grpc, s.svc)
	if cfg.MetricsAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listen on metrics address %s: %w", cfg.MetricsAddr, err)
		}
		s.httpSrv = &http.Server{Handler: s.metrics.handler(), ReadHeaderTimeout: 10 * time.Second}
	}
	ok = true
	return s, nil
}

// announceCluster puts the cluster id of this store's data in every
// response header: a PD about to bootstrap asks the stores of the cluster
// file whether they belong to a cluster already.
func (s *Server) announceCluster(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(raftstore.ClusterIDKey, strconv.FormatUint(s.store.ClusterID(), 10)))
	return h(ctx, req)
}

// checkPeerCluster refuses raft and snapshot streams that name another
// cluster.
func (s *Server) checkPeerCluster(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.store.CheckPeerCluster(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

// StoreID is the store's id (for a joining store, the one PD gave it).
func (s *Server) StoreID() uint64 { return s.cfg.StoreID }

// ClusterID is the cluster the store's data belongs to.
func (s *Server) ClusterID() uint64 { return s.store.ClusterID() }

// openEngine opens the store's Pebble. Pebble's directory lock makes a
// second process on the same workdir fail here instead of corrupting it.
func openEngine(dir string, log *slog.Logger) (*pebble.DB, error) {
	cache := pebble.NewCache(128 << 20)
	defer cache.Unref()
	opts := &pebble.Options{
		Cache: cache,
		// A small memtable keeps the records the prewrite's version seeks
		// descend through close together: the memtable's arena also holds
		// every raft log entry, and with 64 MiB a busy store's write
		// records were spread over tens of MiB, each level of a skiplist
		// descent a cache miss, so the leader's CPU per write grew with its
		// data (docs/benchmarks.md, "CPU per SET as the store's data
		// grows"). Flushed, the records sit in compact blocks; the flushes
		// and compactions cost less than the misses did.
		MemTableSize: 8 << 20,
		// Batches over half of it (raft entries reach
		// limits.RaftEntryMaxSize, 8 MiB) go in as flushable batches,
		// queued like memtables: writes stall only once 128 MiB are queued
		// for flushing, as with two 64 MiB memtables before, not at 16 MiB
		// (two 6 MiB entries and a memtable).
		MemTableStopWritesThreshold: 16,
		BytesPerSync:                1 << 20,
		Logger:                      pebbleLogger{log},
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open engine in %s (is another nokv-store using it?): %w", dir, err)
	}
	return db, nil
}

type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("pebble fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

// Failed is closed if the store stopped on an engine failure; Err says why.
func (s *Server) Failed() <-chan struct{} { return s.store.Failed() }

// Err reports the engine failure that stopped the store, if any.
func (s *Server) Err() error { return s.store.Err() }

// Stats returns the counters published as NoKV.Stats.store.
func (s *Server) Stats() map[string]any { return s.metrics.snapshot() }

// Addr is the gRPC address actually bound.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// MetricsAddr is the metrics address actually bound, or "".
func (s *Server) MetricsAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Start serves in background goroutines.
func (s *Server) Start() {
	s.store.Start()
	gcCtx, cancel := context.WithCancel(context.Background())
	s.cancelGC = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		s.svc.RunGC(gcCtx, s.pd, kvsvc.GCOptions{Interval: s.cfg.GCInterval, LifeTime: s.cfg.GCLifeTime, Locks: s.kv, Log: s.log})
	}()
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.ln); err != nil {
			s.log.Error("gRPC server stopped", "err", err)
		}
	}()
	if s.httpSrv != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	s.log.Info("nokv-store serving", "store", s.cfg.StoreID, "addr", s.Addr(), "workdir", s.cfg.WorkDir, "metrics", s.MetricsAddr())
}

// Close stops serving, stops the raft store and closes the engine. Safe to
// call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.cancelGC != nil {
			s.cancelGC()
		}
		if s.grpc != nil {
			s.svc.Shutdown()
			stopped := make(chan struct{})
			go func() { s.grpc.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(5 * time.Second):
				s.grpc.Stop() // raft streams from peers never end on their own
			}
		}
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.httpSrv.Shutdown(ctx)
			cancel()
		}
		s.wg.Wait()
		s.closeErr = s.release()
	})
	return s.closeErr
}

// release frees what New acquired, in reverse order.
func (s *Server) release() error {
	var errs []error
	if s.store != nil {
		s.store.Stop()
	}
	if s.kv != nil {
		s.kv.Close()
	}
	if s.pd != nil {
		s.pd.Close()
	}
	if s.pdConn != nil {
		errs = append(errs, s.pdConn.Close())
	}
	if s.ln != nil && s.grpc == nil {
		_ = s.ln.Close()
	}
	if s.httpLn != nil && s.httpSrv == nil {
		_ = s.httpLn.Close()
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close engine: %w", err))
		}
	}
	return errors.Join(errs...)
}
