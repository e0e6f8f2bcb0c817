package storeserver

import (
	"context"
	"expvar"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/pkg/stats"
	"github.com/nokv/nokv/services/store/internal/kvsvc"
	"github.com/nokv/nokv/services/store/internal/raftstore"
)

// metrics are the store's counters for expvar (NoKV.Stats.store) and
// Prometheus.
type metrics struct {
	reg       *prometheus.Registry
	rpcs      *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	rpcTotal  atomic.Int64
	rpcErrors atomic.Int64
	store     *raftstore.Store
	svc       *kvsvc.Service
}

func newMetrics(store *raftstore.Store, svc *kvsvc.Service) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), store: store, svc: svc}
	m.rpcs = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "store", Name: "rpc_total", Help: "Unary RPCs served, by method and gRPC code."}, []string{"method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "nokv", Subsystem: "store", Name: "rpc_duration_seconds", Help: "Unary RPC latency by method.", Buckets: prometheus.ExponentialBuckets(50e-6, 3, 12)}, []string{"method"})
	m.reg.MustRegister(m.rpcs, m.latency, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	st := store.Stats()
	counter := func(name, help string, v *atomic.Int64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "store", Name: name, Help: help}, func() float64 { return float64(v.Load()) }))
	}
	counter("raft_ready_rounds_total", "Raft loop rounds that persisted or applied something.", &st.ReadyRounds)
	counter("raft_syncs_total", "Fsyncs of raft state; each covers every region's entries of one round.", &st.RaftSyncs)
	counter("raft_entries_persisted_total", "Log entries written.", &st.EntriesPersisted)
	counter("raft_entries_applied_total", "Log entries applied.", &st.EntriesApplied)
	counter("raft_messages_sent_total", "Raft messages sent to other stores.", &st.MessagesSent)
	counter("raft_messages_dropped_total", "Raft messages dropped (queue full, link down, filtered).", &st.MessagesDropped)
	counter("raft_empty_appends_skipped_total", "A leader's empty (commit index only) appends not sent: a later append to the follower carried the commit.", &st.EmptyAppendsSkipped)
	counter("raft_snapshots_sent_total", "Region snapshots streamed to other stores.", &st.SnapshotsSent)
	counter("raft_snapshot_send_failures_total", "Region snapshot streams that failed or were refused by the receiver (each retried after a pause).", &st.SnapshotSendFailures)
	counter("raft_snapshots_applied_total", "Region snapshots applied.", &st.SnapshotsApplied)
	counter("raft_snapshots_received_total", "Region snapshot streams received whole into files.", &st.SnapshotsReceived)
	counter("raft_snapshot_applies_resumed_total", "Snapshot applies a stop cut short, completed at start from the kept files.", &st.SnapshotAppliesResumed)
	counter("raft_snapshot_applies_forgotten_total", "Snapshot applies a stop cut short whose files were gone: the region was cleared at start.", &st.SnapshotAppliesForgotten)
	counter("raft_proposals_total", "Commands proposed.", &st.Proposals)
	counter("raft_read_index_total", "ReadIndex rounds (each serves a batch of reads).", &st.ReadIndexRounds)
	counter("raft_peer_ticks_total", "Raft ticks given to region peers (hibernated peers get none).", &st.PeerTicks)
	counter("raft_wakes_total", "Hibernated region peers woken (by a message, proposal, read or a store taken for down).", &st.Wakes)
	counter("raft_hibernate_requests_total", "Rounds in which a quiet leader asked its peers to hibernate.", &st.HibernateRequests)
	counter("raft_store_down_events_total", "Other stores taken for down (silent, or link broke): each wakes the followers here of regions led there.", &st.StoreDownEvents)
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "nokv", Subsystem: "store", Name: "raft_hibernated_peers", Help: "Region peers here that do not tick (hibernated)."}, func() float64 { return float64(st.HibernatedPeers.Load()) }))
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "store", Name: "gc_rounds_total", Help: "Garbage collection rounds."}, func() float64 { r, _ := svc.GCStats(); return float64(r) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "store", Name: "gc_deleted_keys_total", Help: "Engine keys deleted by garbage collection."}, func() float64 { _, d := svc.GCStats(); return float64(d) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "store", Name: "gc_locks_resolved_total", Help: "Locks at or below a new GC safe point resolved while this store drove GC."}, func() float64 { return float64(svc.GCLocksResolved()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "nokv", Subsystem: "store", Name: "gc_regions_skipped_total", Help: "Region GC passes skipped: the region provably held nothing to collect."}, func() float64 { return float64(svc.GCRegionsSkipped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "nokv", Subsystem: "store", Name: "regions", Help: "Regions with a peer here."}, func() float64 { r, _ := store.Counts(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "nokv", Subsystem: "store", Name: "raft_round_max_seconds", Help: "Longest raft loop round since the store started: every region waited that long."}, func() float64 { return time.Duration(st.LongestRoundNanos.Load()).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "nokv", Subsystem: "store", Name: "leaders", Help: "Regions led here."}, func() float64 { _, l := store.Counts(); return float64(l) }),
	)
	stats.Register("store", func() any { return m.snapshot() })
	return m
}

func (m *metrics) snapshot() map[string]any {
	st := m.store.Stats()
	regions, leaders := m.store.Counts()
	gcRounds, gcDeleted := m.svc.GCStats()
	return map[string]any{
		"store_id": m.store.StoreID(), "rpc_total": m.rpcTotal.Load(), "rpc_errors": m.rpcErrors.Load(),
		"regions": regions, "leaders": leaders,
		"raft_ready_rounds": st.ReadyRounds.Load(), "raft_syncs": st.RaftSyncs.Load(),
		"raft_entries_persisted": st.EntriesPersisted.Load(), "raft_entries_applied": st.EntriesApplied.Load(),
		"raft_messages_sent": st.MessagesSent.Load(), "raft_messages_dropped": st.MessagesDropped.Load(),
		"raft_empty_appends_skipped": st.EmptyAppendsSkipped.Load(),
		"raft_snapshots_sent":        st.SnapshotsSent.Load(), "raft_snapshot_send_failures": st.SnapshotSendFailures.Load(), "raft_snapshots_applied": st.SnapshotsApplied.Load(),
		"raft_round_max_ms":       time.Duration(st.LongestRoundNanos.Load()).Milliseconds(),
		"raft_snapshots_received": st.SnapshotsReceived.Load(), "raft_snapshot_applies_resumed": st.SnapshotAppliesResumed.Load(), "raft_snapshot_applies_forgotten": st.SnapshotAppliesForgotten.Load(),
		"raft_proposals": st.Proposals.Load(), "raft_read_index": st.ReadIndexRounds.Load(),
		"raft_peer_ticks": st.PeerTicks.Load(), "raft_hibernated_peers": st.HibernatedPeers.Load(), "raft_wakes": st.Wakes.Load(),
		"raft_hibernate_requests": st.HibernateRequests.Load(), "raft_store_down_events": st.StoreDownEvents.Load(),
		"gc_rounds": gcRounds, "gc_deleted_keys": gcDeleted, "gc_locks_resolved": m.svc.GCLocksResolved(), "gc_regions_skipped": m.svc.GCRegionsSkipped(),
	}
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	m.rpcTotal.Add(1)
	if err != nil {
		m.rpcErrors.Add(1)
	}
	m.rpcs.WithLabelValues(method, status.Code(err).String()).Inc()
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	return resp, err
}

func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	// CPU and heap profiles of a running process (scripts/bench-cluster.sh
	// PROFILE=...): the metrics address is an operator's port, not a client's.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}
