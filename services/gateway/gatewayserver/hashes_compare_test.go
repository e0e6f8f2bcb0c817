package gatewayserver_test

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// Hashes on the embedded backend answer as redis-server does (the raft
// backend runs the same cases in tests/gateway and tests/hostile).
func TestHashesMatchRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	conformance.CompareCollectionCases(t, srv.Addr(), redisAddr)
	steps := 2000
	if testing.Short() {
		steps = 300
	}
	t.Run("random", func(t *testing.T) { conformance.CompareCollectionRandom(t, srv.Addr(), redisAddr, 4, steps) })
}
