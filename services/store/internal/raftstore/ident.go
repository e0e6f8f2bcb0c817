package raftstore

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/services/store/internal/keys"
)

// ClusterIDKey is the gRPC metadata key of the cluster id: a store names
// its cluster on the raft and snapshot streams it opens, and announces it
// in every response it sends.
const ClusterIDKey = "nokv-cluster-id"

// ErrForeignCluster: raft traffic from a store of another cluster.
var ErrForeignCluster = errors.New("raftstore: raft traffic from another cluster")

// defaultClaimTimeout is Config.ClaimTimeout when left zero.
const defaultClaimTimeout = 2 * time.Minute

// ReadIdent returns the identity recorded in db, or nil on an empty data
// directory (or one whose claim did not finish).
func ReadIdent(db *pebble.DB) (*raftserverpb.StoreIdent, error) {
	ident := &raftserverpb.StoreIdent{}
	ok, err := getProto(db, keys.StoreIdentKey, ident)
	if err != nil || !ok {
		return nil, err
	}
	return ident, nil
}

// claimIdentity establishes which store this data directory is. A data
// directory with an identity is that store (cfg.StoreID must agree). An
// empty one claims its id from PD first, and nothing else is written
// until PD agreed: a store id that a data directory claimed before is
// refused, because a store that lost its data and came back under its old
// id would vote with an empty log and no vote record and could undo
// committed writes. The claim is idempotent: a random nonce is synced
// (StoreIdentPendingKey) before PD sees it, so a crash between the claim
// and the write of the identity claims again with the same nonce. fresh
// reports an empty directory: loadOrBootstrap writes s.ident with the
// bootstrap regions.
func (s *Store) claimIdentity() (fresh bool, err error) {
	ident, err := ReadIdent(s.db)
	if err != nil {
		return false, err
	}
	if ident != nil {
		if s.cfg.StoreID != 0 && ident.GetStoreId() != s.cfg.StoreID {
			return false, fmt.Errorf("raftstore: the data directory belongs to store %d, not %d", ident.GetStoreId(), s.cfg.StoreID)
		}
		s.cfg.StoreID = ident.GetStoreId()
		if ident.GetNonce() != 0 && ident.GetClusterId() != 0 {
			s.ident = ident
			return false, nil
		}
		// Data written before stores claimed their ids: claim now, with
		// the data in place.
		nonce, err := newNonce()
		if err != nil {
			return false, err
		}
		id, clusterID, err := s.claim(ident.GetStoreId(), nonce)
		if err != nil {
			return false, err
		}
		s.ident = &raftserverpb.StoreIdent{StoreId: id, ClusterId: clusterID, Nonce: nonce}
		b := s.db.NewBatch()
		defer b.Close()
		if err := putProto(b, keys.StoreIdentKey, s.ident); err != nil {
			return false, err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return false, fmt.Errorf("raftstore: record store identity: %w", err)
		}
		return false, nil
	}

	// Region state without an identity is not an empty directory: do not
	// claim a store id for it.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: keys.RegionMetaMin, UpperBound: keys.RegionMetaMax})
	if err != nil {
		return false, fmt.Errorf("raftstore: scan region states: %w", err)
	}
	hasRegions := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, fmt.Errorf("raftstore: scan region states: %w", err)
	}
	if hasRegions {
		return false, fmt.Errorf("%w: region state without a store identity", errCorruptState)
	}

	pending := &raftserverpb.StoreIdent{}
	ok, err := getProto(s.db, keys.StoreIdentPendingKey, pending)
	if err != nil {
		return false, err
	}
	want := s.cfg.StoreID
	if s.cfg.Join {
		want = 0
	}
	if !ok || pending.GetStoreId() != want {
		nonce, err := newNonce()
		if err != nil {
			return false, err
		}
		pending = &raftserverpb.StoreIdent{StoreId: want, Nonce: nonce}
		b := s.db.NewBatch()
		defer b.Close()
		if err := putProto(b, keys.StoreIdentPendingKey, pending); err != nil {
			return false, err
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return false, fmt.Errorf("raftstore: record pending store claim: %w", err)
		}
	}
	id, clusterID, err := s.claim(want, pending.GetNonce())
	if err != nil {
		return false, err
	}
	s.cfg.StoreID = id
	s.ident = &raftserverpb.StoreIdent{StoreId: id, ClusterId: clusterID, Nonce: pending.GetNonce()}
	s.log.Info("claimed store id from PD", "store", id, "cluster_id", clusterID, "join", s.cfg.Join)
	return true, nil
}

// claim asks PD for the store id until it answers or ClaimTimeout passes.
func (s *Store) claim(storeID, nonce uint64) (id, clusterID uint64, err error) {
	timeout := s.cfg.ClaimTimeout
	if timeout <= 0 {
		timeout = defaultClaimTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		id, clusterID, err = s.pd.ClaimStore(ctx, storeID, s.addr, nonce)
		if err == nil {
			return id, clusterID, nil
		}
		var perr *pdclient.PDError
		if errors.As(err, &perr) {
			s.log.Error("PD refused this store: it does not start", "store", storeID, "err", err)
			return 0, 0, fmt.Errorf("raftstore: PD refused the claim of store id %d: %w", storeID, err)
		}
		if ctx.Err() != nil {
			return 0, 0, fmt.Errorf("raftstore: claim store id %d: PD did not answer within %v: %w", storeID, timeout, err)
		}
		s.log.Warn("waiting for PD to answer the store's claim", "store", storeID, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func newNonce() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("raftstore: draw claim nonce: %w", err)
		}
		if n := binary.BigEndian.Uint64(b[:]); n != 0 {
			return n, nil
		}
	}
}

// clusterIDStream names this store's cluster on the raft and snapshot
// streams it opens to other stores.
func (s *Store) clusterIDStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, ClusterIDKey, strconv.FormatUint(s.ClusterID(), 10))
	return streamer(ctx, desc, cc, method, opts...)
}

// CheckPeerCluster refuses a stream from a store of another cluster (one
// that names a cluster id other than this store's). It logs the refusal
// at most once a minute per sender.
func (s *Store) CheckPeerCluster(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(ClusterIDKey)
	if len(vals) == 0 {
		return nil // a store from before cluster ids
	}
	if theirs, err := strconv.ParseUint(vals[0], 10, 64); err == nil && theirs == s.ClusterID() {
		return nil
	}
	if s.peerLog.allow(vals[0]) {
		s.log.Error("refusing raft traffic from another cluster", "their_cluster_id", vals[0], "cluster_id", s.ClusterID())
	}
	return status.Error(codes.FailedPrecondition, fmt.Sprintf("%v: sender is in cluster %s, this store in cluster %d", ErrForeignCluster, vals[0], s.ClusterID()))
}

// rateLog allows one log line per key and minute.
type rateLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *rateLog) allow(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if t, ok := r.last[key]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	r.last[key] = now
	return true
}
