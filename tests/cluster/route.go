package cluster

import (
	"fmt"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
)

// LeaderContext returns the routing context of the region holding key, as
// its current leader sees it (region id, epoch, leader peer), and the
// leader's store id, for tests that send raw KV requests. It asks PD and
// the stores afresh each time.
func (c *Cluster) LeaderContext(key []byte) (*kvrpcpb.Context, uint64, error) {
	return c.leaderContext(key)
}

// MustLeaderContext is LeaderContext, retried until a leader answers.
func (c *Cluster) MustLeaderContext(key []byte) (*kvrpcpb.Context, uint64) {
	c.t.Helper()
	var (
		rc    *kvrpcpb.Context
		store uint64
	)
	Eventually(c.t, 15*time.Second, func() error {
		var err error
		rc, store, err = c.leaderContext(key)
		if err != nil {
			return fmt.Errorf("route %q: %w", key, err)
		}
		return nil
	})
	return rc, store
}
