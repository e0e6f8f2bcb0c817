// Package metrics exposes the gateway's counters two ways: expvar JSON at
// /debug/vars (NoKV.Stats.redis) and Prometheus text at /metrics.
package metrics

import (
	"expvar"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nokv/nokv/pkg/stats"
)

// Metrics holds one gateway's counters.
type Metrics struct {
	CommandsTotal       atomic.Int64
	ErrorsTotal         atomic.Int64
	ConnectionsActive   atomic.Int64
	ConnectionsAccepted atomic.Int64
	ConnectionsRejected atomic.Int64
	// Panics counts panics contained on a connection (inside a command, or
	// while parsing or writing for it): each closed that connection only.
	Panics atomic.Int64
	// ClientsClosedQueryBuffer and ClientsClosedOutputBuffer count clients
	// closed for passing client-query-buffer-limit and
	// client-output-buffer-limit.
	ClientsClosedQueryBuffer  atomic.Int64
	ClientsClosedOutputBuffer atomic.Int64
	// ClientsEvicted counts clients closed to keep every client's buffers
	// within maxmemory-clients; ClientMemory reports what those buffers
	// hold (past each buffer's free part).
	ClientsEvicted atomic.Int64
	ClientMemory   func() int64

	perCommand sync.Map // command name -> *Command

	reg      *prometheus.Registry
	calls    *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// Command is the metrics of one command; callers on a hot path keep it (see
// Metrics.Command) instead of looking the command up by name every time.
type Command struct {
	m *Metrics
	commandMetrics
}

type commandMetrics struct {
	calls    atomic.Int64
	promCall prometheus.Counter
	promFail prometheus.Counter
	promLat  prometheus.Observer
}

// New creates a Metrics and makes it the one expvar reports.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "nokv", Subsystem: "redis", Name: "commands_total",
		Help: "Commands executed, by command.",
	}, []string{"cmd"})
	m.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "nokv", Subsystem: "redis", Name: "command_errors_total",
		Help: "Commands that replied with an error, by command.",
	}, []string{"cmd"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "nokv", Subsystem: "redis", Name: "command_duration_seconds",
		Help:    "Command execution time, by command (excluding network).",
		Buckets: prometheus.ExponentialBuckets(5e-6, 2.5, 14), // 5µs .. ~0.75s
	}, []string{"cmd"})
	m.reg.MustRegister(m.calls, m.failures, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "nokv", Subsystem: "redis", Name: "connections_active",
			Help: "Open client connections.",
		}, func() float64 { return float64(m.ConnectionsActive.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nokv", Subsystem: "redis", Name: "connections_accepted_total",
			Help: "Client connections accepted.",
		}, func() float64 { return float64(m.ConnectionsAccepted.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nokv", Subsystem: "redis", Name: "connections_rejected_total",
			Help: "Client connections refused because maxclients was reached.",
		}, func() float64 { return float64(m.ConnectionsRejected.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nokv", Subsystem: "gateway", Name: "panics_total",
			Help: "Panics contained on a client connection (that connection was closed).",
		}, func() float64 { return float64(m.Panics.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nokv", Subsystem: "gateway", Name: "clients_closed_query_buffer_total",
			Help: "Clients closed for passing client-query-buffer-limit.",
		}, func() float64 { return float64(m.ClientsClosedQueryBuffer.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nokv", Subsystem: "gateway", Name: "clients_closed_output_buffer_total",
			Help: "Clients closed for passing client-output-buffer-limit.",
		}, func() float64 { return float64(m.ClientsClosedOutputBuffer.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "nokv", Subsystem: "gateway", Name: "clients_evicted_total",
			Help: "Clients evicted (closed, largest first) to keep all clients' buffers within maxmemory-clients.",
		}, func() float64 { return float64(m.ClientsEvicted.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "nokv", Subsystem: "gateway", Name: "client_memory_bytes",
			Help: "Bytes the clients' query and reply buffers hold past each buffer's first 64 KiB (what maxmemory-clients bounds).",
		}, func() float64 {
			if m.ClientMemory == nil {
				return 0
			}
			return float64(m.ClientMemory())
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// A process runs one gateway; tests that start several read the newest.
	stats.Register("redis", func() any { return m.Snapshot() })
	return m
}

// Command returns the metrics of the command called name, creating them (and
// their Prometheus series) on first use.
func (m *Metrics) Command(name string) *Command {
	if cm, ok := m.perCommand.Load(name); ok {
		return cm.(*Command)
	}
	cm := &Command{m: m, commandMetrics: commandMetrics{
		promCall: m.calls.WithLabelValues(name),
		promFail: m.failures.WithLabelValues(name),
		promLat:  m.latency.WithLabelValues(name),
	}}
	actual, _ := m.perCommand.LoadOrStore(name, cm)
	return actual.(*Command)
}

// ObserveCommand records one executed command.
func (m *Metrics) ObserveCommand(name string, d time.Duration, failed bool) {
	m.Command(name).Observe(d, failed)
}

// Observe records one execution of the command.
func (cm *Command) Observe(d time.Duration, failed bool) {
	cm.calls.Add(1)
	cm.promCall.Inc()
	cm.promLat.Observe(d.Seconds())
	cm.m.CommandsTotal.Add(1)
	if failed {
		cm.promFail.Inc()
		cm.m.ErrorsTotal.Add(1)
	}
}

// Snapshot is the NoKV.Stats.redis expvar object.
func (m *Metrics) Snapshot() map[string]any {
	per := map[string]int64{}
	m.perCommand.Range(func(k, v any) bool {
		per[strings.ToUpper(k.(string))] = v.(*Command).calls.Load()
		return true
	})
	return map[string]any{
		"commands_total":               m.CommandsTotal.Load(),
		"errors_total":                 m.ErrorsTotal.Load(),
		"connections_active":           m.ConnectionsActive.Load(),
		"connections_accepted":         m.ConnectionsAccepted.Load(),
		"connections_rejected":         m.ConnectionsRejected.Load(),
		"panics":                       m.Panics.Load(),
		"clients_closed_query_buffer":  m.ClientsClosedQueryBuffer.Load(),
		"clients_closed_output_buffer": m.ClientsClosedOutputBuffer.Load(),
		"clients_evicted":              m.ClientsEvicted.Load(),
		"commands_per_operation":       per,
	}
}

// Handler serves /debug/vars, /debug/pprof/, /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	// CPU and heap profiles of a running process (scripts/bench-cluster.sh
	// PROFILE=...): the metrics address is an operator's port, not a client's.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}
