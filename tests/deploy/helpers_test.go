// Package deploy tests NoKV deployed the ways users deploy it: the compose
// cluster built by scripts/compose-build.sh (offline, FROM scratch images) and
// run with both docker-compose 1.29 and the compose v2 plugin, and
// scripts/run_local_cluster.sh. The compose tests skip, saying so, only where
// no Docker engine runs; .ci/run installs both compose tools.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// root is the repository root, from this package's directory.
var root = func() string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	return dir
}()

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// command runs name with args in dir (the repository root if empty) with env
// added to the environment, and returns its combined output; it fails the
// test when the command fails, or runs past timeout.
func command(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := tryCommand(timeout, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func tryCommand(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if dir == "" {
		dir = root
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, timeout)
	}
	return out.String(), err
}

// redisClient connects to a gateway; a command that fails is retried by
// the callers where the test allows it.
func redisClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eventually retries f every 200 ms until it succeeds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeKeys SETs keys prefix0..prefix(n-1), each to its own name, and fails
// on the first error: a write must succeed as the gateway answers it, with
// the gateway's own retries and no client-side ones.
func writeKeys(t *testing.T, c *redis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		if err := c.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
}

// checkKeys GETs every key writeKeys wrote.
func checkKeys(t *testing.T, c *redis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		k := fmt.Sprintf("%s%d", prefix, i)
		v, err := c.Get(ctx, k).Result()
		if err != nil || v != "v-"+k {
			t.Fatalf("GET %s = %q, %v; want %q", k, v, err, "v-"+k)
		}
	}
}

// nokvConfig builds nokv-config once for the package.
var (
	nokvConfigOnce sync.Once
	nokvConfigBin  string
	nokvConfigErr  error
	tmpDirs        []string
)

func nokvConfig(t *testing.T) string {
	t.Helper()
	nokvConfigOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nokv-deploy-bin")
		if err != nil {
			nokvConfigErr = err
			return
		}
		tmpDirs = append(tmpDirs, dir)
		nokvConfigBin = filepath.Join(dir, "nokv-config")
		out, err := exec.Command("go", "build", "-o", nokvConfigBin, filepath.Join(root, "services/tools/cmd/nokv-config")).CombinedOutput()
		if err != nil {
			nokvConfigErr = fmt.Errorf("go build nokv-config: %v\n%s", err, out)
		}
	})
	if nokvConfigErr != nil {
		t.Fatal(nokvConfigErr)
	}
	return nokvConfigBin
}

// clusterStatus is the part of `nokv-config status --format json` the tests read.
type clusterStatus struct {
	Ready  bool `json:"ready"`
	Stores []struct {
		ID      uint64 `json:"id"`
		State   string `json:"state"`
		Address string `json:"address"`
	} `json:"stores"`
	Regions  []regionJSON `json:"regions"`
	Problems []string     `json:"problems"`
}

type regionJSON struct {
	ID     uint64     `json:"id"`
	Leader *peerJSON  `json:"leader"`
	Peers  []peerJSON `json:"peers"`
}

type peerJSON struct {
	StoreID uint64 `json:"store_id"`
	PeerID  uint64 `json:"peer_id"`
}

func status(t *testing.T, pdAddr string) clusterStatus {
	t.Helper()
	out := command(t, 30*time.Second, "", nil, nokvConfig(t), "status", "--pd-addr", pdAddr, "--format", "json")
	var st clusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("nokv-config status: %v\n%s", err, out)
	}
	return st
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanupImages()
	for _, d := range tmpDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}
