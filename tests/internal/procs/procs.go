// Package procs is what the real-process tests (tests/e2e, tests/hostile,
// tests/linear) share: building the servers once per test binary run,
// starting them as child processes whose output is kept, stopping and
// killing them, holding their ports while they are down, and writing the
// cluster file they start from.
package procs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nokv/nokv/tests/cluster"
)

// Binaries builds Go commands into one temporary directory, once per test
// binary run, the first time a test asks for them.
type Binaries struct {
	// Prefix names the temporary directory ("nokv-e2e-bin").
	Prefix string
	// Race builds with the race detector.
	Race bool
	// Pkgs are the commands' package paths, relative to the test's
	// package directory ("../../services/pd/cmd/nokv-pd").
	Pkgs []string

	once sync.Once
	dir  string
	err  error
}

// Dir builds the binaries if no test has yet and returns their directory.
func (b *Binaries) Dir(t testing.TB) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", b.Prefix)
		if b.err != nil {
			return
		}
		args := []string{"build"}
		if b.Race {
			args = append(args, "-race")
		}
		// -o with a trailing separator: every command lands in the
		// directory under its own name.
		args = append(args, "-o", b.dir+string(filepath.Separator))
		out, err := exec.Command("go", append(args, b.Pkgs...)...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

// Remove deletes the binaries; TestMain calls it after the run.
func (b *Binaries) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// Main is a TestMain body: it runs the tests, removes the binaries and
// exits with the tests' status.
func (b *Binaries) Main(m *testing.M) {
	code := m.Run()
	b.Remove()
	os.Exit(code)
}

// LogBuffer collects a process's output: the process writes it (through
// exec's copying goroutine) while the test reads it.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail returns the last n bytes of s, marked as cut when it is.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Proc is one running (or exited) server process.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  *LogBuffer

	exited chan struct{}
	err    error // the exit status, once exited is closed
}

// Start starts cmd with its output going to log, and waits for its exit in
// the background, so that Exited, Stop and Kill can be used from anywhere.
func Start(name string, cmd *exec.Cmd, log *LogBuffer) (*Proc, error) {
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: log, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is the exit status; only valid once Exited is closed.
func (p *Proc) Err() error { return p.err }

// ExitCode is the exit code (-1 for a signal); only valid once Exited is
// closed.
func (p *Proc) ExitCode() int { return p.Cmd.ProcessState.ExitCode() }

// Alive reports whether the process is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig; a process that has exited ignores it.
func (p *Proc) Signal(sig syscall.Signal) { _ = p.Cmd.Process.Signal(sig) }

// Kill kills the process without warning and waits until it is gone.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.exited
}

// Wait waits up to timeout for the process to exit on its own and reports
// whether it did.
func (p *Proc) Wait(timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// StopGrace is how long Stop waits after SIGTERM before it kills.
const StopGrace = 15 * time.Second

// Stop sends SIGTERM and waits for the exit; a process still running after
// StopGrace is killed, and Stop then reports false.
func (p *Proc) Stop() bool {
	p.Signal(syscall.SIGTERM)
	if p.Wait(StopGrace) {
		return true
	}
	p.Kill()
	return false
}

// Ports holds the loopback ports of processes that are not running, by
// process name, so that no outgoing connection takes them meanwhile. Only
// the test goroutine uses it.
type Ports struct {
	reserved map[string][]*cluster.Port
	binds    map[string][]string // every address a process binds
}

// Reserve holds a free port for the process name until it starts (a
// process may bind several) and returns its address.
func (ps *Ports) Reserve(t testing.TB, name string) string {
	t.Helper()
	p, err := cluster.ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	if ps.reserved == nil {
		ps.reserved, ps.binds = map[string][]*cluster.Port{}, map[string][]string{}
	}
	ps.reserved[name] = append(ps.reserved[name], p)
	ps.binds[name] = append(ps.binds[name], p.Addr)
	return p.Addr
}

// Reserved reports whether ports of name are held.
func (ps *Ports) Reserved(name string) bool { return len(ps.reserved[name]) > 0 }

// Release frees name's ports for it to bind.
func (ps *Ports) Release(name string) {
	for _, p := range ps.reserved[name] {
		p.Release()
	}
	delete(ps.reserved, name)
}

// Hold holds the ports of a process that has exited again, those nobody
// took meanwhile, until it starts again.
func (ps *Ports) Hold(name string) {
	for _, addr := range ps.binds[name] {
		if p, err := cluster.HoldPort(addr); err == nil {
			ps.reserved[name] = append(ps.reserved[name], p)
		}
	}
}

// ReleaseAll frees every port held.
func (ps *Ports) ReleaseAll() {
	for name := range ps.reserved {
		ps.Release(name)
	}
}

// SinglePD is the pd section of a cluster file for one PD at addr with its
// data under dir/pd.
func SinglePD(addr, dir string) map[string]any {
	return map[string]any{"addr": addr, "docker_addr": "nokv-pd:2379",
		"work_dir": filepath.Join(dir, "pd"), "docker_work_dir": "/var/lib/nokv/pd"}
}

// Store is a store's entry in a cluster file: it binds listen and is
// dialed at addr (the same, unless a proxy stands in front).
func Store(id uint64, listen, addr string) map[string]any {
	return map[string]any{"store_id": id, "listen_addr": listen, "addr": addr,
		"docker_listen_addr": "0.0.0.0:20160", "docker_addr": fmt.Sprintf("nokv-store-%d:20160", id)}
}

// Region is a region's entry in a cluster file, with a peer on each of
// stores 1 to 3 (peer ids region*100+store).
func Region(id uint64, start, end string, leader uint64) map[string]any {
	var peers []map[string]any
	for s := uint64(1); s <= 3; s++ {
		peers = append(peers, map[string]any{"store_id": s, "peer_id": id*100 + s})
	}
	return map[string]any{"id": id, "start_key": start, "end_key": end,
		"epoch": map[string]any{"version": 1, "conf_version": 1}, "peers": peers, "leader_store_id": leader}
}

// TwoRegions are regions 1 and 2 split at split, led by stores 1 and 2.
func TwoRegions(split string) []any {
	return []any{Region(1, "", split, 1), Region(2, split, "", 2)}
}

// WriteClusterFile writes dir/cluster.json with the given pd section,
// stores and regions, and returns its path.
func WriteClusterFile(t testing.TB, dir string, pd map[string]any, stores []map[string]any, regions []any) string {
	t.Helper()
	data, err := json.MarshalIndent(map[string]any{
		"max_retries": 8,
		"pd":          pd,
		"stores":      stores,
		"regions":     regions,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}
