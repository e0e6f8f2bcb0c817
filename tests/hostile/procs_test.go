package hostile_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// The binaries are built once per test binary run, without -race: the suite
// bounds the servers' memory, and the race detector multiplies it.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "nokv-hostile-bin")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
			"../../services/gateway/cmd/nokv-redis", "../../services/pd/cmd/nokv-pd",
			"../../services/store/cmd/nokv-store").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// logBuffer collects a process's output; the process writes it while tests read it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// addressSpaceLimit caps every server's virtual memory (ulimit -v), so a
// request that makes a server allocate gigabytes kills that server (which the
// suite reports) instead of the machine that runs the suite.
const addressSpaceLimit = 8 << 30

// proc is one server process.
type proc struct {
	name   string
	bin    string
	args   []string
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
	err    error // the exit status, once exited is closed
	// baseKiB is the resident set at the last check, which the next
	// request's peak is measured from; startKiB the one after start-up.
	baseKiB, startKiB int64
}

func startProc(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, bin: bin, args: args}
	p.start(t)
	return p
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	quoted := []string{"exec", strconv.Quote(p.bin)}
	for _, a := range p.args {
		quoted = append(quoted, strconv.Quote(a))
	}
	script := fmt.Sprintf("ulimit -v %d && %s", addressSpaceLimit>>10, strings.Join(quoted, " "))
	p.cmd = exec.Command("/bin/sh", "-c", script)
	p.log = &logBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.exited = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
}

// alive reports whether the process is still running.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits for the exit, killing the process after 15s.
func (p *proc) stop(t *testing.T) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("%s did not stop within 15s of SIGTERM", p.name)
	}
}

// cpuTime reads the CPU time (user plus system) the process has used so far,
// from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s, the
// value on every Linux Go supports here).
func (p *proc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start past its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", p.cmd.Process.Pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", p.cmd.Process.Pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", p.cmd.Process.Pid, f[11], f[12])
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// memKiB reads the process's resident set and its peak (VmRSS, VmHWM).
func (p *proc) memKiB() (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	}
	return rss, hwm, sc.Err()
}

// rebase takes the current resident set as the base of the memory bound and
// resets the peak to it (clear_refs 5), so that what happened before (a
// restart replaying its log, say) is not charged to the next request.
func (p *proc) rebase() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
	if rss, _, err := p.memKiB(); err == nil {
		p.baseKiB = rss
	}
}

// settle waits (up to 20s) until the process's peak resident set has stopped
// growing for a second: after a restart the embedded store replays its log
// and compacts what it replayed, which must not be charged to a request.
func (p *proc) settle() {
	_, last, _ := p.memKiB()
	for range 20 {
		time.Sleep(time.Second)
		_, hwm, err := p.memKiB()
		if err != nil || hwm == last {
			return
		}
		last = hwm
	}
}

// tail returns the last n bytes of the process's output.
func (p *proc) tail(n int) string {
	s := p.log.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// clusterFile writes a cluster file for PD and three stores with two
// regions split at "m", as tests/e2e does, and returns its path, PD's address
// and the stores' addresses.
func clusterFile(t *testing.T, dir string) (file, pdAddr string, stores map[uint64]string, ports map[string]*cluster.Port) {
	t.Helper()
	ports = map[string]*cluster.Port{}
	reserve := func(name string) string {
		p, err := cluster.ReservePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[name] = p
		return p.Addr
	}
	pdAddr = reserve("pd")
	stores = map[uint64]string{}
	var storeList []map[string]any
	for id := uint64(1); id <= 3; id++ {
		addr := reserve(fmt.Sprintf("store-%d", id))
		stores[id] = addr
		storeList = append(storeList, map[string]any{"store_id": id, "listen_addr": addr, "addr": addr,
			"docker_listen_addr": "0.0.0.0:20160", "docker_addr": fmt.Sprintf("nokv-store-%d:20160", id)})
	}
	type peer struct {
		StoreID uint64 `json:"store_id"`
		PeerID  uint64 `json:"peer_id"`
	}
	region := func(id uint64, start, end string, leader uint64) map[string]any {
		var peers []peer
		for s := uint64(1); s <= 3; s++ {
			peers = append(peers, peer{StoreID: s, PeerID: id*100 + s})
		}
		return map[string]any{"id": id, "start_key": start, "end_key": end,
			"epoch": map[string]any{"version": 1, "conf_version": 1}, "peers": peers, "leader_store_id": leader}
	}
	data, err := json.MarshalIndent(map[string]any{
		"max_retries": 8,
		"pd": map[string]any{"addr": pdAddr, "docker_addr": "nokv-pd:2379",
			"work_dir": filepath.Join(dir, "pd"), "docker_work_dir": "/var/lib/nokv/pd"},
		"stores":  storeList,
		"regions": []any{region(1, "", "hex:000000006d", 1), region(2, "hex:000000006d", "", 2)},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return file, pdAddr, stores, ports
}
