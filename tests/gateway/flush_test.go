package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nokv/nokv/services/gateway/gatewayserver"
	"github.com/nokv/nokv/tests/cluster"
)

// A FLUSHALL that cannot finish may already have emptied some regions: it
// answers that the outcome is unknown, never "nothing was written".
func TestFlushAllThatFailsIsUndetermined(t *testing.T) {
	c := cluster.Start(t, cluster.Options{SplitKeys: []string{"\x00\x00\x00\x00m"}})
	srv := startGateway(t, c, func(cfg *gatewayserver.Config) { cfg.MaxRetries = 2 })
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: time.Minute})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	if err := rc.MSet(ctx, "a", "1", "z", "2").Err(); err != nil {
		t.Fatal(err)
	}
	// A majority of stores gone: no region can apply the range deletion.
	ids := c.StoreIDs()
	for _, id := range ids[:2] {
		c.StopStore(id)
	}
	err := rc.FlushAll(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "may or may not have been applied") {
		t.Fatalf("FLUSHALL with two of three stores down = %v, want the undetermined reply", err)
	}
	if strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("FLUSHALL claims nothing was written: %v", err)
	}
}
