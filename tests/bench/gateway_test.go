package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

var (
	gateway *gatewayserver.Server
	rc      *redis.Client
)

// redisClient starts nokv-redis with the raft backend on the shared cluster
// and returns a go-redis client with a connection per worker.
func redisClient(b *testing.B) *redis.Client {
	setup(b)
	if rc == nil {
		cfg := gatewayserver.DefaultConfig()
		cfg.Addr, cfg.Backend, cfg.PDAddr, cfg.MaxRetries = "127.0.0.1:0", gatewayserver.BackendRaft, shared.PDAddr(), 10
		cfg.WorkDir = (&keepAlive{TB: b}).TempDir()
		var err error
		if gateway, err = gatewayserver.New(cfg, nil); err != nil {
			b.Fatal(err)
		}
		gateway.Start()
		cleanups = append(cleanups, func() { _ = gateway.Close() })
		rc = redis.NewClient(&redis.Options{Addr: gateway.Addr(), PoolSize: 64})
		cleanups = append(cleanups, func() { _ = rc.Close() })
	}
	return rc
}

// BenchmarkGatewaySET: Redis SET of distinct keys through nokv-redis on the
// cluster (one 1PC transaction each).
func BenchmarkGatewaySET(b *testing.B) {
	c := redisClient(b)
	run(b, func(ctx context.Context, i int64) error {
		return c.Set(ctx, fmt.Sprintf("gs-%d", i), value(i), 0).Err()
	})
}

// BenchmarkGatewayGET: Redis GET of one of 1000 keys (a linearizable read).
func BenchmarkGatewayGET(b *testing.B) {
	c := redisClient(b)
	ctx := context.Background()
	for i := range int64(1000) {
		if err := c.Set(ctx, fmt.Sprintf("gg-%d", i), value(i), 0).Err(); err != nil {
			b.Fatal(err)
		}
	}
	run(b, func(ctx context.Context, i int64) error {
		return c.Get(ctx, fmt.Sprintf("gg-%d", i%1000)).Err()
	})
}

// BenchmarkGatewayHotINCR: every worker INCRs the same key: the gateway's
// latches queue them instead of letting them conflict in the cluster.
func BenchmarkGatewayHotINCR(b *testing.B) {
	c := redisClient(b)
	run(b, func(ctx context.Context, i int64) error {
		return c.Incr(ctx, "hot-counter").Err()
	})
}
