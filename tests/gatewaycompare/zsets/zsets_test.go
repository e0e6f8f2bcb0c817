// Package zsets compares sorted sets on the raft backend with
// redis-server, in a package and a go test timeout of its own (see
// tests/gatewaycompare).
package zsets

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
	"github.com/nokv/nokv/tests/internal/gwtest"
)

// Sorted sets on the raft backend answer as redis-server does (the cases
// of services/gateway/conformance/zsets.go), with a region split inside
// database 0: ZUNIONSTORE and friends then read and write across regions
// in one transaction.
func TestZSetsMatchRedisServerOnTheRaftBackend(t *testing.T) {
	redisAddr := gwtest.StartRedis(t)
	srv := gwtest.StartGateway(t, cluster.Start(t, gwtest.RaftSplit))
	conformance.CompareZSetCases(t, srv.Addr(), redisAddr)
	t.Run("random", func(t *testing.T) {
		gwtest.CompareRandomOnTheRaftBackend(t, srv.Addr(), redisAddr, conformance.CompareZSetRandomSeed)
	})
}
