package deploy

import (
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
)

// localCluster is one run of scripts/run_local_cluster.sh.
type localCluster struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startLocal runs the script with args and waits until it says the cluster is
// ready. The script runs in its own process group, killed at cleanup should
// the test fail before stopping it.
func startLocal(t *testing.T, env []string, args ...string) *localCluster {
	t.Helper()
	lc := &localCluster{out: &syncBuffer{}, done: make(chan struct{})}
	lc.cmd = exec.Command(filepath.Join(root, "scripts/run_local_cluster.sh"), args...)
	lc.cmd.Dir = root
	lc.cmd.Env = append(os.Environ(), env...)
	lc.cmd.Stdout, lc.cmd.Stderr = lc.out, lc.out
	lc.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := lc.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { lc.err = lc.cmd.Wait(); close(lc.done) }()
	t.Cleanup(func() {
		select {
		case <-lc.done:
		default:
			_ = syscall.Kill(-lc.cmd.Process.Pid, syscall.SIGKILL)
			<-lc.done
			t.Logf("run_local_cluster.sh output:\n%s", lc.out)
		}
	})
	deadline := time.Now().Add(5 * time.Minute) // the first start builds the binaries
	for !strings.Contains(lc.out.String(), "NoKV cluster ready in") {
		select {
		case <-lc.done:
			t.Fatalf("run_local_cluster.sh %v exited (%v) before the cluster was ready:\n%s", args, lc.err, lc.out)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("run_local_cluster.sh %v: not ready:\n%s", args, lc.out)
		}
	}
	return lc
}

// wait waits for the script to exit and returns its error.
func (lc *localCluster) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-lc.done:
		return lc.err
	case <-time.After(60 * time.Second):
		t.Fatalf("run_local_cluster.sh did not exit:\n%s", lc.out)
		return nil
	}
}

// redisCLI runs redis-cli against addr; where redis-cli is missing (CI
// installs it) it fails, unless the caller accepts go-redis instead.
func redisCLI(t *testing.T, addr string, args ...string) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		return "", false
	}
	host, port, _ := strings.Cut(addr, ":")
	return strings.TrimSpace(command(t, 30*time.Second, "", nil, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...)), true
}

// TestRunLocalCluster starts scripts/run_local_cluster.sh --gateway as a user
// would (on ports of its own), talks to the raft gateway with redis-cli,
// stops it with --stop, restarts it on the same data (the key is still
// there), stops it with Ctrl-C (SIGINT), and wipes the data with --fresh.
func TestRunLocalCluster(t *testing.T) {
	dir := t.TempDir()
	// The example file on free ports.
	data, err := os.ReadFile(filepath.Join(root, "raft_config.example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	pdAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	file["pd"].(map[string]any)["addr"] = pdAddr
	for _, s := range file["stores"].([]any) {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		s.(map[string]any)["addr"], s.(map[string]any)["listen_addr"] = addr, addr
	}
	data, _ = json.MarshalIndent(file, "", "  ")
	cfg := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	gateway := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dataDir := filepath.Join(dir, "data")
	env := []string{"NOKV_CONFIG=" + cfg, "NOKV_DATA_DIR=" + dataDir, "NOKV_GATEWAY_ADDR=" + gateway}
	stop := func() {
		t.Helper()
		if out := command(t, 2*time.Minute, "", env, "scripts/run_local_cluster.sh", "--stop"); !strings.Contains(out, "stopped 5 processes") {
			t.Fatalf("--stop: %s", out)
		}
	}
	t.Cleanup(func() { _, _ = tryCommand(2*time.Minute, "", env, "scripts/run_local_cluster.sh", "--stop") })

	start := time.Now()
	lc := startLocal(t, env, "--gateway")
	t.Logf("first start (building the binaries) took %v:\n%s", time.Since(start).Round(100*time.Millisecond), lc.out)
	for _, want := range []string{"ready: every store holding regions is up and every region has a leader", "redis-cli -h 127.0.0.1 -p " + strings.Split(gateway, ":")[1]} {
		if !strings.Contains(lc.out.String(), want) {
			t.Errorf("the script's output lacks %q", want)
		}
	}
	if out, ok := redisCLI(t, gateway, "set", "greeting", "hello"); ok {
		if out != "OK" {
			t.Fatalf("redis-cli set: %q", out)
		}
		if out, _ := redisCLI(t, gateway, "get", "greeting"); out != "hello" {
			t.Fatalf("redis-cli get: %q", out)
		}
		if out, _ := redisCLI(t, gateway, "info", "server"); !strings.Contains(out, "nokv_backend:raft") {
			t.Fatalf("the script's gateway is not on the raft backend:\n%s", out)
		}
	} else {
		if os.Getenv("NOKV_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-cli is not installed (NOKV_REQUIRE_REDIS=1)")
		}
		t.Log("redis-cli is not installed: using go-redis")
		c := redisClient(t, gateway)
		writeKeys(t, c, "greeting", 1)
		checkKeys(t, c, "greeting", 1)
	}
	// Every store answers its own health check, from the cluster file.
	bin := filepath.Join(dataDir, "bin")
	for id := 1; id <= 3; id++ {
		command(t, 30*time.Second, "", nil, filepath.Join(bin, "nokv-store"), "health", "--config", cfg, "--store-id", fmt.Sprint(id))
	}
	if st := status(t, pdAddr); !st.Ready || len(st.Stores) != 3 || len(st.Regions) != 2 {
		t.Fatalf("nokv-config status: %+v", st)
	}

	stop()
	if err := lc.wait(t); err != nil {
		t.Fatalf("the script after --stop: %v\n%s", err, lc.out)
	}
	if !strings.Contains(lc.out.String(), "all processes have exited") {
		t.Fatalf("the script did not report its processes exiting:\n%s", lc.out)
	}
	for _, name := range []string{"pd", "store-1", "store-2", "store-3", "gateway"} {
		log, _ := os.ReadFile(filepath.Join(dataDir, "logs", name+".log"))
		if !strings.Contains(string(log), "stopped cleanly") {
			t.Errorf("%s did not stop cleanly:\n%s", name, log)
		}
	}

	// A restart keeps the data; Ctrl-C stops it.
	lc = startLocal(t, env, "--gateway", "--bin-dir", bin)
	c := redisClient(t, gateway)
	if v, err := c.Get(t.Context(), "greeting").Result(); err != nil || (v != "hello" && v != "v-greeting0") {
		t.Fatalf("GET greeting after a restart = %q, %v", v, err)
	}
	if err := lc.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := lc.wait(t); err != nil || !strings.Contains(lc.out.String(), "stopped 5 processes") {
		t.Fatalf("the script after Ctrl-C: %v\n%s", err, lc.out)
	}
	if out, err := tryCommand(10*time.Second, "", nil, filepath.Join(bin, "nokv-redis"), "health", "--addr", gateway, "--timeout", "1s"); err == nil {
		t.Fatalf("the gateway still answers after Ctrl-C: %s", out)
	}

	// --fresh starts over.
	lc = startLocal(t, env, "--gateway", "--fresh", "--bin-dir", bin)
	if n, err := c.Exists(t.Context(), "greeting").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS greeting after --fresh = %d, %v", n, err)
	}
	stop()
	if err := lc.wait(t); err != nil {
		t.Fatalf("the script after --stop: %v\n%s", err, lc.out)
	}
}
