// Package gwtest starts what the raft-backend gateway tests (tests/gateway,
// tests/gatewaycompare) run against: nokv-redis in-process over a
// tests/cluster cluster, and redis-server to compare with.
package gwtest

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// StartGateway runs nokv-redis with the raft backend against c; mutate,
// if given, adjusts its settings first.
func StartGateway(t *testing.T, c *cluster.Cluster, mutate ...func(*gatewayserver.Config)) *gatewayserver.Server {
	t.Helper()
	cfg := gatewayserver.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.Backend = gatewayserver.BackendRaft
	cfg.PDAddr = c.PDAddr()
	cfg.MaxRetries = 10
	cfg.WorkDir = t.TempDir()
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := gatewayserver.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close gateway: %v", err)
		}
	})
	return srv
}

// StartRedis runs redis-server in memory on a free loopback port, or skips
// the test where it is not installed (unless NOKV_REQUIRE_REDIS=1).
func StartRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("NOKV_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server not found but NOKV_REQUIRE_REDIS=1: %v", err)
		}
		t.Skip("redis-server not installed; skipping comparison")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not come up on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
