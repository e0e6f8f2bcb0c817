package linear

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/tests/cluster"
	"github.com/nokv/nokv/tests/internal/procs"
)

// The real-process harness: nokv-pd, three nokv-store and two nokv-redis
// (raft backend) as separate processes, built once per test binary run with
// the race detector. Every store is reached through a TCP proxy the test
// runs (the cluster file advertises the proxy's address, so PD, the
// gateways and the other stores all dial it), which lets the test cut a
// store off from its peers while clients still reach it.

// bins are the servers and the test's own store with a clock knob, built
// once per test binary run.
var bins = procs.Binaries{Prefix: "nokv-linear-bin", Race: true, Pkgs: []string{
	"../../services/pd/cmd/nokv-pd", "../../services/store/cmd/nokv-store",
	"../../services/gateway/cmd/nokv-redis", "./skewstore",
}}

// quietRedis drops go-redis's own log lines (failed dials while a gateway
// is down are expected here).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	bins.Main(m)
}

// proc is one running server process.
type proc struct {
	*procs.Proc
	stopped bool // SIGSTOPped (test goroutine only)
}

// procOptions tunes the cluster a test starts.
type procOptions struct {
	// gcLifeTime and gcInterval are passed to every store (0: 300ms, and
	// NOKV_LINEAR_GC_LIFE_TIME or 10m; a short one makes stalled commands
	// meet GC, see TestRetriedCommitPastSafePointIsNotAFailure).
	gcLifeTime, gcInterval time.Duration
	// storeEnv, if set, gives a store's extra environment; storeBin a
	// store's binary name in the build directory ("nokv-store").
	storeEnv func(id uint64) []string
	storeBin string
	// pdMembers > 1 starts a PD group of that many members (pd.members),
	// each behind two proxies: one for its gRPC address (stores, gateways),
	// one for its etcd peer URL (the other members), so the test can cut a
	// member off from either.
	pdMembers int
}

// procCluster is PD, three stores behind proxies and two gateways, each a
// separate process.
type procCluster struct {
	t        *testing.T
	opts     procOptions
	dir, bin string
	file     string
	pdAddr   string
	listen   map[uint64]string // store id → the address the store binds
	proxies  map[uint64]*proxy // store id → its proxy (the advertised address)
	gwAddrs  []string
	conns    []*grpc.ClientConn
	direct   map[uint64]storepb.StoreClient // bypassing the proxies

	mu      sync.Mutex
	procs   map[string]*proc
	logs    map[string]*procs.LogBuffer
	ports   procs.Ports       // ports of processes not running (test goroutine only)
	metrics map[uint64]string // store id → its metrics address

	// pdNames are the PD processes ("pd", or the members "pd-1"...); with
	// a group pdListen is each member's gRPC bind address (the test dials it
	// directly), pdProxies the proxy in front of it (the address in the
	// cluster file) and peerProxies the proxy in front of its etcd peer
	// port (its advertised peer URL).
	pdNames     []string
	pdListen    map[string]string
	peerListen  map[string]string
	pdProxies   map[string]*proxy
	peerProxies map[string]*proxy
}

// gatewayName is the process name of gateway i (0-based).
func gatewayName(i int) string { return fmt.Sprintf("gateway-%d", i+1) }

// storeName is the process name of a store.
func storeName(id uint64) string { return fmt.Sprintf("store-%d", id) }

// startProcCluster starts PD, three stores holding regions split at the
// stored key of db 0's "m" (the gateway's keys carry a 4-byte db prefix),
// and two gateways, and waits until both gateways serve.
func startProcCluster(t *testing.T, opts procOptions) *procCluster {
	if opts.gcLifeTime == 0 {
		opts.gcLifeTime = 10 * time.Minute
		if v := os.Getenv("NOKV_LINEAR_GC_LIFE_TIME"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("NOKV_LINEAR_GC_LIFE_TIME: %v", err)
			}
			opts.gcLifeTime = d
		}
	}
	if opts.gcInterval == 0 {
		opts.gcInterval = 300 * time.Millisecond
	}
	if opts.storeBin == "" {
		opts.storeBin = "nokv-store"
	}
	c := &procCluster{
		t: t, opts: opts, dir: t.TempDir(), bin: bins.Dir(t),
		listen: map[uint64]string{}, proxies: map[uint64]*proxy{}, direct: map[uint64]storepb.StoreClient{},
		procs: map[string]*proc{}, logs: map[string]*procs.LogBuffer{}, metrics: map[uint64]string{},
		pdListen: map[string]string{}, peerListen: map[string]string{}, pdProxies: map[string]*proxy{}, peerProxies: map[string]*proxy{},
	}
	t.Cleanup(c.stopAll)
	pdConf := map[string]any{"work_dir": filepath.Join(c.dir, "pd"), "docker_work_dir": "/var/lib/nokv/pd"}
	if opts.pdMembers <= 1 {
		c.pdAddr = c.reserve("pd")
		c.pdNames = []string{"pd"}
		c.pdListen["pd"] = c.pdAddr // no proxy: waitPDLeader asks it directly
		pdConf["addr"], pdConf["docker_addr"] = c.pdAddr, "nokv-pd:2379"
	} else {
		var members []map[string]any
		var addrs []string
		for i := 1; i <= opts.pdMembers; i++ {
			// Before any proxy runs: their sourceOf reads the names.
			c.pdNames = append(c.pdNames, fmt.Sprintf("pd-%d", i))
		}
		for i, name := range c.pdNames {
			c.pdListen[name], c.peerListen[name] = c.reserve(name), c.reserve(name)
			gp, err := startProxy(c.pdListen[name], c.sourceOf)
			if err != nil {
				t.Fatal(err)
			}
			pp, err := startProxy(c.peerListen[name], c.sourceOf)
			if err != nil {
				t.Fatal(err)
			}
			c.pdProxies[name], c.peerProxies[name] = gp, pp
			addrs = append(addrs, gp.addr())
			members = append(members, map[string]any{"name": name, "addr": gp.addr(), "peer_url": "http://" + pp.addr(),
				"docker_addr": fmt.Sprintf("nokv-pd-%d:2379", i+1), "docker_peer_url": fmt.Sprintf("http://nokv-pd-%d:2380", i+1)})
		}
		pdConf["members"] = members
		c.pdAddr = strings.Join(addrs, ",")
	}
	var stores []map[string]any
	for id := uint64(1); id <= 3; id++ {
		c.listen[id] = c.reserve(storeName(id))
		c.metrics[id] = c.reserve(storeName(id))
		p, err := startProxy(c.listen[id], c.sourceOf)
		if err != nil {
			t.Fatal(err)
		}
		c.proxies[id] = p
		cc, err := grpc.NewClient(c.listen[id], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		c.conns = append(c.conns, cc)
		c.direct[id] = storepb.NewStoreClient(cc)
		stores = append(stores, procs.Store(id, c.listen[id], p.addr()))
	}
	c.file = procs.WriteClusterFile(t, c.dir, pdConf, stores, procs.TwoRegions("hex:000000006d"))
	for i := range 2 {
		c.gwAddrs = append(c.gwAddrs, c.reserve(gatewayName(i)))
	}
	c.startPD()
	for id := uint64(1); id <= 3; id++ {
		c.startStore(id)
	}
	// A gateway gives up at start when PD does not answer within 30 s; a
	// loaded machine has taken longer than that for PD (a new group: its
	// members up and a leader elected) and the gateway's start together.
	c.waitPDLeader("")
	for i := range c.gwAddrs {
		c.startGateway(i)
	}
	for i := range c.gwAddrs {
		c.waitGateway(i)
	}
	return c
}

// startPD starts PD: every member of a group.
func (c *procCluster) startPD() {
	for _, name := range c.pdNames {
		c.startPDMember(name)
	}
}

// startPDMember starts one PD process: "pd", or a member of the group
// binding its own ports behind its proxies.
func (c *procCluster) startPDMember(name string, extra ...string) {
	args := []string{"--config", c.file, "--store-down-after", "3s"}
	if name != "pd" {
		args = append(args, "--name", name, "--addr", c.pdListen[name], "--advertise-addr", c.pdProxies[name].addr(),
			"--listen-peer-url", "http://"+c.peerListen[name], "--election-timeout", "500ms", "--leader-lease", "2s")
	}
	c.start(name, nil, filepath.Join(c.bin, "nokv-pd"), append(args, extra...)...)
}

func (c *procCluster) startStore(id uint64) {
	var env []string
	if c.opts.storeEnv != nil {
		env = c.opts.storeEnv(id)
	}
	c.start(storeName(id), env, filepath.Join(c.bin, c.opts.storeBin),
		"--config", c.file, "--store-id", fmt.Sprint(id), "--workdir", filepath.Join(c.dir, storeName(id)),
		"--metrics-addr", c.metrics[id], "--raft-tick-interval", "50ms", "--heartbeat-interval", "500ms",
		"--gc-life-time", c.opts.gcLifeTime.String(), "--gc-interval", c.opts.gcInterval.String())
}

func (c *procCluster) startGateway(i int) {
	c.start(gatewayName(i), nil, filepath.Join(c.bin, "nokv-redis"), "--backend", "raft", "--config", c.file,
		"--addr", c.gwAddrs[i], "--workdir", filepath.Join(c.dir, gatewayName(i)))
}

// waitGateway waits until gateway i answers a read through the cluster.
func (c *procCluster) waitGateway(i int) {
	c.t.Helper()
	rc := newRedis(c.gwAddrs[i])
	defer rc.Close()
	cluster.Eventually(c.t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return rc.Exists(ctx, "probe").Err()
	})
}

// reserve holds a free port for the process named name until it starts.
func (c *procCluster) reserve(name string) string {
	c.t.Helper()
	return c.ports.Reserve(c.t, name)
}

func (c *procCluster) start(name string, env []string, bin string, args ...string) {
	c.t.Helper()
	c.ports.Release(name)
	cmd := exec.Command(bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	c.mu.Lock()
	log := c.logs[name]
	if log == nil {
		log = &procs.LogBuffer{}
		c.logs[name] = log
	}
	c.mu.Unlock()
	fmt.Fprintf(log, "=== start %s at %s\n", name, time.Now().Format("15:04:05.000"))
	p, err := procs.Start(name, cmd, log)
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.procs[name] = &proc{Proc: p}
	c.mu.Unlock()
}

// running reports whether the process is up (it may be stopped by SIGSTOP).
func (c *procCluster) running(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[name] != nil
}

// pid is the process id of a running process, or 0.
func (c *procCluster) pid(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil {
		return p.Pid()
	}
	return 0
}

// take removes a running process from the cluster's table (nil if it is
// not running), for the caller to stop or kill.
func (c *procCluster) take(name string) *proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[name]
	delete(c.procs, name)
	return p
}

// kill9 kills a process without warning, waits for it to be gone and holds
// its port until it is started again.
func (c *procCluster) kill9(name string) {
	p := c.take(name)
	if p == nil {
		return
	}
	p.Kill()
	c.ports.Hold(name)
	c.mu.Lock()
	fmt.Fprintf(c.logs[name], "=== killed %s at %s\n", name, time.Now().Format("15:04:05.000"))
	c.mu.Unlock()
}

// pause and resume send SIGSTOP and SIGCONT.
func (c *procCluster) pause(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil {
		p.Signal(syscall.SIGSTOP)
		p.stopped = true
	}
}

func (c *procCluster) resume(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil {
		p.Signal(syscall.SIGCONT)
		p.stopped = false
	}
}

// stop sends SIGTERM and waits for the exit, killing after 15s.
func (c *procCluster) stop(name string) {
	p := c.take(name)
	if p == nil {
		return
	}
	if p.stopped {
		p.Signal(syscall.SIGCONT)
	}
	if !p.Stop() {
		c.t.Errorf("%s did not stop within %v of SIGTERM", name, procs.StopGrace)
	}
	c.ports.Hold(name)
}

func (c *procCluster) stopAll() {
	for i := range c.gwAddrs {
		c.stop(gatewayName(i))
	}
	for id := uint64(1); id <= 3; id++ {
		c.stop(storeName(id))
	}
	for _, name := range c.pdNames {
		c.stop(name)
	}
	for _, p := range c.proxies {
		p.close()
	}
	for _, name := range c.pdNames {
		if p := c.pdProxies[name]; p != nil {
			p.close()
			c.peerProxies[name].close()
		}
	}
	for _, cc := range c.conns {
		cc.Close()
	}
	c.ports.ReleaseAll()
	if c.t.Failed() || os.Getenv("NOKV_LINEAR_LOGS") != "" {
		c.dumpLogs()
	}
}

// dumpLogs writes every process's output to the test's log directory
// (NOKV_LINEAR_ARTIFACTS, else a temporary directory kept after the test)
// and names the files.
func (c *procCluster) dumpLogs() {
	dir := artifactDir(c.t)
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for name := range c.logs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name+".log")
		if err := os.WriteFile(path, []byte(c.logs[name].String()), 0o644); err != nil {
			c.t.Logf("write %s: %v", path, err)
			continue
		}
		c.t.Logf("%s log: %s", name, path)
	}
}

// artifactDir is where a test leaves what a person needs after a failure:
// process logs, porcupine's visualization. It outlives the test.
func artifactDir(t *testing.T) string {
	base := os.Getenv("NOKV_LINEAR_ARTIFACTS")
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "nokv-linear-"+strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-")
	if err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	return dir
}

// sourceOf names the process that owns the local end of a loopback
// connection whose port is port: "store-N", "gateway-N", "pd-N", or "" for
// anyone else.
func (c *procCluster) sourceOf(port int) string {
	pids := map[int]string{}
	for _, name := range c.pdNames {
		if pid := c.pid(name); pid != 0 {
			pids[pid] = name
		}
	}
	for id := uint64(1); id <= 3; id++ {
		if pid := c.pid(storeName(id)); pid != 0 {
			pids[pid] = storeName(id)
		}
	}
	for i := range c.gwAddrs {
		if pid := c.pid(gatewayName(i)); pid != 0 {
			pids[pid] = gatewayName(i)
		}
	}
	return ownerOfPort(port, pids)
}

// regionInfo asks a store directly (not through its proxy) about its peer
// of a region.
func (c *procCluster) regionInfo(store, region uint64) (*raftserverpb.RegionInfoResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.direct[store].RegionInfo(ctx, &raftserverpb.RegionInfoRequest{RegionId: region})
}

// leader returns the store that leads the region by its own account, or 0.
// A SIGSTOPped store is not asked, nor the store skip.
func (c *procCluster) leader(region uint64) uint64 { return c.leaderBesides(region, 0) }

func (c *procCluster) leaderBesides(region, skip uint64) uint64 {
	for id := uint64(1); id <= 3; id++ {
		if id == skip {
			continue
		}
		c.mu.Lock()
		p := c.procs[storeName(id)]
		c.mu.Unlock()
		if p == nil || p.stopped {
			continue
		}
		info, err := c.regionInfo(id, region)
		if err != nil || info.GetRegionError() != nil {
			continue
		}
		if l := info.GetLeader(); l.GetStoreId() == id {
			return id
		}
	}
	return 0
}

// waitLeader waits until the region has a leader and returns its store.
func (c *procCluster) waitLeader(region uint64) uint64 {
	c.t.Helper()
	var id uint64
	cluster.Eventually(c.t, 30*time.Second, func() error {
		if id = c.leader(region); id == 0 {
			return fmt.Errorf("region %d has no leader", region)
		}
		return nil
	})
	return id
}

// waitNewLeader waits until a store other than old leads the region: the
// fault that took old away worked.
func (c *procCluster) waitNewLeader(region, old uint64) {
	c.t.Helper()
	cluster.Eventually(c.t, 20*time.Second, func() error {
		if c.leaderBesides(region, old) == 0 {
			return fmt.Errorf("no store but %d leads region %d", old, region)
		}
		return nil
	})
}

// moveLeader makes store to the region's leader (peer ids are
// region*100+store, as in the cluster file).
func (c *procCluster) moveLeader(region, to uint64) {
	c.t.Helper()
	cluster.Eventually(c.t, 30*time.Second, func() error {
		l := c.leader(region)
		if l == to {
			return nil
		}
		if l != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_, _ = c.direct[l].TransferLeader(ctx, &raftserverpb.TransferLeaderRequest{
				RegionId: region, Peer: &metapb.Peer{Id: region*100 + to, StoreId: to}})
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Errorf("region %d is led by store %d, not %d", region, l, to)
	})
}

// follower returns a store other than the region's leader.
func (c *procCluster) follower(region uint64) uint64 {
	l := c.waitLeader(region)
	return l%3 + 1
}

// isolate cuts store id off from the other stores, both ways: its proxy
// holds every connection from them, theirs every connection from it. PD,
// the gateways and the test still reach it.
func (c *procCluster) isolate(id uint64) {
	for other, p := range c.proxies {
		if other == id {
			for o := uint64(1); o <= 3; o++ {
				if o != id {
					p.cut(storeName(o))
				}
			}
		} else {
			p.cut(storeName(id))
		}
	}
}

// heal lifts every cut.
func (c *procCluster) heal() {
	for _, p := range c.proxies {
		p.heal()
	}
}
