package pdserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/pkg/pdclient"
)

func TestServerMetricsAndRestart(t *testing.T) {
	file, err := config.Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr, cfg.MetricsAddr, cfg.WorkDir = "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	srv, err := New(cfg, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	pd := pdpb.NewPDClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Database 0's key "a" (4-byte db prefix, then the key) sorts below the
	// example file's split at db 0's "m", so it lies in region 1.
	if r, err := pd.GetRegionByKey(ctx, &pdpb.GetRegionByKeyRequest{Key: []byte("\x00\x00\x00\x00a")}); err != nil || r.GetRegion().GetId() != 1 {
		t.Fatalf("GetRegionByKey: %v %v", r, err)
	}
	if r, _ := pd.GetRegionByID(ctx, &pdpb.GetRegionByIDRequest{RegionId: 999}); r.GetHeader().GetError().GetType() != pdpb.ErrorType_REGION_NOT_FOUND {
		t.Fatalf("unknown region: %v", r)
	}
	tsc, err := pdclient.NewTSOClient(pd, pdclient.TSOOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := tsc.GetTS(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tsc.Close()

	body := get(t, "http://"+srv.MetricsAddr()+"/debug/vars")
	var vars struct {
		Stats struct {
			PD struct {
				RPCTotal      int64          `json:"rpc_total"`
				TSOTimestamps int64          `json:"tso_timestamps"`
				Regions       int            `json:"regions"`
				Stores        map[string]int `json:"stores"`
			} `json:"pd"`
		} `json:"NoKV.Stats"`
	}
	if err := json.Unmarshal([]byte(body), &vars); err != nil {
		t.Fatal(err)
	}
	st := vars.Stats.PD
	if st.RPCTotal < 2 || st.TSOTimestamps != 10 || st.Regions != 2 || st.Stores["up"] != 3 {
		t.Fatalf("NoKV.Stats.pd = %+v", st)
	}
	prom := get(t, "http://"+srv.MetricsAddr()+"/metrics")
	for _, want := range []string{`nokv_pd_rpc_total{code="OK",method="GetRegionByKey"} 1`, `nokv_pd_tso_batch_size_count`, `nokv_pd_regions 2`, `nokv_pd_stores{state="up"} 3`} {
		if !strings.Contains(prom, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	conn.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart without the cluster file: the persisted state serves.
	srv, err = New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if n := srv.leader.Load().Cluster.RegionCount(); n != 2 {
		t.Fatalf("regions after restart = %d", n)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestCorruptStateStopsStartUp damages the etcd WAL and expects
// start-up to fail with an error naming the workdir, rather than to start empty.
func TestCorruptStateStopsStartUp(t *testing.T) {
	file, err := config.Load(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Addr, cfg.WorkDir = "127.0.0.1:0", tempDirOutlivingEtcd(t)
	srv, err := New(cfg, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	wals, _ := filepath.Glob(filepath.Join(cfg.WorkDir, "etcd", "member", "wal", "*.wal"))
	if len(wals) == 0 {
		t.Fatal("no etcd WAL in PD's workdir")
	}
	if err := os.WriteFile(wals[0], []byte("this is not a WAL"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, file, nil)
	if err == nil || !strings.Contains(err.Error(), cfg.WorkDir) {
		t.Fatalf("start-up on a corrupt WAL: %v", err)
	}
	t.Logf("start-up on a corrupt WAL: %v", err)
}

// tempDirOutlivingEtcd is t.TempDir for a start-up that etcd aborts with a
// panic (recovered into an error): the half-started member cannot be
// stopped, and its WAL goroutine may still create a preallocated file in
// the directory while the test's cleanup removes it (t.TempDir then fails
// the test with "directory not empty"). The process that hits this exits
// on the error; the test retries the removal instead.
func tempDirOutlivingEtcd(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nokv-pd-corrupt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("remove %s: %v", dir, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}
