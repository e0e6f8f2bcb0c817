package hostile_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/internal/procs"
)

// bins are the servers, built once per test binary run, without -race: the
// suite bounds the servers' memory, and the race detector multiplies it.
var bins = procs.Binaries{Prefix: "nokv-hostile-bin", Pkgs: []string{
	"../../services/gateway/cmd/nokv-redis", "../../services/pd/cmd/nokv-pd",
	"../../services/store/cmd/nokv-store",
}}

// binaries builds the servers if no test has yet and returns their directory.
func binaries(t *testing.T) string { return bins.Dir(t) }

// TestMain removes the binaries built for the run.
func TestMain(m *testing.M) { bins.Main(m) }

// addressSpaceLimit caps every server's virtual memory (ulimit -v), so a
// request that makes a server allocate gigabytes kills that server (which the
// suite reports) instead of the machine that runs the suite.
const addressSpaceLimit = 8 << 30

// proc is one server process, which the suite restarts with the same
// command line when a request killed it.
type proc struct {
	*procs.Proc
	name string
	bin  string
	args []string
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
	var err error
	if p.Proc, err = procs.Start(p.name, exec.Command("/bin/sh", "-c", script), &procs.LogBuffer{}); err != nil {
		t.Fatal(err)
	}
}

// alive reports whether the process is still running.
func (p *proc) alive() bool { return p.Alive() }

// err is the exit status, once the process has exited.
func (p *proc) err() error { return p.Err() }

// stop sends SIGTERM and waits for the exit, killing the process after 15s.
func (p *proc) stop(t *testing.T) {
	if !p.alive() {
		return
	}
	if !p.Stop() {
		t.Errorf("%s did not stop within %v of SIGTERM", p.name, procs.StopGrace)
	}
}

// cpuTime reads the CPU time (user plus system) the process has used so far,
// from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s, the
// value on every Linux Go supports here).
func (p *proc) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; the fields after it
	// start past its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", p.Pid())
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", p.Pid(), len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", p.Pid(), f[11], f[12])
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// memKiB reads the process's resident set and its peak (VmRSS, VmHWM).
func (p *proc) memKiB() (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
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
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", p.Pid())
	}
	return rss, hwm, sc.Err()
}

// rebase takes the current resident set as the base of the memory bound and
// resets the peak to it (clear_refs 5), so that what happened before (a
// restart replaying its log, say) is not charged to the next request.
func (p *proc) rebase() {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.Pid()), []byte("5"), 0)
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
func (p *proc) tail(n int) string { return procs.Tail(p.Log.String(), n) }

// clusterFile writes a cluster file for PD and three stores with two
// regions split at db 0's "m", and returns its path, PD's address, the
// stores' addresses and their reserved ports (released as each starts).
func clusterFile(t *testing.T, dir string) (file, pdAddr string, stores map[uint64]string, ports *procs.Ports) {
	t.Helper()
	ports = &procs.Ports{}
	pdAddr = ports.Reserve(t, "pd")
	stores = map[uint64]string{}
	var storeList []map[string]any
	for id := uint64(1); id <= 3; id++ {
		addr := ports.Reserve(t, fmt.Sprintf("store-%d", id))
		stores[id] = addr
		storeList = append(storeList, procs.Store(id, addr, addr))
	}
	file = procs.WriteClusterFile(t, dir, procs.SinglePD(pdAddr, dir), storeList, procs.TwoRegions("hex:000000006d"))
	return file, pdAddr, stores, ports
}
