package pdserver

import (
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
	"github.com/nokv/nokv/services/pd/internal/id"
	"github.com/nokv/nokv/services/pd/internal/schedule"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"github.com/nokv/nokv/services/pd/internal/tso"
)

// Server is a running nokv-pd.
type Server struct {
	cfg     Config
	log     *slog.Logger
	st      *storage.Storage
	cluster *cluster.Cluster
	oracle  *tso.Oracle
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

// New opens PD's state in cfg.WorkDir, bootstraps it from file on first start
// (file may be nil when the state already exists), and binds the listeners.
func New(cfg Config, file *config.Cluster, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid settings: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	st, err := storage.Open(cfg.WorkDir, log)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, st: st, stop: make(chan struct{}), metrics: newMetrics()}
	fail := func(err error) (*Server, error) {
		if s.oracle != nil {
			s.oracle.Close()
		}
		_ = st.Close()
		return nil, err
	}
	s.cluster = cluster.New(st, cluster.Options{StoreDownAfter: cfg.StoreDownAfter, Scope: cfg.Scope, ClusterID: cfg.RecoverClusterID, AdoptStores: cfg.RecoverClusterID != 0})
	bootstrapped, err := s.cluster.Bootstrapped()
	if err != nil {
		return fail(err)
	}
	switch {
	case bootstrapped:
		err = s.cluster.Load()
	case file != nil:
		// Bootstrapping happens once per cluster: stores that already hold
		// a cluster id mean PD's state was lost, and a new cluster over them
		// would hand out their ids again.
		if err = probeStores(file, cfg, log); err != nil {
			break
		}
		log.Info("bootstrapping the cluster from the cluster file", "stores", len(file.Stores), "regions", len(file.Regions), "recover_cluster_id", cfg.RecoverClusterID)
		err = s.cluster.Bootstrap(file)
	default:
		err = errors.New("PD state is empty and no cluster file was given: start once with --config raft_config.example.json")
	}
	if err != nil {
		return fail(fmt.Errorf("load cluster: %w", err))
	}
	if cfg.RecoverClusterID != 0 && s.cluster.ClusterID() != cfg.RecoverClusterID {
		return fail(fmt.Errorf("--recover-cluster-id %d: PD's state in %s already holds cluster %d", cfg.RecoverClusterID, cfg.WorkDir, s.cluster.ClusterID()))
	}
	floor := grpcsvc.MaxClusterID(s.cluster.ScanRegions(nil, nil, 0), s.cluster.GetAllStores(false))
	floor = max(floor, cfg.RecoverIDFloor)
	ids, err := id.New(st, floor)
	if err != nil {
		return fail(fmt.Errorf("id allocator: %w", err))
	}
	if s.oracle, err = tso.New(st, tso.Options{}); err != nil {
		return fail(fmt.Errorf("timestamp oracle: %w", err))
	}
	sched, err := schedule.New(s.cluster, schedule.Options{
		ReplaceDownAfter: cfg.ReplaceDownAfter,
		RegionMaxSize:    cfg.RegionMaxSize,
		AllocID:          func() (uint64, error) { return ids.Alloc(1) },
		Logger:           log,
	})
	if err != nil {
		return fail(fmt.Errorf("scheduler: %w", err))
	}
	svc := &grpcsvc.Service{
		Cluster: s.cluster, Scheduler: sched, IDs: ids, Oracle: s.oracle, Storage: st,
		Now: time.Now, Log: log,
		Observe: grpcsvc.Observer{TSOBatch: s.metrics.observeTSO},
	}
	s.metrics.watch(s.cluster)
	idCheck := grpcsvc.ClusterIDCheck{ID: s.cluster.ClusterID}
	s.grpc = grpc.NewServer(
		grpc.ChainUnaryInterceptor(s.metrics.unary, idCheck.Unary),
		grpc.ChainStreamInterceptor(s.metrics.stream, idCheck.Stream),
		// Fixed windows switch off gRPC's bandwidth-probe pings, which cost the
		// TSO stream's many small messages (see docs/tso-benchmark.md).
		grpc.InitialWindowSize(1<<20), grpc.InitialConnWindowSize(1<<22),
	)
	pdpb.RegisterPDServer(s.grpc, svc)
	if s.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return fail(fmt.Errorf("listen on %s: %w", cfg.Addr, err))
	}
	if cfg.MetricsAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = s.ln.Close()
			return fail(fmt.Errorf("listen on metrics address %s: %w", cfg.MetricsAddr, err))
		}
		s.httpSrv = &http.Server{Handler: s.metrics.handler(), ReadHeaderTimeout: 10 * time.Second}
	}
	return s, nil
}

// ClusterID is the id of the cluster PD serves.
func (s *Server) ClusterID() uint64 { return s.cluster.ClusterID() }

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
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(s.ln); err != nil {
			s.log.Error("gRPC server stopped", "err", err)
		}
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
	s.log.Info("nokv-pd serving", "addr", s.Addr(), "workdir", s.cfg.WorkDir, "metrics", s.MetricsAddr(), "cluster_id", s.cluster.ClusterID())
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
			down, err := s.cluster.UpdateLiveness(now)
			if err != nil {
				s.log.Error("update store liveness", "err", err)
			}
			for _, id := range down {
				s.log.Warn("store marked down: no heartbeat", "store", id, "after", s.cfg.StoreDownAfter)
			}
		}
	}
}

// Close stops serving (in-flight RPCs finish, streams are cut), then closes the
// oracle and the state store. Safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
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
		s.oracle.Close()
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
