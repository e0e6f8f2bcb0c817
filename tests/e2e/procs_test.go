package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// binaries builds nokv-pd and nokv-store once per test binary run.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "nokv-e2e-bin")
		if buildErr != nil {
			return
		}
		for name, pkg := range map[string]string{
			"nokv-pd": "../../services/pd/cmd/nokv-pd", "nokv-store": "../../services/store/cmd/nokv-store",
			"nokv-redis": "../../services/gateway/cmd/nokv-redis", "nokv-config": "../../services/tools/cmd/nokv-config",
		} {
			out, err := exec.Command("go", "build", "-race", "-o", filepath.Join(binDir, name), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// reserve holds a free port for the process named name until it starts.
func (c *procCluster) reserve(name string) string {
	c.t.Helper()
	p, err := cluster.ReservePort()
	if err != nil {
		c.t.Fatal(err)
	}
	c.reserved[name] = p
	return p.Addr
}

// release frees name's port for its process; rereserve holds it again
// after the process died, if nobody took it.
func (c *procCluster) release(name string) {
	c.reserved[name].Release()
	delete(c.reserved, name)
}

func (c *procCluster) rereserve(name, addr string) {
	if p, err := cluster.HoldPort(addr); err == nil {
		c.reserved[name] = p
	}
}

// procCluster is PD and three stores running as separate processes.
type procCluster struct {
	t      *testing.T
	dir    string
	bin    string
	file   string
	pdAddr string
	stores map[uint64]string // id → address
	procs  map[string]*exec.Cmd
	// reserved holds the ports of processes not running (test goroutine only).
	reserved map[string]*cluster.Port
	logs     map[string]*bytes.Buffer
	mu       sync.Mutex
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
		t: t, dir: t.TempDir(), bin: binaries(t),
		stores: map[uint64]string{}, procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{},
		reserved: map[string]*cluster.Port{}, storeArgs: storeArgs,
	}
	pdConf := map[string]any{"work_dir": filepath.Join(c.dir, "pd"), "docker_work_dir": "/var/lib/nokv/pd"}
	if pdMembers == 0 {
		c.pdAddr = c.reserve("pd")
		c.pdNames, c.pdAddrs = []string{"pd"}, []string{c.pdAddr}
		pdConf["addr"], pdConf["docker_addr"] = c.pdAddr, "nokv-pd:2379"
	} else {
		var members []map[string]any
		for i := 1; i <= pdMembers; i++ {
			name := fmt.Sprintf("pd-%d", i)
			addr, peer := c.reserve(name), c.reserve(name+"-peer")
			c.pdNames, c.pdAddrs = append(c.pdNames, name), append(c.pdAddrs, addr)
			members = append(members, map[string]any{"name": name, "addr": addr, "peer_url": "http://" + peer,
				"docker_addr": fmt.Sprintf("nokv-pd-%d:2379", i), "docker_peer_url": fmt.Sprintf("http://nokv-pd-%d:2380", i)})
		}
		pdConf["members"] = members
		c.pdAddr = strings.Join(c.pdAddrs, ",")
	}
	type peer struct {
		StoreID uint64 `json:"store_id"`
		PeerID  uint64 `json:"peer_id"`
	}
	var stores []map[string]any
	for id := uint64(1); id <= 3; id++ {
		addr := c.reserve(fmt.Sprintf("store-%d", id))
		c.stores[id] = addr
		stores = append(stores, map[string]any{"store_id": id, "listen_addr": addr, "addr": addr, "docker_listen_addr": "0.0.0.0:20160", "docker_addr": fmt.Sprintf("nokv-store-%d:20160", id)})
	}
	region := func(id uint64, start, end string, leader uint64) map[string]any {
		var peers []peer
		for s := uint64(1); s <= 3; s++ {
			peers = append(peers, peer{StoreID: s, PeerID: id*100 + s})
		}
		return map[string]any{"id": id, "start_key": start, "end_key": end, "epoch": map[string]any{"version": 1, "conf_version": 1}, "peers": peers, "leader_store_id": leader}
	}
	file := map[string]any{
		"max_retries": 8,
		"pd":          pdConf,
		"stores":      stores,
		"regions":     []any{region(1, "", "m", 1), region(2, "m", "", 2)},
	}
	data, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	c.file = filepath.Join(c.dir, "cluster.json")
	if err := os.WriteFile(c.file, data, 0o644); err != nil {
		t.Fatal(err)
	}
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
		if _, ok := c.reserved[name+"-peer"]; ok {
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
	if _, ok := c.reserved[name]; ok {
		c.release(name)
	}
	cmd := exec.Command(bin, args...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	c.mu.Lock()
	c.procs[name], c.logs[name] = cmd, log
	c.mu.Unlock()
}

// kill9 kills a process without warning and waits for it to be gone.
func (c *procCluster) kill9(name string) {
	c.mu.Lock()
	cmd := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if strings.HasPrefix(name, "store-") {
		var id uint64
		fmt.Sscanf(name, "store-%d", &id)
		c.rereserve(name, c.stores[id])
	}
}

// stop sends SIGTERM and checks the process exits cleanly.
func (c *procCluster) stop(name string) {
	c.mu.Lock()
	cmd := c.procs[name]
	delete(c.procs, name)
	log := c.logs[name]
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("%s exited with %v after SIGTERM\n%s", name, err, log)
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		c.t.Errorf("%s did not stop within 15s of SIGTERM\n%s", name, log)
	}
}

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func (c *procCluster) stopAll() {
	c.stop("gateway")
	defer func() {
		for name := range c.reserved {
			c.release(name)
		}
	}()
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
			c.t.Logf("--- %s log (tail)\n%s", name, tail(log.String(), 4000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
