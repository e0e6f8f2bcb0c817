package pdserver

import (
	"cmp"
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/pkg/stats"
	"github.com/nokv/nokv/services/pd/internal/cluster"
	"github.com/nokv/nokv/services/pd/internal/grpcsvc"
	"github.com/nokv/nokv/services/pd/internal/storage"
)

// Server is a running nokv-pd: one member of a PD group (a group of one
// by default). Every member runs an etcd member holding PD's state; the
// member that wins the etcd election leads and serves every RPC, the others
// answer NotLeader naming it.
type Server struct {
	cfg  Config
	log  *slog.Logger
	st   *storage.Storage
	file *config.Cluster
	svc  *grpcsvc.Service

	// leader is this member's leader state while it leads, else nil.
	leader atomic.Pointer[leaderState]
	// clusterID is the cluster id once known (from leading, or read from
	// the shared state by a follower).
	clusterID atomic.Uint64
	// leaderHint caches the leader's address for NotLeader answers.
	leaderHint atomic.Pointer[hint]
	// epoch anchors the monotonic clock of lease validity.
	epoch time.Time

	grpc    *grpc.Server
	ln      net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	metrics *metrics

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New starts this member's etcd member in cfg.WorkDir (waiting until its
// group has a quorum), binds the listeners and, for a group of one, takes
// the leadership at once: the state is bootstrapped from file on the first
// start (file may be nil when the state already exists) and New's error
// reports a state that cannot be served. A member of a larger group
// campaigns from Start on.
func New(cfg Config, file *config.Cluster, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid settings: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	members := make([]storage.Member, len(cfg.Members))
	for i, m := range cfg.Members {
		members[i] = storage.Member{Name: m.Name, PeerURL: m.PeerURL, ClientURL: m.ClientURL}
	}
	st, err := storage.OpenWith(storage.Options{
		Dir: cfg.WorkDir, Name: cfg.Name, Members: members, Join: cfg.Join, ListenPeerURL: cfg.ListenPeerURL, PDAddr: cmp.Or(cfg.AdvertiseAddr, cfg.Addr),
		TickMs: uint(cfg.ElectionTimeout.Milliseconds() / 10), ElectionMs: uint(cfg.ElectionTimeout.Milliseconds()),
		LogLevel: cfg.EtcdLogLevel, Log: log,
	})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log.With("member", st.Name()), st: st, file: file, stop: make(chan struct{}), metrics: newMetrics(), epoch: time.Now()}
	fail := func(err error) (*Server, error) {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		if l := s.leader.Swap(nil); l != nil {
			l.close()
			l.resign()
		}
		_ = st.Close()
		return nil, err
	}
	s.svc = &grpcsvc.Service{
		Lead: s.lead, Storage: st, LeaderAddr: s.LeaderAddr, Now: time.Now, Log: s.log,
		Observe: grpcsvc.Observer{TSOBatch: s.metrics.observeTSO},
	}
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return fail(fmt.Errorf("listen on %s: %w", cfg.Addr, err))
	}
	if len(cfg.Members) <= 1 {
		// A group of one needs no campaign to wait for: lead now, so that a
		// state that cannot be served fails the start.
		if err := s.leadOnce(context.Background()); err != nil {
			return fail(err)
		}
	}
	idCheck := grpcsvc.ClusterIDCheck{ID: s.ClusterID}
	s.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.metrics.unary, idCheck.Unary, s.svc.LeadershipCheck),
		grpc.ChainStreamInterceptor(s.metrics.stream, idCheck.Stream),
		// Fixed windows switch off gRPC's bandwidth-probe pings, which cost the
		// TSO stream's many small messages (see docs/tso-benchmark.md).
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<22),
	)
	pdpb.RegisterPDServer(s.grpc, s.svc)
	if cfg.MetricsAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fail(fmt.Errorf("listen on metrics address %s: %w", cfg.MetricsAddr, err))
		}
		s.httpSrv = &http.Server{Handler: s.metrics.handler(), ReadHeaderTimeout: 10 * time.Second}
	}
	return s, nil
}

// ClusterID is the id of the cluster PD serves, or 0 while this member has
// not learned it (a follower of a group that was never bootstrapped).
func (s *Server) ClusterID() uint64 {
	if id := s.clusterID.Load(); id != 0 {
		return id
	}
	if id, err := s.st.GetUint64(storage.KeyClusterID); err == nil && id != 0 {
		s.clusterID.Store(id)
		return id
	}
	return 0
}

// Stopped is closed when this member's etcd member stopped on its own:
// it was removed from the group (nokv-config pd member remove), or etcd
// failed. The member cannot serve or follow any more; nokv-pd exits.
func (s *Server) Stopped() <-chan struct{} { return s.st.Etcd().Server.StopNotify() }

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
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.ln); err != nil {
			s.log.Error("gRPC server stopped", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.campaignLoop()
	}()
	go func() {
		defer s.wg.Done()
		s.livenessLoop()
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
	s.log.Info("nokv-pd serving", "addr", s.Addr(), "workdir", s.cfg.WorkDir, "metrics", s.MetricsAddr(), "members", len(s.cfg.Members), "leader", s.IsLeader(), "cluster_id", s.ClusterID())
}

// livenessLoop marks stores down once they miss heartbeats for StoreDownAfter.
func (s *Server) livenessLoop() {
	t := time.NewTicker(min(time.Second, s.cfg.StoreDownAfter/4))
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			l := s.leader.Load()
			if l == nil {
				continue
			}
			down, err := l.Cluster.UpdateLiveness(now)
			if err != nil {
				s.log.Error("update store liveness", "err", err)
			}
			for _, id := range down {
				s.log.Warn("store marked down: no heartbeat", "store", id, "after", s.cfg.StoreDownAfter)
			}
		}
	}
}

// Close stops serving (in-flight RPCs finish, streams are cut), resigns the
// leadership so that another member takes over at once, and stops the etcd
// member. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.leader.Load() != nil {
			if err := s.st.HandOff(); err != nil {
				s.log.Warn("stopping PD leader", "err", err)
			}
		}
		close(s.stop)
		// Requests waiting for a quorum that is gone would hold the stop.
		s.st.Interrupt()
		stopped := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			s.grpc.Stop() // open TSO streams would hold GracefulStop forever
		}
		_ = s.ln.Close()
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.httpSrv.Shutdown(ctx)
			cancel()
		}
		s.wg.Wait()
		if l := s.leader.Swap(nil); l != nil {
			l.close()
			l.resign()
		}
		s.closeErr = s.st.Close()
	})
	return s.closeErr
}

// metrics are PD's counters for expvar (NoKV.Stats.pd) and Prometheus.
type metrics struct {
	reg        *prometheus.Registry
	rpcs       *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	tsoBatch   prometheus.Histogram
	rpcTotal   atomic.Int64
	rpcErrors  atomic.Int64
	tsoReqs    atomic.Int64
	tsoIssued  atomic.Int64
	clusterRef atomic.Pointer[cluster.Cluster]
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.rpcs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "pd", Name: "rpc_total", Help: "RPCs served, by method and gRPC code."}, []string{"method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "nokv", Subsystem: "pd", Name: "rpc_duration_seconds", Help: "RPC latency by method (streams: whole stream).", Buckets: prometheus.ExponentialBuckets(20e-6, 3, 12)}, []string{"method"})
	m.tsoBatch = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "nokv", Subsystem: "pd", Name: "tso_batch_size", Help: "Timestamps per TSO stream request.", Buckets: prometheus.ExponentialBuckets(1, 4, 10)})
	m.reg.MustRegister(m.rpcs, m.latency, m.tsoBatch,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "pd", Name: "tso_requests_total", Help: "TSO stream requests."}, func() float64 { return float64(m.tsoReqs.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "nokv", Subsystem: "pd", Name: "regions", Help: "Regions in the catalog."}, func() float64 {
			if c := m.clusterRef.Load(); c != nil {
				return float64(c.RegionCount())
			}
			return 0
		}),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, state := range []string{"up", "down", "tombstone"} {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "nokv", Subsystem: "pd", Name: "stores", Help: "Stores by state.", ConstLabels: prometheus.Labels{"state": state}}, func() float64 {
			return float64(m.storeCounts()[state])
		}))
	}
	stats.Register("pd", func() any { return m.snapshot() })
	return m
}

func (m *metrics) watch(c *cluster.Cluster) { m.clusterRef.Store(c) }

func (m *metrics) storeCounts() map[string]int {
	c := m.clusterRef.Load()
	if c == nil {
		return map[string]int{}
	}
	up, down, tomb := c.StoreCounts()
	return map[string]int{"up": up, "down": down, "tombstone": tomb}
}

func (m *metrics) snapshot() map[string]any {
	regions := 0
	if c := m.clusterRef.Load(); c != nil {
		regions = c.RegionCount()
	}
	return map[string]any{
		"rpc_total": m.rpcTotal.Load(), "rpc_errors": m.rpcErrors.Load(),
		"tso_requests": m.tsoReqs.Load(), "tso_timestamps": m.tsoIssued.Load(),
		"regions": regions, "stores": m.storeCounts(),
	}
}

func (m *metrics) observeTSO(n uint32) {
	m.tsoReqs.Add(1)
	m.tsoIssued.Add(int64(n))
	m.tsoBatch.Observe(float64(n))
}

func (m *metrics) record(method string, start time.Time, err error) {
	method = method[strings.LastIndexByte(method, '/')+1:]
	m.rpcTotal.Add(1)
	if err != nil {
		m.rpcErrors.Add(1)
	}
	m.rpcs.WithLabelValues(method, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.record(info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.record(info.FullMethod, start, err)
	return err
}

func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}
