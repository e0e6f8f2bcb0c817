package e2e_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nokv/nokv/tests/internal/procs"
)

// bins are nokv-pd, nokv-store, nokv-redis and nokv-config, built once per
// test binary run with the race detector.
var bins = procs.Binaries{Prefix: "nokv-e2e-bin", Race: true, Pkgs: []string{
	"../../services/pd/cmd/nokv-pd", "../../services/store/cmd/nokv-store",
	"../../services/gateway/cmd/nokv-redis", "../../services/tools/cmd/nokv-config",
}}

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) { bins.Main(m) }

// reserve holds a free port for the process named name until it starts.
func (c *procCluster) reserve(name string) string {
	c.t.Helper()
	return c.ports.Reserve(c.t, name)
}

// release frees name's port for its process.
func (c *procCluster) release(name string) { c.ports.Release(name) }

// procCluster is PD and three stores running as separate processes.
type procCluster struct {
	t      *testing.T
	dir    string
	bin    string
	file   string
	pdAddr string
	stores map[uint64]string // id → address
	procs  map[string]*procs.Proc
	// ports holds the ports of processes not running.
	ports procs.Ports
	logs  map[string]*procs.LogBuffer
	mu    sync.Mutex
	// storeArgs are extra flags for every store.
	storeArgs []string
	// pdNames are the process names of the PD members ("pd" alone without
	// a group), pdAddrs their gRPC addresses.
	pdNames, pdAddrs []string
}

// startProcCluster starts PD and three stores; storeArgs are added to
// every store's command line.
func startProcCluster(t *testing.T, storeArgs ...string) *procCluster {
	return startProcClusterPD(t, 0, storeArgs...)
}

// startProcClusterPD is startProcCluster with a PD group of pdMembers
// members (pd.members; 0 means one PD at pd.addr).
func startProcClusterPD(t *testing.T, pdMembers int, storeArgs ...string) *procCluster {
	c := &procCluster{
		t: t, dir: t.TempDir(), bin: bins.Dir(t),
		stores: map[uint64]string{}, procs: map[string]*procs.Proc{}, logs: map[string]*procs.LogBuffer{},
		storeArgs: storeArgs,
	}
	var pdConf map[string]any
	if pdMembers == 0 {
		c.pdAddr = c.reserve("pd")
		c.pdNames, c.pdAddrs = []string{"pd"}, []string{c.pdAddr}
		pdConf = procs.SinglePD(c.pdAddr, c.dir)
	} else {
		var members []map[string]any
		for i := 1; i <= pdMembers; i++ {
			name := fmt.Sprintf("pd-%d", i)
			addr, peer := c.reserve(name), c.reserve(name+"-peer")
			c.pdNames, c.pdAddrs = append(c.pdNames, name), append(c.pdAddrs, addr)
			members = append(members, map[string]any{"name": name, "addr": addr, "peer_url": "http://" + peer,
				"docker_addr": fmt.Sprintf("nokv-pd-%d:2379", i), "docker_peer_url": fmt.Sprintf("http://nokv-pd-%d:2380", i)})
		}
		pdConf = map[string]any{"work_dir": filepath.Join(c.dir, "pd"), "docker_work_dir": "/var/lib/nokv/pd", "members": members}
		c.pdAddr = strings.Join(c.pdAddrs, ",")
	}
	var stores []map[string]any
	for id := uint64(1); id <= 3; id++ {
		addr := c.reserve(fmt.Sprintf("store-%d", id))
		c.stores[id] = addr
		stores = append(stores, procs.Store(id, addr, addr))
	}
	c.file = procs.WriteClusterFile(t, c.dir, pdConf, stores, procs.TwoRegions("m"))
	for _, name := range c.pdNames {
		c.startPD(name)
	}
	for id := uint64(1); id <= 3; id++ {
		c.startStore(id)
	}
	t.Cleanup(c.stopAll)
	return c
}

// startPD starts the PD process name (a member of the group, or "pd").
func (c *procCluster) startPD(name string) {
	args := []string{"--config", c.file, "--store-down-after", "3s"}
	if name != "pd" {
		if c.ports.Reserved(name + "-peer") {
			c.release(name + "-peer")
		}
		args = append(args, "--name", name, "--election-timeout", "500ms", "--leader-lease", "2s")
	}
	c.start(name, filepath.Join(c.bin, "nokv-pd"), args...)
}

func (c *procCluster) startStore(id uint64) {
	args := []string{"--config", c.file, "--store-id", fmt.Sprint(id), "--workdir", filepath.Join(c.dir, fmt.Sprintf("store-%d", id)),
		"--raft-tick-interval", "50ms", "--heartbeat-interval", "500ms"}
	c.start(fmt.Sprintf("store-%d", id), filepath.Join(c.bin, "nokv-store"), append(args, c.storeArgs...)...)
}

func (c *procCluster) start(name, bin string, args ...string) {
	c.t.Helper()
	c.release(name)
	p, err := procs.Start(name, exec.Command(bin, args...), &procs.LogBuffer{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs[name], c.logs[name] = p, p.Log
	c.mu.Unlock()
}

// take removes a running process from the cluster's table (nil if it is
// not running), for the caller to stop or kill.
func (c *procCluster) take(name string) *procs.Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[name]
	delete(c.procs, name)
	return p
}

// kill9 kills a process without warning and waits for it to be gone; a
// store's port is held again until it restarts, if nobody took it.
func (c *procCluster) kill9(name string) {
	p := c.take(name)
	if p == nil {
		return
	}
	p.Kill()
	if strings.HasPrefix(name, "store-") {
		c.ports.Hold(name)
	}
}

// stop sends SIGTERM and checks the process exits cleanly.
func (c *procCluster) stop(name string) {
	p := c.take(name)
	if p == nil {
		return
	}
	if !p.Stop() {
		c.t.Errorf("%s did not stop within %v of SIGTERM\n%s", name, procs.StopGrace, p.Log)
	} else if err := p.Err(); err != nil {
		c.t.Errorf("%s exited with %v after SIGTERM\n%s", name, err, p.Log)
	}
}

func (c *procCluster) stopAll() {
	c.stop("gateway")
	defer c.ports.ReleaseAll()
	for id := uint64(1); id <= 3; id++ {
		c.stop(fmt.Sprintf("store-%d", id))
	}
	for _, name := range c.pdNames {
		c.stop(name)
	}
	if c.t.Failed() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for name, log := range c.logs {
			c.t.Logf("--- %s log (tail)\n%s", name, procs.Tail(log.String(), 4000))
		}
	}
}
