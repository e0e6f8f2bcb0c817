package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/pdclient"
)

// buildPD compiles nokv-pd once per test binary.
var buildPD = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "nokv-pd-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nokv-pd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return bin, nil
})

type pdProc struct {
	cmd  *exec.Cmd
	addr string
	out  *strings.Builder
	done chan struct{}
}

func startPD(t *testing.T, workdir, addr string) *pdProc {
	t.Helper()
	bin, err := buildPD()
	if err != nil {
		t.Fatalf("build nokv-pd: %v", err)
	}
	p := &pdProc{addr: addr, out: &strings.Builder{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--config", examplePath, "--workdir", workdir, "--addr", addr)
	p.cmd.Stderr = &lockedWriter{w: p.out}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("nokv-pd exited:\n%s", p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nokv-pd not listening on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func dial(t *testing.T, addr string) pdpb.PDClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pdpb.NewPDClient(conn)
}

func mustOK(t *testing.T, h *pdpb.ResponseHeader, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if h.GetError() != nil {
		t.Fatalf("PD error: %v", h.GetError())
	}
}

// TestPDProcessSurvivesKill9 drives the real binary over gRPC, kills it with
// SIGKILL, restarts it and checks that routes, ids, timestamps and the GC safe
// point all survived without going backwards.
func TestPDProcessSurvivesKill9(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	p := startPD(t, dir, addr)
	pd := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Routing comes from the cluster file on first start.
	r, err := pd.GetRegionByKey(ctx, &pdpb.GetRegionByKeyRequest{Key: []byte("z")})
	mustOK(t, r.GetHeader(), err)
	if r.GetRegion().GetId() != 2 || r.GetLeader().GetStoreId() != 2 {
		t.Fatalf("region for \"z\" = %v leader %v", r.GetRegion(), r.GetLeader())
	}
	scan, err := pd.ScanRegions(ctx, &pdpb.ScanRegionsRequest{})
	mustOK(t, scan.GetHeader(), err)
	if len(scan.GetRegions()) != 2 {
		t.Fatalf("ScanRegions = %d regions", len(scan.GetRegions()))
	}
	stores, err := pd.GetAllStores(ctx, &pdpb.GetAllStoresRequest{})
	mustOK(t, stores.GetHeader(), err)
	if len(stores.GetStores()) != 3 {
		t.Fatalf("GetAllStores = %v", stores.GetStores())
	}

	// A split: ids from AskSplit, the halves reported, the parent replaced.
	parent := r.GetRegion()
	ask, err := pd.AskSplit(ctx, &pdpb.AskSplitRequest{Region: parent})
	mustOK(t, ask.GetHeader(), err)
	if ask.GetNewRegionId() <= 203 || len(ask.GetNewPeerIds()) != 3 {
		t.Fatalf("AskSplit = %v (ids must be above the cluster file's)", ask)
	}
	epoch := &metapb.RegionEpoch{ConfVer: parent.GetRegionEpoch().GetConfVer(), Version: parent.GetRegionEpoch().GetVersion() + 1}
	left := &metapb.Region{Id: parent.GetId(), StartKey: parent.GetStartKey(), EndKey: []byte("t"), RegionEpoch: epoch, Peers: parent.GetPeers()}
	var rightPeers []*metapb.Peer
	for i, peer := range parent.GetPeers() {
		rightPeers = append(rightPeers, &metapb.Peer{Id: ask.GetNewPeerIds()[i], StoreId: peer.GetStoreId()})
	}
	right := &metapb.Region{Id: ask.GetNewRegionId(), StartKey: []byte("t"), EndKey: parent.GetEndKey(), RegionEpoch: epoch, Peers: rightPeers}
	rs, err := pd.ReportSplit(ctx, &pdpb.ReportSplitRequest{Left: left, Right: right})
	mustOK(t, rs.GetHeader(), err)

	// A heartbeat carrying the pre-split epoch is stale now.
	hb, err := pd.RegionHeartbeat(ctx, &pdpb.RegionHeartbeatRequest{Region: parent, Leader: parent.GetPeers()[0]})
	if err != nil || hb.GetHeader().GetError().GetType() != pdpb.ErrorType_STALE_EPOCH {
		t.Fatalf("stale heartbeat: %v %v", hb, err)
	}
	for _, st := range []uint64{1, 2, 3} {
		sh, err := pd.StoreHeartbeat(ctx, &pdpb.StoreHeartbeatRequest{Stats: &pdpb.StoreStats{StoreId: st, Address: fmt.Sprintf("127.0.0.1:%d", 20159+st)}})
		mustOK(t, sh.GetHeader(), err)
	}

	ids, err := pd.AllocID(ctx, &pdpb.AllocIDRequest{Count: 10})
	mustOK(t, ids.GetHeader(), err)
	gc, err := pd.UpdateGCSafePoint(ctx, &pdpb.UpdateGCSafePointRequest{SafePoint: 500})
	mustOK(t, gc.GetHeader(), err)
	gc, err = pd.UpdateGCSafePoint(ctx, &pdpb.UpdateGCSafePointRequest{SafePoint: 400})
	mustOK(t, gc.GetHeader(), err)
	if gc.GetNewSafePoint() != 500 {
		t.Fatalf("GC safe point went back to %d", gc.GetNewSafePoint())
	}

	tsc, err := pdclient.NewTSOClient(pd, pdclient.TSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lastTS uint64
	for i := 0; i < 1000; i++ {
		ts, err := tsc.GetTS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ts <= lastTS {
			t.Fatalf("timestamp %d after %d", ts, lastTS)
		}
		lastTS = ts
	}
	tsc.Close()

	// kill -9, restart on the same workdir: the persisted state wins.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	startPD(t, dir, addr)
	pd = dial(t, addr)
	r2, err := pd.GetRegionByKey(ctx, &pdpb.GetRegionByKeyRequest{Key: []byte("z")})
	mustOK(t, r2.GetHeader(), err)
	if r2.GetRegion().GetId() != ask.GetNewRegionId() || string(r2.GetRegion().GetStartKey()) != "t" {
		t.Fatalf("after restart key \"z\" routes to %v, want the split's right half", r2.GetRegion())
	}
	ids2, err := pd.AllocID(ctx, &pdpb.AllocIDRequest{Count: 1})
	mustOK(t, ids2.GetHeader(), err)
	if ids2.GetFirstId() < ids.GetFirstId()+10 {
		t.Fatalf("id %d reissued after restart (had %d..%d)", ids2.GetFirstId(), ids.GetFirstId(), ids.GetFirstId()+9)
	}
	gc2, err := pd.GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{})
	mustOK(t, gc2.GetHeader(), err)
	if gc2.GetSafePoint() != 500 {
		t.Fatalf("GC safe point after restart = %d", gc2.GetSafePoint())
	}
	tsc, err = pdclient.NewTSOClient(pd, pdclient.TSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tsc.Close()
	ts, err := tsc.GetTS(ctx)
	if err != nil || ts <= lastTS {
		t.Fatalf("first timestamp after kill -9 = %d (%v), last before = %d", ts, err, lastTS)
	}
}

func TestPDProcessStopsCleanlyOnSIGTERM(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	p := startPD(t, dir, addr)
	pd := dial(t, addr)
	// An open TSO stream must not hold up shutdown.
	tsc, err := pdclient.NewTSOClient(pd, pdclient.TSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tsc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tsc.GetTS(ctx); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("nokv-pd did not stop on SIGTERM")
	}
	if p.cmd.ProcessState.ExitCode() != 0 || !strings.Contains(p.out.String(), "stopped cleanly") {
		t.Fatalf("exit code %d:\n%s", p.cmd.ProcessState.ExitCode(), p.out)
	}
	// A second PD on the same workdir is refused with a clear error.
	startPD(t, dir, addr)
	bin, _ := buildPD()
	out, err := exec.Command(bin, "--workdir", dir, "--addr", freeAddr(t)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked by another process") {
		t.Fatalf("second PD on a locked workdir: %v\n%s", err, out)
	}
}
