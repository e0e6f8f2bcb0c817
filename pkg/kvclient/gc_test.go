package kvclient

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/storepb"
)

// lockStore is a fake store for ResolveLocksForGC: it leads every region
// of regions, keeps locks and the fates of transactions (as their primary
// keys would record them), and serves ScanLock, CheckTxnStatus and
// ResolveLock over them.
type lockStore struct {
	storepb.UnimplementedStoreServer
	mu      sync.Mutex
	regions []*metapb.Region
	locks   map[string]*kvrpcpb.LockInfo // by key
	fates   map[uint64]uint64            // start_ts → commit_ts (0: rolled back)
	// busy is how many requests still answer ServerIsBusy.
	busy     int
	scans    []*kvrpcpb.ScanLockRequest
	checks   []*kvrpcpb.CheckTxnStatusRequest
	resolved map[string]uint64 // key → commit_ts it was resolved with
}

func (s *lockStore) region(rc *kvrpcpb.Context) (*metapb.Region, *kvrpcpb.RegionError) {
	if s.busy > 0 {
		s.busy--
		return nil, &kvrpcpb.RegionError{ServerIsBusy: &kvrpcpb.ServerIsBusy{}}
	}
	for _, r := range s.regions {
		if r.GetId() == rc.GetRegionId() {
			return r, nil
		}
	}
	return nil, &kvrpcpb.RegionError{RegionNotFound: &kvrpcpb.RegionNotFound{RegionId: rc.GetRegionId()}}
}

func (s *lockStore) KvScanLock(_ context.Context, req *kvrpcpb.ScanLockRequest) (*kvrpcpb.ScanLockResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scans = append(s.scans, req)
	r, re := s.region(req.GetContext())
	if re != nil {
		return &kvrpcpb.ScanLockResponse{RegionError: re}, nil
	}
	var keys []string
	for k, l := range s.locks {
		if findRegion([]*metapb.Region{r}, []byte(k)) != nil && k >= string(req.GetStartKey()) && l.GetLockVersion() <= req.GetMaxVersion() {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	resp := &kvrpcpb.ScanLockResponse{}
	for _, k := range keys {
		if len(resp.Locks) >= int(req.GetLimit()) {
			break
		}
		resp.Locks = append(resp.Locks, s.locks[k])
	}
	return resp, nil
}

func (s *lockStore) KvCheckTxnStatus(_ context.Context, req *kvrpcpb.CheckTxnStatusRequest) (*kvrpcpb.CheckTxnStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, req)
	if _, re := s.region(req.GetContext()); re != nil {
		return &kvrpcpb.CheckTxnStatusResponse{RegionError: re}, nil
	}
	if l, ok := s.locks[string(req.GetPrimaryKey())]; ok && l.GetLockVersion() == req.GetLockTs() {
		if req.GetCurrentTs() != math.MaxUint64 {
			return &kvrpcpb.CheckTxnStatusResponse{LockTtl: l.GetLockTtl()}, nil
		}
		delete(s.locks, string(req.GetPrimaryKey()))
		s.fates[req.GetLockTs()] = 0
		return &kvrpcpb.CheckTxnStatusResponse{Action: kvrpcpb.Action_TTL_EXPIRE_ROLLBACK}, nil
	}
	if commitTS, ok := s.fates[req.GetLockTs()]; ok {
		return &kvrpcpb.CheckTxnStatusResponse{CommitVersion: commitTS}, nil
	}
	if req.GetRollbackIfNotExist() {
		s.fates[req.GetLockTs()] = 0
		return &kvrpcpb.CheckTxnStatusResponse{Action: kvrpcpb.Action_LOCK_NOT_EXIST_ROLLBACK}, nil
	}
	return &kvrpcpb.CheckTxnStatusResponse{Error: &kvrpcpb.KeyError{TxnNotFound: &kvrpcpb.TxnNotFound{StartTs: req.GetLockTs()}}}, nil
}

func (s *lockStore) KvResolveLock(_ context.Context, req *kvrpcpb.ResolveLockRequest) (*kvrpcpb.ResolveLockResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, re := s.region(req.GetContext()); re != nil {
		return &kvrpcpb.ResolveLockResponse{RegionError: re}, nil
	}
	for _, k := range req.GetKeys() {
		if l, ok := s.locks[string(k)]; ok && l.GetLockVersion() == req.GetStartVersion() {
			delete(s.locks, string(k))
			s.resolved[string(k)] = req.GetCommitVersion()
		}
	}
	return &kvrpcpb.ResolveLockResponse{}, nil
}

func (s *lockStore) lock(key, primary string, startTS uint64, ttl uint64) {
	s.locks[key] = &kvrpcpb.LockInfo{Key: []byte(key), PrimaryLock: []byte(primary), LockVersion: startTS, LockTtl: ttl}
}

func TestResolveLocksForGC(t *testing.T) {
	regions := []*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}
	st := &lockStore{regions: regions, locks: map[string]*kvrpcpb.LockInfo{}, fates: map[uint64]uint64{}, resolved: map[string]uint64{}, busy: 2}
	// Transaction 10 committed at 15 at its primary "a"; its secondaries
	// span more than two pages of region 2.
	st.fates[10] = 15
	var committed []string
	for i := range 2*gcScanLockLimit + 7 {
		k := fmt.Sprintf("n%04d", i)
		st.lock(k, "a", 10, 1000)
		committed = append(committed, k)
	}
	// Transaction 20 is alive at its primary "b" (a TTL of hours) but older
	// than the safe point: GC rolls it back.
	st.lock("b", "b", 20, 3_600_000)
	st.lock("c", "b", 20, 3_600_000)
	st.lock("x", "b", 20, 3_600_000)
	// Transaction 25 left a secondary whose primary never arrived.
	st.lock("d", "e", 25, 3_600_000)
	// Transaction 40 started above the safe point: left alone.
	st.lock("y", "y", 40, 3_600_000)

	w := newWorld(t, 0)
	w.stores[1] = serveFake(t, func(s *grpc.Server) { storepb.RegisterStoreServer(s, st) })
	w.setRegions(regions, map[uint64]uint64{1: 1, 2: 1})
	c := w.client(Options{})

	n, err := c.ResolveLocksForGC(testCtx(t), 30)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(committed) + 4; n != want {
		t.Fatalf("resolved %d locks, want %d", n, want)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.locks) != 1 || st.locks["y"] == nil {
		t.Fatalf("locks left: %v; want only y's, above the safe point", st.locks)
	}
	for _, k := range committed {
		if ts, ok := st.resolved[k]; !ok || ts != 15 {
			t.Fatalf("%s resolved with %d (%v), want committed at 15", k, ts, ok)
		}
	}
	for _, k := range []string{"b", "c", "x", "d"} {
		if ts := st.resolved[k]; ts != 0 {
			t.Fatalf("%s resolved with commit %d, want rolled back", k, ts)
		}
	}
	if _, ok := st.resolved["b"]; ok {
		t.Fatal("the primary's lock was resolved again after CheckTxnStatus rolled it back")
	}
	for _, req := range st.checks {
		if req.GetCurrentTs() != math.MaxUint64 || !req.GetRollbackIfNotExist() {
			t.Fatalf("CheckTxnStatus %v: GC must force the rollback of transactions that did not commit", req)
		}
	}
	// Every scan asked for locks at or below the safe point, a page at a
	// time, and the pages of region 2 resumed after the last lock seen.
	var starts []string
	for _, req := range st.scans {
		if req.GetMaxVersion() != 30 || req.GetLimit() != gcScanLockLimit {
			t.Fatalf("scan %v", req)
		}
		starts = append(starts, string(req.GetStartKey()))
	}
	// The two regions are scanned at once: region 2's pages in order, and
	// the two busy answers went to whichever scans came first.
	var region2 []string
	for _, k := range starts {
		if k >= "m" {
			region2 = append(region2, k)
		}
	}
	region2 = slices.Compact(region2)
	if want := []string{"m", "n0127\x00", "n0255\x00"}; fmt.Sprintf("%q", region2) != fmt.Sprintf("%q", want) {
		t.Fatalf("region 2's scans started at %q, want %q", region2, want)
	}
	sorted := slices.Compact(slices.Sorted(slices.Values(starts)))
	if want := []string{"", "m", "n0127\x00", "n0255\x00"}; len(starts) != 6 || fmt.Sprintf("%q", sorted) != fmt.Sprintf("%q", want) {
		t.Fatalf("scans started at %q, want %q and two busy answers retried", starts, want)
	}
}

func TestResolveLocksForGCFailsWhileARegionIsUnavailable(t *testing.T) {
	regions := []*metapb.Region{region(1, "", "m", 1), region(2, "m", "", 1)}
	st := &lockStore{regions: regions, locks: map[string]*kvrpcpb.LockInfo{}, fates: map[uint64]uint64{}, resolved: map[string]uint64{}, busy: 1 << 30}
	w := newWorld(t, 0)
	w.stores[1] = serveFake(t, func(s *grpc.Server) { storepb.RegisterStoreServer(s, st) })
	w.setRegions(regions, map[uint64]uint64{1: 1, 2: 1})
	c := w.client(Options{MaxRetries: 2})
	if _, err := c.ResolveLocksForGC(testCtx(t), 30); err == nil || !bytes.Contains([]byte(err.Error()), []byte("busy")) {
		t.Fatalf("ResolveLocksForGC = %v, want the region's failure", err)
	}
}
