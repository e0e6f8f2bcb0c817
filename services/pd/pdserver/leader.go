package pdserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/nokv/nokv/services/pd/internal/cluster"
	"github.com/nokv/nokv/services/pd/internal/grpcsvc"
	"github.com/nokv/nokv/services/pd/internal/id"
	"github.com/nokv/nokv/services/pd/internal/schedule"
	"github.com/nokv/nokv/services/pd/internal/tso"
)

// ElectionPrefix is the etcd key prefix of the PD leader election: each
// candidate's key holds its gRPC address, the oldest key leads.
const ElectionPrefix = "nokv/pd-leader"

// leaseMargin is taken off every lease validity: the leader stops serving
// this much before etcd could possibly expire its lease, which covers the
// time between a validity check and the answer it allows, and clock rate
// differences between the members.
const leaseMargin = 200 * time.Millisecond

// leaderState is what a leading member serves from, with the etcd lease that
// holds its leadership.
type leaderState struct {
	grpcsvc.Leader
	sess *concurrency.Session
	el   *concurrency.Election
	// ctx ends with the leadership: the storage requests made for it fail
	// at once then (Storage.SetLeaderContext).
	ctx    context.Context
	cancel context.CancelFunc
	// validUntil is when the lease could first expire, less leaseMargin, in
	// nanoseconds since Server.epoch (a monotonic clock).
	validUntil atomic.Int64
}

// close stops the leader's background work: the oracle, so a TSO stream in
// progress ends at once.
func (l *leaderState) close() {
	l.cancel()
	if l.Oracle != nil {
		l.Oracle.Close()
	}
}

// resign gives up the election key (so another member wins without
// waiting for the lease to run out) and revokes the lease.
func (l *leaderState) resign() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.el.Resign(ctx)
	_ = l.sess.Close()
}

// mono is the time since the server started, from the monotonic clock.
func (s *Server) mono() int64 { return int64(time.Since(s.epoch)) }

// IsLeader reports whether this member leads and holds a valid lease.
func (s *Server) IsLeader() bool {
	l := s.leader.Load()
	return l != nil && s.mono() < l.validUntil.Load()
}

// lead is grpcsvc.Service.Lead.
func (s *Server) lead(ctx context.Context) (*grpcsvc.Leader, error) {
	if l := s.leader.Load(); l != nil && s.mono() < l.validUntil.Load() {
		return &l.Leader, nil
	}
	addr := s.LeaderAddr()
	if addr == s.advertise() {
		addr = "" // our own key outlived our lease's validity: no leader to name
	}
	return nil, grpcsvc.NotLeader(ctx, addr)
}

// hint is a cached leader address.
type hint struct {
	addr string
	at   int64 // Server.mono() when read
}

// hintTTL is how long a follower trusts the leader address it read.
const hintTTL = 200 * time.Millisecond

// LeaderAddr is the gRPC address of the current leader as the election keys
// name it, or "" when there is none (or the shared state is unreachable).
func (s *Server) LeaderAddr() string {
	now := s.mono()
	if h := s.leaderHint.Load(); h != nil && now-h.at < int64(hintTTL) {
		return h.addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addr := ""
	resp, err := s.st.Client().Get(ctx, ElectionPrefix+"/", clientv3.WithFirstCreate()...)
	if err == nil && len(resp.Kvs) > 0 {
		addr = string(resp.Kvs[0].Value)
	}
	s.leaderHint.Store(&hint{addr: addr, at: now})
	return addr
}

// advertise is the address other processes dial this member at.
func (s *Server) advertise() string {
	if s.cfg.AdvertiseAddr != "" {
		return s.cfg.AdvertiseAddr
	}
	return s.Addr()
}

// leaseTTL is the leader lease in whole seconds (etcd's unit), at least 1.
func (s *Server) leaseTTL() int {
	return max(1, int(math.Ceil(s.cfg.LeaderLease.Seconds())))
}

// leadOnce campaigns until this member wins (or ctx ends), then builds the
// leader state, persisting a new TSO window under the new leadership before
// any timestamp is served, and publishes it.
func (s *Server) leadOnce(ctx context.Context) error {
	cli := s.st.Client()
	sess, err := concurrency.NewSession(cli, concurrency.WithTTL(s.leaseTTL()), concurrency.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("open an etcd session for the leader election: %w", err)
	}
	el := concurrency.NewElection(sess, ElectionPrefix)
	if err := el.Campaign(ctx, s.advertise()); err != nil {
		_ = sess.Close()
		return fmt.Errorf("campaign for PD leader: %w", err)
	}
	l := &leaderState{sess: sess, el: el}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	fail := func(err error) error {
		l.close()
		l.resign()
		return err
	}
	if err := s.renew(ctx, l); err != nil {
		return fail(fmt.Errorf("renew the leader lease after winning: %w", err))
	}
	// From here on every write of this member's state holds only while its
	// election key does: a member that lost the leadership cannot move the
	// TSO window or the id mark any more.
	s.st.SetGuard([]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(el.Key()), "=", el.Rev())})
	s.st.SetLeaderContext(l.ctx)
	if err := s.buildLeader(l); err != nil {
		return fail(err)
	}
	s.clusterID.Store(l.Cluster.ClusterID())
	s.metrics.watch(l.Cluster)
	s.leader.Store(l)
	s.leaderHint.Store(nil)
	s.log.Info("this member is the PD leader now", "addr", s.advertise(), "lease", time.Duration(s.leaseTTL())*time.Second, "cluster_id", l.Cluster.ClusterID())
	return nil
}

// renew extends the lease once and records how long it certainly lasts:
// etcd restarts the TTL when the request arrives, which is after t0.
func (s *Server) renew(ctx context.Context, l *leaderState) error {
	t0 := s.mono()
	ttl := time.Duration(s.leaseTTL()) * time.Second
	ctx, cancel := context.WithTimeout(ctx, ttl/3)
	defer cancel()
	resp, err := s.st.Client().KeepAliveOnce(ctx, l.sess.Lease())
	if err != nil {
		return err
	}
	if resp.TTL <= 0 {
		return rpctypes.ErrLeaseNotFound
	}
	l.validUntil.Store(t0 + int64(time.Duration(resp.TTL)*time.Second-leaseMargin))
	return nil
}

// holdLeadership renews the lease every third of its TTL and returns when
// the leadership is lost (the lease expired, was revoked, or could not be
// renewed before its validity ran out) or ctx ends.
func (s *Server) holdLeadership(ctx context.Context, l *leaderState) {
	t := time.NewTicker(time.Duration(s.leaseTTL()) * time.Second / 3)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-l.sess.Done():
				s.log.Warn("PD leadership lost: the etcd session ended")
				return
			case <-t.C:
			}
		}
		err := s.renew(ctx, l)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil:
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			s.log.Warn("PD leadership lost: the lease expired")
			return
		case s.mono() >= l.validUntil.Load():
			s.log.Warn("PD leadership lost: the lease could not be renewed in time", "err", err)
			return
		default:
			s.log.Warn("renew the PD leader lease", "err", err)
		}
	}
}

// campaignLoop holds the leadership while this member has it and campaigns
// again whenever it does not, until Close.
func (s *Server) campaignLoop() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		if l := s.leader.Load(); l != nil {
			s.holdLeadership(ctx, l)
			s.leader.Store(nil)
			s.metrics.watch(nil)
			// Requests still in progress for this leadership fail now
			// (a member cut off from the others would otherwise hold its
			// clients until etcd's request timeout); the guard stays, so
			// a late write of this leadership is refused, and so does the
			// ended leader context, so it is refused at once.
			l.close()
			l.resign()
			if ctx.Err() == nil {
				s.log.Warn("this member stepped down as PD leader")
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err := s.leadOnce(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("PD leader election", "err", err)
			// A campaign interrupted by an etcd leader change is worth
			// retrying soon; a leader that cannot load the state is not
			// worth retrying in a tight loop.
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// buildLeader loads (or on the first start bootstraps) the catalog and
// starts the id allocator, the oracle and the scheduler on it.
func (s *Server) buildLeader(l *leaderState) error {
	cfg := s.cfg
	c := cluster.New(s.st, cluster.Options{StoreDownAfter: cfg.StoreDownAfter, Scope: cfg.Scope, ClusterID: cfg.RecoverClusterID, AdoptStores: cfg.RecoverClusterID != 0})
	bootstrapped, err := c.Bootstrapped()
	if err != nil {
		return err
	}
	switch {
	case bootstrapped:
		err = c.Load()
	case s.file != nil:
		// Bootstrapping happens once per cluster: stores that already hold
		// a cluster id mean PD's state was lost, and a new cluster over them
		// would hand out their ids again.
		if err = probeStores(s.file, cfg, s.log); err != nil {
			break
		}
		s.log.Info("bootstrapping the cluster from the cluster file", "stores", len(s.file.Stores), "regions", len(s.file.Regions), "recover_cluster_id", cfg.RecoverClusterID)
		err = c.Bootstrap(s.file)
	default:
		err = errors.New("PD state is empty and no cluster file was given: start once with --config raft_config.example.json")
	}
	if err != nil {
		return fmt.Errorf("load cluster: %w", err)
	}
	if cfg.RecoverClusterID != 0 && c.ClusterID() != cfg.RecoverClusterID {
		return fmt.Errorf("--recover-cluster-id %d: PD's state in %s already holds cluster %d", cfg.RecoverClusterID, cfg.WorkDir, c.ClusterID())
	}
	floor := grpcsvc.MaxClusterID(c.ScanRegions(nil, nil, 0), c.GetAllStores(false))
	floor = max(floor, cfg.RecoverIDFloor)
	ids, err := id.New(s.st, floor)
	if err != nil {
		return fmt.Errorf("id allocator: %w", err)
	}
	// tso.New reads the window the previous leader persisted and persists a
	// new one above it before issuing anything.
	oracle, err := tso.New(s.st, tso.Options{})
	if err != nil {
		return fmt.Errorf("timestamp oracle: %w", err)
	}
	sched, err := schedule.New(c, schedule.Options{
		ReplaceDownAfter: cfg.ReplaceDownAfter,
		RegionMaxSize:    cfg.RegionMaxSize,
		AllocID:          func() (uint64, error) { return ids.Alloc(1) },
		Logger:           s.log,
	})
	if err != nil {
		oracle.Close()
		return fmt.Errorf("scheduler: %w", err)
	}
	l.Leader = grpcsvc.Leader{Cluster: c, Scheduler: sched, IDs: ids, Oracle: oracle}
	return nil
}
