package gateway

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
)

// startRedis runs redis-server in memory on a free loopback port, or skips
// the test where it is not installed (unless NOKV_REQUIRE_REDIS=1).
func startRedis(t *testing.T) string {
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

// Hashes on the raft backend answer as redis-server does: the fixed cases
// and random sequences over strings and hashes that the embedded backend
// runs (services/gateway/gatewayserver), with a region split inside
// database 0 so that multi-key commands span regions.
func TestHashesMatchRedisServerOnTheRaftBackend(t *testing.T) {
	redisAddr := startRedis(t)
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00c", "\x80"}})
	srv := startGateway(t, c)
	conformance.CompareCollectionCases(t, srv.Addr(), redisAddr)
	steps := 2000
	if testing.Short() {
		steps = 150
	}
	t.Run("random", func(t *testing.T) { conformance.CompareCollectionRandom(t, srv.Addr(), redisAddr, 3, steps) })
}

// Sorted sets on the raft backend answer as redis-server does (the cases
// of services/gateway/conformance/zsets.go), with the same region split:
// ZUNIONSTORE and friends then read and write across regions in one
// transaction.
func TestZSetsMatchRedisServerOnTheRaftBackend(t *testing.T) {
	redisAddr := startRedis(t)
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00c", "\x80"}})
	srv := startGateway(t, c)
	conformance.CompareZSetCases(t, srv.Addr(), redisAddr)
	steps := 2000
	if testing.Short() {
		steps = 150
	}
	t.Run("random", func(t *testing.T) { conformance.CompareZSetRandom(t, srv.Addr(), redisAddr, 3, steps) })
}
