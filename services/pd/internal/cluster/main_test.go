package cluster

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/pd/internal/storage"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// env is a Cluster on a storage in a temp dir that a test can reopen.
type env struct {
	t     *testing.T
	dir   string
	st    *storage.Storage
	clock *fakeClock
	opts  Options
	c     *Cluster
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clock := newFakeClock()
	e := &env{t: t, dir: t.TempDir(), clock: clock,
		opts: Options{StoreDownAfter: 10 * time.Second, Now: clock.Now}}
	e.open()
	t.Cleanup(func() {
		if e.st != nil {
			if err := e.st.Close(); err != nil {
				t.Errorf("close storage: %v", err)
			}
		}
	})
	return e
}

func (e *env) open() {
	e.t.Helper()
	st, err := storage.Open(e.dir, nil)
	if err != nil {
		e.t.Fatalf("open storage: %v", err)
	}
	e.st = st
	e.c = New(st, e.opts)
}

// reopen closes the storage and opens a fresh Cluster on it, not yet loaded.
func (e *env) reopen() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatalf("close storage: %v", err)
	}
	e.st = nil
	e.open()
}

const clusterFile = `{
  "pd": {"addr": "127.0.0.1:2379", "work_dir": "./data/pd"},
  "stores": [
    {"store_id": 1, "addr": "127.0.0.1:20160", "docker_addr": "s1:20160"},
    {"store_id": 2, "addr": "127.0.0.1:20161", "docker_addr": "s2:20160"},
    {"store_id": 3, "addr": "127.0.0.1:20162", "docker_addr": "s3:20160"}
  ],
  "regions": [
    {"id": 1, "start_key": "", "end_key": "m", "epoch": {"version": 1, "conf_version": 1},
     "peers": [{"store_id": 1, "peer_id": 101}, {"store_id": 2, "peer_id": 102}, {"store_id": 3, "peer_id": 103}],
     "leader_store_id": 1},
    {"id": 2, "start_key": "m", "end_key": "", "epoch": {"version": 1, "conf_version": 1},
     "peers": [{"store_id": 1, "peer_id": 201}, {"store_id": 2, "peer_id": 202}, {"store_id": 3, "peer_id": 203}],
     "leader_store_id": 2}
  ]
}`

func mustParse(t *testing.T, s string) *config.Cluster {
	t.Helper()
	c, err := config.Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse cluster file: %v", err)
	}
	return c
}

// bootstrapped returns an env bootstrapped from clusterFile: regions 1 ["", m)
// and 2 [m, +inf), both epoch (1, 1), on stores 1, 2, 3.
func bootstrapped(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	if err := e.c.Bootstrap(mustParse(t, clusterFile)); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	return e
}

// region builds a region with voters on the given stores; peer ids are
// id*100 + store id.
func region(id uint64, start, end string, version, confVer uint64, stores ...uint64) *metapb.Region {
	r := &metapb.Region{
		Id: id, RegionEpoch: &metapb.RegionEpoch{Version: version, ConfVer: confVer},
	}
	if start != "" {
		r.StartKey = []byte(start)
	}
	if end != "" {
		r.EndKey = []byte(end)
	}
	for _, s := range stores {
		r.Peers = append(r.Peers, &metapb.Peer{Id: id*100 + s, StoreId: s})
	}
	return r
}

func heartbeat(r *metapb.Region, leaderStore uint64) *pdpb.RegionHeartbeatRequest {
	req := &pdpb.RegionHeartbeatRequest{Region: r, Term: 1}
	for _, p := range r.GetPeers() {
		if p.GetStoreId() == leaderStore {
			req.Leader = p
		}
	}
	return req
}

// layout renders the catalog as "id[start,end)v<version>c<conf_ver>" items.
func layout(c *Cluster) []string {
	var out []string
	for _, rl := range c.ScanRegions(nil, nil, 0) {
		r := rl.GetRegion()
		out = append(out, describe(r))
	}
	return out
}

func describe(r *metapb.Region) string {
	return fmt.Sprintf("%d[%s,%s)v%dc%d", r.GetId(), r.GetStartKey(), r.GetEndKey(),
		r.GetRegionEpoch().GetVersion(), r.GetRegionEpoch().GetConfVer())
}
