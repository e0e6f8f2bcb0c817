package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"google.golang.org/grpc"
)

// fakePD answers what status asks with a fixed view of a cluster; its
// leaderless flag makes region 2 lack a leader.
type fakePD struct {
	pdpb.UnimplementedPDServer
	mu         sync.Mutex
	leaderless bool
	calls      int
}

func (f *fakePD) GetAllStores(context.Context, *pdpb.GetAllStoresRequest) (*pdpb.GetAllStoresResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	hb := time.Now().Add(-2 * time.Second).UnixMilli()
	return &pdpb.GetAllStoresResponse{
		Stores: []*metapb.Store{
			{Id: 1, Address: "s1:20160", State: metapb.StoreState_UP, LastHeartbeatMs: hb},
			{Id: 2, Address: "s2:20160", State: metapb.StoreState_UP, LastHeartbeatMs: hb},
			{Id: 3, Address: "s3:20160", State: metapb.StoreState_DOWN, LastHeartbeatMs: hb - 60000},
			{Id: 4, Address: "s4:20160", State: metapb.StoreState_TOMBSTONE},
			{Id: 5, Address: "s5:20160", State: metapb.StoreState_DOWN, LastHeartbeatMs: hb - 3600000},
		},
		Stats: []*pdpb.StoreStats{
			{StoreId: 1, UsedSize: 3 << 20, RegionCount: 2, LeaderCount: 1},
			{StoreId: 2, UsedSize: 1536, Capacity: 10 << 30, Available: 5 << 30, RegionCount: 2, LeaderCount: 1},
		},
	}, nil
}

func (f *fakePD) ScanRegions(context.Context, *pdpb.ScanRegionsRequest) (*pdpb.ScanRegionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	peers := func(base uint64) []*metapb.Peer {
		return []*metapb.Peer{{Id: base + 1, StoreId: 1}, {Id: base + 2, StoreId: 2}, {Id: base + 3, StoreId: 3, Role: metapb.PeerRole_LEARNER}}
	}
	r1 := &pdpb.RegionWithLeader{
		Region:          &metapb.Region{Id: 1, EndKey: []byte("m"), RegionEpoch: &metapb.RegionEpoch{Version: 2, ConfVer: 5}, Peers: peers(100)},
		Leader:          &metapb.Peer{Id: 101, StoreId: 1},
		ApproximateSize: 2 << 20, ApproximateKeys: 42,
		DownPeers:    []*pdpb.PeerStats{{Peer: &metapb.Peer{Id: 103, StoreId: 3}, DownSeconds: 60}},
		PendingPeers: []*metapb.Peer{{Id: 102, StoreId: 2}},
	}
	r2 := &pdpb.RegionWithLeader{
		Region: &metapb.Region{Id: 7, StartKey: []byte("m"), EndKey: []byte{0xff, 0x00}, RegionEpoch: &metapb.RegionEpoch{Version: 3, ConfVer: 1}, Peers: peers(200)},
		Leader: &metapb.Peer{Id: 202, StoreId: 2},
	}
	if f.leaderless {
		r2.Leader = nil
	}
	return &pdpb.ScanRegionsResponse{Regions: []*pdpb.RegionWithLeader{r1, r2}}, nil
}

func (f *fakePD) GetGCSafePoint(context.Context, *pdpb.GetGCSafePointRequest) (*pdpb.GetGCSafePointResponse, error) {
	return &pdpb.GetGCSafePointResponse{SafePoint: uint64(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli()) << 18}, nil
}

func (f *fakePD) Tso(stream pdpb.PD_TsoServer) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		first := uint64(time.Now().UnixMilli())<<18 | 7
		if err := stream.Send(&pdpb.TsoResponse{First: first, Count: max(req.GetCount(), 1)}); err != nil {
			return err
		}
	}
}

func startFakePD(t *testing.T, f *fakePD) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pdpb.RegisterPDServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestStatusTable(t *testing.T) {
	addr := startFakePD(t, &fakePD{})
	code, stdout, stderr := runCmd("status", "--pd-addr", addr)
	if code != 0 {
		t.Fatalf("status: code %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"PD " + addr + "   TSO ",
		"GC safe point " + "", "(2026-01-02T03:04:05.000Z)",
		"STORE  STATE      ADDRESS   REGIONS  LEADERS  USED     AVAILABLE  CAPACITY  LAST HEARTBEAT",
		"1      UP         s1:20160  2        1        3.0 MiB  -          -         2",
		"2      UP         s2:20160  2        1        1.5 KiB  5.0 GiB    10.0 GiB",
		"3      DOWN       s3:20160  -        -        -        -          -         1m",
		"4      TOMBSTONE  s4:20160  -        -        -        -          -         never",
		"5      DOWN       s5:20160  -        -        -        -          -         1h0m2s ago",
		"1       -inf   m         2/5               1:101                1:101,2:102(pending),3:103(learner)(down)  2.0 MiB  42",
		"7       m      hex:ff00  3/1               2:202",
		"not ready: store 3 is DOWN",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestStatusJSON(t *testing.T) {
	addr := startFakePD(t, &fakePD{})
	code, stdout, stderr := runCmd("status", "--pd-addr", addr, "--format", "json")
	if code != 0 {
		t.Fatalf("status: code %d\n%s%s", code, stdout, stderr)
	}
	var st status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if st.PD != addr || st.TSO&(1<<18-1) != 7 || st.GCSafePointTime != "2026-01-02T03:04:05.000Z" || st.Ready ||
		len(st.Problems) != 1 || st.Problems[0] != "store 3 is DOWN" {
		t.Fatalf("status: %+v", st)
	}
	if s := st.Stores[1]; s.ID != 2 || !s.Reported || s.State != "UP" || s.Capacity != 10<<30 || s.UsedSize != 1536 || s.Leaders != 1 || s.LastHeartbeat == "" {
		t.Fatalf("store 2: %+v", s)
	}
	if s := st.Stores[2]; s.Reported || s.State != "DOWN" {
		t.Fatalf("store 3: %+v", s)
	}
	r := st.Regions[0]
	if r.ID != 1 || len(r.StartKey) != 0 || string(r.EndKey) != "m" || r.Epoch.Version != 2 || r.Epoch.ConfVersion != 5 ||
		*r.Leader != (peerJSON{StoreID: 1, PeerID: 101, Role: "voter"}) || r.ApproximateSize != 2<<20 || r.ApproximateKeys != 42 ||
		r.Peers[2].Role != "learner" || r.DownPeers[0].PeerID != 103 || r.PendingPeers[0].PeerID != 102 {
		t.Fatalf("region 1: %+v", r)
	}
	// Keys are in the cluster file's form: raw, or hex: for binary.
	if !strings.Contains(stdout, `"end_key": "hex:ff00"`) || !strings.Contains(stdout, `"start_key": ""`) {
		t.Fatalf("keys not in the cluster file's form:\n%s", stdout)
	}
}

// --wait polls until every store is up and every region led, and fails when
// that does not happen in time; --wait also waits for PD itself to come up.
func TestStatusWait(t *testing.T) {
	f := &fakePD{leaderless: true}
	addr := startFakePD(t, f)
	code, stdout, stderr := runCmd("status", "--pd-addr", addr, "--wait", "600ms")
	if code != 1 || !strings.Contains(stderr, "not ready after 600ms: store 3 is DOWN; region 7 has no leader") ||
		!strings.Contains(stdout, "7       m      hex:ff00  3/1               none") {
		t.Fatalf("status --wait on a cluster that is not ready: code %d\n%s%s", code, stdout, stderr)
	}
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	if calls < 2 {
		t.Fatalf("status --wait asked PD %d times, want it to poll", calls)
	}

	// Nothing listening: without --wait it fails at once, naming PD.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	start := time.Now()
	code, _, stderr = runCmd("status", "--pd-addr", dead)
	if code != 1 || !strings.Contains(stderr, "nokv-config status: PD at "+dead) || time.Since(start) > 3*time.Second {
		t.Fatalf("status with no PD: code %d in %v: %s", code, time.Since(start), stderr)
	}
}

// status takes PD's address from a cluster file for the scope asked.
func TestStatusAddressFromClusterFile(t *testing.T) {
	code, _, stderr := runCmd("status", "--config", examplePath, "--scope", "docker", "--timeout", "200ms")
	if code != 1 || !strings.Contains(stderr, "PD at nokv-pd:2379") {
		t.Fatalf("status --config --scope docker: code %d: %s", code, stderr)
	}
}
