package gateway

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
	"github.com/nokv/nokv/tests/internal/gwtest"
)

// startRedis runs redis-server (gwtest.StartRedis).
func startRedis(t *testing.T) string { t.Helper(); return gwtest.StartRedis(t) }

// startGateway runs nokv-redis with the raft backend against c
// (gwtest.StartGateway).
func startGateway(t *testing.T, c *cluster.Cluster, mutate ...func(*gatewayserver.Config)) *gatewayserver.Server {
	t.Helper()
	return gwtest.StartGateway(t, c, mutate...)
}
