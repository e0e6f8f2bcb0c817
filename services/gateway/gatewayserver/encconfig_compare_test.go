package gatewayserver_test

import (
	"testing"

	"github.com/nokv/nokv/services/gateway/conformance"
)

// CONFIG SET of the collection encoding thresholds, and the OBJECT
// ENCODING, MEMORY USAGE and RESTORE results they change, byte for byte
// against redis-server on the embedded backend. Servers of their own: the
// cases change settings other comparisons rely on.
func TestEncodingConfigMatchesRedisServer(t *testing.T) {
	redisAddr := startRedis(t)
	srv := startServer(t, nil)
	conformance.CompareEncodingConfigCases(t, srv.Addr(), redisAddr)
}
