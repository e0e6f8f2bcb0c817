package cluster

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
)

func TestRegionHeartbeat(t *testing.T) {
	type step struct {
		req     *pdpb.RegionHeartbeatRequest
		wantErr error
	}
	// The bootstrapped catalog: 1["",m)v1c1 and 2[m,)v1c1.
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "same epoch, new leader",
			steps: []step{{req: heartbeat(region(1, "", "m", 1, 1, 1, 2, 3), 3)}},
			want:  []string{"1[,m)v1c1", "2[m,)v1c1"},
		},
		{
			name:  "newer conf_ver replaces the peers",
			steps: []step{{req: heartbeat(region(1, "", "m", 1, 2, 1, 2), 1)}},
			want:  []string{"1[,m)v1c2", "2[m,)v1c1"},
		},
		{
			name: "older version is stale",
			steps: []step{
				{req: heartbeat(region(1, "", "g", 2, 1, 1, 2, 3), 1)},
				{req: heartbeat(region(1, "", "m", 1, 1, 1, 2, 3), 1), wantErr: ErrStaleEpoch},
			},
			want: []string{"1[,g)v2c1", "2[m,)v1c1"},
		},
		{
			name: "older conf_ver is stale",
			steps: []step{
				{req: heartbeat(region(2, "m", "", 1, 3, 1, 2, 3), 1)},
				{req: heartbeat(region(2, "m", "", 1, 2, 1, 2, 3), 1), wantErr: ErrStaleEpoch},
				// A newer version does not make up for an older conf_ver.
				{req: heartbeat(region(2, "m", "", 5, 2, 1, 2, 3), 1), wantErr: ErrStaleEpoch},
			},
			want: []string{"1[,m)v1c1", "2[m,)v1c3"},
		},
		{
			name: "older raft term with the same epoch is stale",
			steps: []step{
				{req: &pdpb.RegionHeartbeatRequest{Region: region(1, "", "m", 1, 1, 1, 2, 3), Term: 5}},
				{req: &pdpb.RegionHeartbeatRequest{Region: region(1, "", "m", 1, 1, 1, 2, 3), Term: 4}, wantErr: ErrStaleEpoch},
				{req: &pdpb.RegionHeartbeatRequest{Region: region(1, "", "m", 1, 2, 1, 2, 3), Term: 4}},
			},
			want: []string{"1[,m)v1c2", "2[m,)v1c1"},
		},
		{
			name: "split: left half first, then right half",
			steps: []step{
				{req: heartbeat(region(1, "", "g", 2, 1, 1, 2, 3), 1)},
				{req: heartbeat(region(3, "g", "m", 2, 1, 1, 2, 3), 1)},
			},
			want: []string{"1[,g)v2c1", "3[g,m)v2c1", "2[m,)v1c1"},
		},
		{
			name: "split: right half first evicts the parent, then left half",
			steps: []step{
				{req: heartbeat(region(3, "g", "m", 2, 1, 1, 2, 3), 1)},
				{req: heartbeat(region(1, "", "g", 2, 1, 1, 2, 3), 1)},
			},
			want: []string{"1[,g)v2c1", "3[g,m)v2c1", "2[m,)v1c1"},
		},
		{
			name: "stale parent after the right half evicted it",
			steps: []step{
				{req: heartbeat(region(3, "g", "m", 2, 1, 1, 2, 3), 1)},
				{req: heartbeat(region(1, "", "m", 1, 1, 1, 2, 3), 1), wantErr: ErrStaleEpoch},
			},
			want: []string{"3[g,m)v2c1", "2[m,)v1c1"},
		},
		{
			name: "merge: a wider region with a higher version evicts both",
			steps: []step{
				{req: heartbeat(region(2, "", "", 3, 1, 1, 2, 3), 1)},
			},
			want: []string{"2[,)v3c1"},
		},
		{
			name: "unknown region overlapping an equal version is accepted",
			steps: []step{
				{req: heartbeat(region(9, "k", "p", 1, 1, 1, 2, 3), 1)},
			},
			want: []string{"9[k,p)v1c1"},
		},
		{
			name: "unknown region in a gap is inserted",
			steps: []step{
				{req: heartbeat(region(1, "", "g", 2, 1, 1, 2, 3), 1)},
				{req: heartbeat(region(7, "h", "i", 2, 1, 1, 2), 2)},
			},
			want: []string{"1[,g)v2c1", "7[h,i)v2c1", "2[m,)v1c1"},
		},
		{
			name: "invalid requests",
			steps: []step{
				{req: &pdpb.RegionHeartbeatRequest{}, wantErr: ErrInvalidArgument},
				{req: heartbeat(&metapb.Region{Id: 1, Peers: []*metapb.Peer{{Id: 1, StoreId: 1}}}, 1), wantErr: ErrInvalidArgument},
				{req: heartbeat(region(1, "m", "a", 2, 1, 1), 1), wantErr: ErrInvalidArgument},
				{req: heartbeat(region(1, "", "m", 2, 1), 1), wantErr: ErrInvalidArgument},
				{req: &pdpb.RegionHeartbeatRequest{Region: region(1, "", "m", 2, 1, 1), Leader: &metapb.Peer{Id: 999, StoreId: 1}}, wantErr: ErrInvalidArgument},
			},
			want: []string{"1[,m)v1c1", "2[m,)v1c1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := bootstrapped(t)
			for i, s := range tt.steps {
				err := e.c.HandleRegionHeartbeat(s.req)
				if !errors.Is(err, s.wantErr) || (err != nil) != (s.wantErr != nil) {
					t.Fatalf("step %d: HandleRegionHeartbeat(%s) = %v, want %v", i, describe(s.req.GetRegion()), err, s.wantErr)
				}
			}
			if got := layout(e.c); !slices.Equal(got, tt.want) {
				t.Fatalf("catalog = %v, want %v", got, tt.want)
			}
			// The persisted catalog is the same.
			e.reopen()
			if err := e.c.Load(); err != nil {
				t.Fatalf("load: %v", err)
			}
			if got := layout(e.c); !slices.Equal(got, tt.want) {
				t.Fatalf("persisted catalog = %v, want %v", got, tt.want)
			}
			if got := e.c.RegionCount(); got != len(tt.want) {
				t.Fatalf("RegionCount = %d, want %d", got, len(tt.want))
			}
		})
	}
}

func TestStaleEpochErrorDetails(t *testing.T) {
	e := bootstrapped(t)
	if err := e.c.HandleRegionHeartbeat(heartbeat(region(3, "g", "m", 2, 1, 1, 2, 3), 1)); err != nil {
		t.Fatal(err)
	}
	err := e.c.HandleRegionHeartbeat(heartbeat(region(1, "", "m", 1, 1, 1, 2, 3), 1))
	var se *StaleEpochError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *StaleEpochError", err)
	}
	if se.RegionID != 1 || se.Newer.GetId() != 3 || se.Newer.GetRegionEpoch().GetVersion() != 2 {
		t.Fatalf("StaleEpochError = %+v, want region 1 made stale by region 3 v2", se)
	}
}

func TestRegionLeaderAndStatsStayInMemory(t *testing.T) {
	e := bootstrapped(t)
	if _, l := e.c.GetRegionByID(1); l.GetStoreId() != 1 {
		t.Fatalf("bootstrap leader of region 1 on store %d, want 1", l.GetStoreId())
	}
	req := heartbeat(region(1, "", "m", 1, 1, 1, 2, 3), 3)
	req.ApproximateSize = 1 << 20
	req.PendingPeers = []*metapb.Peer{req.Region.Peers[1]}
	if err := e.c.HandleRegionHeartbeat(req); err != nil {
		t.Fatal(err)
	}
	r, l := e.c.GetRegionByKey([]byte("a"))
	if r.GetId() != 1 || l.GetId() != 103 {
		t.Fatalf("GetRegionByKey(a) = region %d leader %v, want region 1 leader 103", r.GetId(), l)
	}
	// Mutating the request or the returned copies leaves the catalog alone.
	req.Region.Peers[0].StoreId = 42
	r.Peers[1].StoreId = 43
	l.StoreId = 44
	if r, l := e.c.GetRegionByID(1); r.GetPeers()[0].GetStoreId() != 1 || r.GetPeers()[1].GetStoreId() != 2 || l.GetStoreId() != 3 {
		t.Fatalf("catalog changed through a copy: %v leader %v", r, l)
	}

	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if r, l := e.c.GetRegionByID(1); r == nil || l != nil {
		t.Fatalf("after reload: region %v leader %v, want the region without a leader", r, l)
	}
}

func TestRegionLookups(t *testing.T) {
	e := bootstrapped(t)
	for _, r := range []*metapb.Region{
		region(1, "", "c", 3, 1, 1, 2, 3),
		region(3, "c", "f", 3, 1, 1, 2, 3),
		region(4, "f", "m", 3, 1, 1, 2, 3),
		region(2, "m", "x", 2, 1, 1, 2, 3),
	} {
		if err := e.c.HandleRegionHeartbeat(heartbeat(r, 2)); err != nil {
			t.Fatalf("heartbeat %s: %v", describe(r), err)
		}
	}
	// [x, +inf) is a gap now.
	byKey := []struct {
		key  string
		want uint64
	}{{"", 1}, {"a", 1}, {"c", 3}, {"ez", 3}, {"f", 4}, {"m", 2}, {"w", 2}, {"x", 0}, {"zzz", 0}}
	for _, tt := range byKey {
		r, l := e.c.GetRegionByKey([]byte(tt.key))
		if r.GetId() != tt.want {
			t.Errorf("GetRegionByKey(%q) = region %d, want %d", tt.key, r.GetId(), tt.want)
		}
		if r != nil && l.GetStoreId() != 2 {
			t.Errorf("GetRegionByKey(%q) leader = %v, want the peer on store 2", tt.key, l)
		}
	}
	if r, _ := e.c.GetRegionByID(99); r != nil {
		t.Errorf("GetRegionByID(99) = %v, want nil", r)
	}

	scans := []struct {
		start, end string
		limit      int
		want       []uint64
	}{
		{"", "", 0, []uint64{1, 3, 4, 2}},
		{"", "", 2, []uint64{1, 3}},
		{"d", "", 0, []uint64{3, 4, 2}},
		{"d", "g", 0, []uint64{3, 4}},
		{"c", "f", 0, []uint64{3}},
		{"c", "f\x00", 0, []uint64{3, 4}},
		{"y", "", 0, nil},
		{"a", "b", -1, []uint64{1}},
	}
	for _, tt := range scans {
		var got []uint64
		for _, rl := range e.c.ScanRegions(bytesOrNil(tt.start), bytesOrNil(tt.end), tt.limit) {
			got = append(got, rl.GetRegion().GetId())
			if rl.GetLeader().GetStoreId() != 2 {
				t.Errorf("ScanRegions leader of %d = %v", rl.GetRegion().GetId(), rl.GetLeader())
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("ScanRegions(%q, %q, %d) = %v, want %v", tt.start, tt.end, tt.limit, got, tt.want)
		}
	}
}

func bytesOrNil(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s)
}

func TestReportSplit(t *testing.T) {
	tests := []struct {
		name        string
		before      []*metapb.Region // heartbeats before the report
		left, right *metapb.Region
		wantErr     error
		want        []string
	}{
		{
			name: "parent replaced by both halves",
			left: region(1, "", "g", 2, 1, 1, 2, 3), right: region(3, "g", "m", 2, 1, 1, 2, 3),
			want: []string{"1[,g)v2c1", "3[g,m)v2c1", "2[m,)v1c1"},
		},
		{
			name: "new region on the left",
			left: region(3, "m", "t", 2, 1, 1, 2, 3), right: region(2, "t", "", 2, 1, 1, 2, 3),
			want: []string{"1[,m)v1c1", "3[m,t)v2c1", "2[t,)v2c1"},
		},
		{
			name:   "report after a heartbeat of one half",
			before: []*metapb.Region{region(3, "g", "m", 2, 1, 1, 2, 3)},
			left:   region(1, "", "g", 2, 1, 1, 2, 3), right: region(3, "g", "m", 2, 1, 1, 2, 3),
			want: []string{"1[,g)v2c1", "3[g,m)v2c1", "2[m,)v1c1"},
		},
		{
			name:   "half older than the known parent",
			before: []*metapb.Region{region(1, "", "m", 3, 1, 1, 2, 3)},
			left:   region(1, "", "g", 2, 1, 1, 2, 3), right: region(3, "g", "m", 2, 1, 1, 2, 3),
			wantErr: ErrStaleEpoch,
			want:    []string{"1[,m)v3c1", "2[m,)v1c1"},
		},
		{
			name:   "half with an older conf_ver than the same region",
			before: []*metapb.Region{region(1, "", "m", 1, 4, 1, 2, 3)},
			left:   region(1, "", "g", 2, 3, 1, 2, 3), right: region(3, "g", "m", 2, 3, 1, 2, 3),
			wantErr: ErrStaleEpoch,
			want:    []string{"1[,m)v1c4", "2[m,)v1c1"},
		},
		{
			name: "halves that do not meet",
			left: region(1, "", "g", 2, 1, 1, 2, 3), right: region(3, "h", "m", 2, 1, 1, 2, 3),
			wantErr: ErrInvalidArgument,
			want:    []string{"1[,m)v1c1", "2[m,)v1c1"},
		},
		{
			name: "same id twice",
			left: region(1, "", "g", 2, 1, 1, 2, 3), right: region(1, "g", "m", 2, 1, 1, 2, 3),
			wantErr: ErrInvalidArgument,
			want:    []string{"1[,m)v1c1", "2[m,)v1c1"},
		},
		{
			name:    "missing half",
			left:    region(1, "", "g", 2, 1, 1, 2, 3),
			wantErr: ErrInvalidArgument,
			want:    []string{"1[,m)v1c1", "2[m,)v1c1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := bootstrapped(t)
			for _, r := range tt.before {
				if err := e.c.HandleRegionHeartbeat(heartbeat(r, 1)); err != nil {
					t.Fatalf("heartbeat %s: %v", describe(r), err)
				}
			}
			err := e.c.ReportSplit(tt.left, tt.right)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("ReportSplit = %v, want %v", err, tt.wantErr)
			}
			if got := layout(e.c); !slices.Equal(got, tt.want) {
				t.Fatalf("catalog = %v, want %v", got, tt.want)
			}
			e.reopen()
			if err := e.c.Load(); err != nil {
				t.Fatalf("load: %v", err)
			}
			if got := layout(e.c); !slices.Equal(got, tt.want) {
				t.Fatalf("persisted catalog = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReportSplitLeaders(t *testing.T) {
	e := bootstrapped(t) // region 1's leader is peer 101 on store 1
	if err := e.c.ReportSplit(region(1, "", "g", 2, 1, 1, 2, 3), region(3, "g", "m", 2, 1, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	if _, l := e.c.GetRegionByID(1); l.GetId() != 101 {
		t.Errorf("leader of region 1 = %v, want peer 101 kept", l)
	}
	if _, l := e.c.GetRegionByID(3); l.GetId() != 301 {
		t.Errorf("leader of region 3 = %v, want peer 301 on the parent leader's store", l)
	}
}

func TestRemoveRegion(t *testing.T) {
	e := bootstrapped(t)
	if err := e.c.RemoveRegion(1); err != nil {
		t.Fatal(err)
	}
	if err := e.c.RemoveRegion(1); !errors.Is(err, ErrRegionNotFound) {
		t.Fatalf("second RemoveRegion(1) = %v, want ErrRegionNotFound", err)
	}
	if r, _ := e.c.GetRegionByKey([]byte("a")); r != nil {
		t.Fatalf("GetRegionByKey(a) = %v after removal", r)
	}
	e.reopen()
	if err := e.c.Load(); err != nil {
		t.Fatal(err)
	}
	if got, want := layout(e.c), []string{"2[m,)v1c1"}; !slices.Equal(got, want) {
		t.Fatalf("persisted catalog = %v, want %v", got, want)
	}
}

func TestConcurrentHeartbeatsAndReads(t *testing.T) {
	e := bootstrapped(t)
	done := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				e.c.GetRegionByKey([]byte("k"))
				e.c.ScanRegions(nil, nil, 0)
				e.c.GetAllStores(false)
				e.c.StoreCounts()
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 50 {
				var err error
				if w%2 == 0 {
					err = e.c.HandleRegionHeartbeat(&pdpb.RegionHeartbeatRequest{
						Region: region(1, "", "m", uint64(1+i), 1, 1, 2, 3), Term: 1})
				} else {
					err = e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: uint64(w), LeaderCount: uint32(i)}, 0, e.clock.Now())
				}
				if err != nil && !errors.Is(err, ErrStaleEpoch) {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	writers.Wait()
	close(done)
	readers.Wait()
	if r, _ := e.c.GetRegionByID(1); r.GetRegionEpoch().GetVersion() != 50 {
		t.Fatalf("region 1 version = %d, want 50", r.GetRegionEpoch().GetVersion())
	}
}

// ScanRegions carries each region's last heartbeat statistics and
// GetAllStoreStats each store's, for operators' tools (nokv-config status).
func TestScanRegionsAndStoreStatsCarryHeartbeatStats(t *testing.T) {
	e := bootstrapped(t)
	req := heartbeat(region(1, "", "m", 1, 1, 1, 2, 3), 1)
	req.ApproximateSize = 3 << 20
	req.ApproximateKeys = 1234
	req.PendingPeers = []*metapb.Peer{req.Region.Peers[2]}
	req.DownPeers = []*pdpb.PeerStats{{Peer: req.Region.Peers[1], DownSeconds: 42}}
	if err := e.c.HandleRegionHeartbeat(req); err != nil {
		t.Fatal(err)
	}
	got := e.c.ScanRegions(nil, nil, 0)
	if len(got) != 2 {
		t.Fatalf("ScanRegions = %d regions, want 2", len(got))
	}
	r := got[0]
	if r.GetRegion().GetId() != 1 || r.GetApproximateSize() != 3<<20 || r.GetApproximateKeys() != 1234 ||
		len(r.GetPendingPeers()) != 1 || r.GetPendingPeers()[0].GetStoreId() != 3 ||
		len(r.GetDownPeers()) != 1 || r.GetDownPeers()[0].GetPeer().GetStoreId() != 2 || r.GetDownPeers()[0].GetDownSeconds() != 42 {
		t.Fatalf("ScanRegions[0] = %v, want region 1 with the heartbeat's statistics", r)
	}
	if r := got[1]; r.GetApproximateSize() != 0 || r.GetDownPeers() != nil || r.GetPendingPeers() != nil {
		t.Fatalf("ScanRegions[1] = %v, want no statistics before a heartbeat", r)
	}
	// The copies are the caller's.
	r.PendingPeers[0].StoreId = 99
	if again := e.c.ScanRegions(nil, nil, 1); again[0].GetPendingPeers()[0].GetStoreId() != 3 {
		t.Fatal("catalog changed through a copy of its pending peers")
	}

	if s := e.c.GetAllStoreStats(); len(s) != 0 {
		t.Fatalf("GetAllStoreStats before any store heartbeat = %v, want none", s)
	}
	for _, id := range []uint64{3, 1} {
		if err := e.c.HandleStoreHeartbeat(&pdpb.StoreStats{StoreId: id, UsedSize: id * 100, RegionCount: 2, LeaderCount: uint32(id)}, 0, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	s := e.c.GetAllStoreStats()
	if len(s) != 2 || s[0].GetStoreId() != 1 || s[1].GetStoreId() != 3 || s[1].GetUsedSize() != 300 || s[1].GetLeaderCount() != 3 {
		t.Fatalf("GetAllStoreStats = %v, want stores 1 and 3 in order with their heartbeats", s)
	}
}
