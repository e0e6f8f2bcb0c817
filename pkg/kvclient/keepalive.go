package kvclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nokv/nokv/api/kvrpcpb"
	"github.com/nokv/nokv/api/storepb"
)

// keepAlive keeps the primary lock of a committing transaction alive while
// the transaction runs, as TiKV's ttlManager does: from the moment the
// primary is prewritten until its commit (or the rollback) settles the
// transaction, a goroutine sends TxnHeartBeat every Options.LockTTL/2,
// raising the primary lock's TTL to the transaction's age plus
// Options.LockTTL. A reader that meets any of the transaction's locks asks
// the primary (CheckTxnStatus), finds it alive and waits instead of rolling
// the transaction back, however long the prewrites of a large transaction
// take. Should the client die, its primary lock expires at most LockTTL
// after the last heartbeat and the next reader rolls it back.
//
// The heartbeats stop raising the TTL once the transaction is
// Options.MaxTxnTTL old (the store also caps a heartbeat's TTL at an hour):
// a hung or looping committer cannot hold its keys forever. GC's lock
// resolution, which rolls back every transaction older than the GC life
// time, ends it earlier if that is shorter.
//
// A heartbeat that finds the transaction rolled back (a reader or GC got
// there first, or a range deletion removed the lock) records why; the
// committer checks it before the commit point and fails with that error
// instead of trying to commit. A heartbeat that fails for other reasons
// (region errors, an unreachable store) is retried at the next tick.
type keepAlive struct {
	cm    *committer
	began time.Time

	once    sync.Once // starts the goroutine
	stopped sync.Once
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine ends; nil if never started

	mu   sync.Mutex
	dead error // why the transaction is over, learnt by a heartbeat
}

// start runs the heartbeats unless they run already or the client is
// closing (the commit then fails with ErrClosed anyway). Safe to call from
// the parallel prewrites.
func (k *keepAlive) start() {
	k.once.Do(func() {
		c := k.cm.c
		c.bgMu.Lock()
		defer c.bgMu.Unlock()
		if c.life.Err() != nil {
			return
		}
		// Close waits for bg, and cancelling c.life ends the goroutine.
		c.bg.Add(1)
		ctx, cancel := context.WithCancel(c.life)
		k.cancel, k.done = cancel, make(chan struct{})
		go func() {
			defer c.bg.Done()
			defer close(k.done)
			k.run(ctx)
		}()
	})
}

// stop ends the heartbeats and waits for the goroutine: once it returns no
// heartbeat is in flight. Idempotent; fine if start never ran.
func (k *keepAlive) stop() {
	k.stopped.Do(func() {
		k.once.Do(func() {}) // a later start does nothing
		if k.done != nil {
			k.cancel()
			<-k.done
		}
	})
}

// err reports why the transaction is over, if a heartbeat learnt it.
func (k *keepAlive) err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.dead
}

func (k *keepAlive) run(ctx context.Context) {
	c, cm := k.cm.c, k.cm
	interval := max(c.opts.LockTTL/2, time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		age := time.Since(k.began)
		if age > c.opts.MaxTxnTTL {
			c.opts.Logger.Warn("kvclient: transaction outlived MaxTxnTTL; its lock heartbeat stops and its locks will expire",
				"start_ts", cm.startTS, "age", age, "max_txn_ttl", c.opts.MaxTxnTTL)
			return
		}
		ttl := min(age+c.opts.LockTTL, c.opts.MaxTxnTTL)
		hctx, cancel := context.WithTimeout(ctx, interval)
		ke, err := cm.heartBeat(hctx, uint64(ttl.Milliseconds()))
		cancel()
		switch {
		case ke != nil && ke.GetAlreadyCommitted() != nil:
			return // committed: nothing left to keep alive
		case ke != nil:
			k.mu.Lock()
			k.dead = fmt.Errorf("kvclient: transaction %d lost its primary lock %q before it committed (its lock heartbeat found it gone): %w",
				cm.startTS, cm.primary, &KeyError{Err: ke})
			k.mu.Unlock()
			c.opts.Logger.Warn("kvclient: transaction was rolled back while it ran", "start_ts", cm.startTS, "err", ke)
			return
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			// The next tick tries again; the lock still has at least
			// LockTTL/2 left from the last heartbeat that applied.
			c.opts.Logger.Debug("kvclient: lock heartbeat failed", "start_ts", cm.startTS, "err", err)
		default:
			c.stats.heartbeats.Add(1)
		}
	}
}

// heartBeat sends one TxnHeartBeat for the primary lock, following the
// primary's region as it moves; the answer's key error, if any, says the
// transaction is over.
func (cm *committer) heartBeat(ctx context.Context, adviseTTL uint64) (*kvrpcpb.KeyError, error) {
	c := cm.c
	bo := c.newBackoffer()
	req := &kvrpcpb.TxnHeartBeatRequest{PrimaryLock: cm.primary, StartVersion: cm.startTS, AdviseLockTtl: adviseTTL}
	for {
		loc, err := c.locate(ctx, bo, cm.primary)
		if err != nil {
			return nil, err
		}
		resp, err := send(ctx, c, bo, loc, "TxnHeartBeat",
			func(ctx context.Context, sc storepb.StoreClient, rc *kvrpcpb.Context) (*kvrpcpb.TxnHeartBeatResponse, error) {
				req.Context = rc
				return sc.KvTxnHeartBeat(ctx, req)
			})
		if errors.Is(err, errRegionMoved) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return resp.GetError(), nil
	}
}
