package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// clients are go-redis clients of nokv-redis gateways on the shared
// cluster: [combined] combines concurrent writes and reads (the default),
// [alone] runs every command in a transaction of its own and sends every
// read alone (--raft-combine=false), [readsAlone] combines writes only
// (--raft-combine-reads=false).
var clients = map[combining]*redis.Client{}

type combining int

const (
	combined combining = iota
	alone
	readsAlone
)

// redisClient starts nokv-redis with the raft backend on the shared cluster
// (the default settings) and returns a go-redis client with a connection
// per worker.
func redisClient(b *testing.B) *redis.Client { return gatewayClient(b, combined) }

func gatewayClient(b *testing.B, combine combining) *redis.Client {
	setup(b)
	if clients[combine] == nil {
		cfg := gatewayserver.DefaultConfig()
		cfg.Addr, cfg.Backend, cfg.PDAddr, cfg.MaxRetries = "127.0.0.1:0", gatewayserver.BackendRaft, shared.PDAddr(), 10
		cfg.RaftCombine, cfg.RaftCombineReads = combine != alone, combine != readsAlone
		cfg.WorkDir = (&keepAlive{TB: b}).TempDir()
		gateway, err := gatewayserver.New(cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		gateway.Start()
		cleanups = append(cleanups, func() { _ = gateway.Close() })
		rc := redis.NewClient(&redis.Options{Addr: gateway.Addr(), PoolSize: 64})
		cleanups = append(cleanups, func() { _ = rc.Close() })
		clients[combine] = rc
	}
	return clients[combine]
}

// BenchmarkGatewaySET: Redis SET of distinct keys through nokv-redis on the
// cluster (concurrent ones combined into one 1PC transaction).
func BenchmarkGatewaySET(b *testing.B) { gatewaySET(b, redisClient(b)) }

// BenchmarkGatewaySETAlone: the same, each SET in a 1PC transaction of its
// own (--raft-combine=false).
func BenchmarkGatewaySETAlone(b *testing.B) { gatewaySET(b, gatewayClient(b, alone)) }

func gatewaySET(b *testing.B, c *redis.Client) {
	run(b, func(ctx context.Context, i int64) error {
		return c.Set(ctx, fmt.Sprintf("gs-%d", i), value(i), 0).Err()
	})
}

// BenchmarkGatewayGET: Redis GET of one of 1000 keys (a linearizable read;
// concurrent ones combined into one read of the region).
func BenchmarkGatewayGET(b *testing.B) { gatewayGET(b, redisClient(b)) }

// BenchmarkGatewayGETAlone: the same, each GET a read of its own
// (--raft-combine-reads=false).
func BenchmarkGatewayGETAlone(b *testing.B) { gatewayGET(b, gatewayClient(b, readsAlone)) }

func gatewayGET(b *testing.B, c *redis.Client) {
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

// BenchmarkGatewayHotINCR: every worker INCRs the same key: the gateway
// combines the queued INCRs into one transaction, which reads the key once
// and writes it once.
func BenchmarkGatewayHotINCR(b *testing.B) { gatewayHotINCR(b, redisClient(b)) }

// BenchmarkGatewayHotINCRAlone: the same, each INCR in a transaction of its
// own: the gateway's latches queue them instead of letting them conflict in
// the cluster.
func BenchmarkGatewayHotINCRAlone(b *testing.B) { gatewayHotINCR(b, gatewayClient(b, alone)) }

func gatewayHotINCR(b *testing.B, c *redis.Client) {
	run(b, func(ctx context.Context, i int64) error {
		return c.Incr(ctx, "hot-counter").Err()
	})
}
