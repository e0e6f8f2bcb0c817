package gatewayserver_test

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// Sorted sets on the embedded backend answer as redis-server does (the
// raft backend runs the same cases in tests/gateway and tests/hostile).
func TestZSetsMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	conformance.CompareZSetCases(t, srv.Addr(), redisAddr)
	steps := 3000
	if testing.Short() {
		steps = 400
	}
	t.Run("random", func(t *testing.T) { conformance.CompareZSetRandom(t, srv.Addr(), redisAddr, 4, steps) })
}
