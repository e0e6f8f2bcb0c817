// Package hashes compares hashes (and strings) on the raft backend with
// redis-server, in a package and a go test timeout of its own (see
// tests/gatewaycompare).
package hashes

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
	"github.com/nokv/nokv/tests/cluster"
	"github.com/nokv/nokv/tests/internal/gwtest"
)

// Hashes on the raft backend answer as redis-server does: the fixed cases
// and random sequences over strings and hashes that the embedded backend
// runs (services/gateway/gatewayserver), with a region split inside
// database 0 so that multi-key commands span regions.
func TestHashesMatchRedisServerOnTheRaftBackend(t *testing.T) {
	redisAddr := gwtest.StartRedis(t)
	srv := gwtest.StartGateway(t, cluster.Start(t, gwtest.RaftSplit))
	conformance.CompareCollectionCases(t, srv.Addr(), redisAddr)
	// CONFIG SET of the encoding thresholds: judged by the gateway
	// process, recorded in the key's metadata through the cluster.
	t.Run("encoding-config", func(t *testing.T) {
		conformance.CompareEncodingConfigCases(t, srv.Addr(), redisAddr)
	})
	t.Run("random", func(t *testing.T) {
		gwtest.CompareRandomOnTheRaftBackend(t, srv.Addr(), redisAddr, conformance.CompareCollectionRandomSeed)
	})
}
