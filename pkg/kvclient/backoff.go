package kvclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// backoffer is the retry budget of one request: every failed attempt
// (region error, unreachable store, PD failure) spends one retry, and the
// request fails with ErrRegionUnavailable once Options.MaxRetries are spent.
// Requests split over regions fork it, so each part has the budget left at
// the split. It is not safe for concurrent use.
type backoffer struct {
	c        *Client
	failures int
	// ambiguous is set once an attempt failed in a way that leaves open
	// whether the store applied it (the attempt timed out, the connection
	// broke, the caller's context ended in flight, or the proposal was
	// reported stale). Commit uses it to tell "not committed" from
	// "unknown".
	ambiguous bool
	// leaderless counts the attempts that found the region without a
	// reachable leader (see retryLeaderless).
	leaderless int
}

// leaderlessMaxBackoff caps the wait between attempts at a region without
// a reachable leader: an election ends at any moment (typically within
// one to two election timeouts of the leader's death), and a client
// asleep in a two-second backoff would miss it by a second.
const leaderlessMaxBackoff = 400 * time.Millisecond

func (c *Client) newBackoffer() *backoffer { return &backoffer{c: c} }

// fork returns a copy with the same spent budget, for a parallel part.
func (b *backoffer) fork() *backoffer {
	cp := *b
	return &cp
}

// retry records a failed attempt caused by cause. It then waits a jittered
// exponential backoff (at least atLeast) if sleep is set, and returns nil
// when the caller may try again; it returns an error matching
// ErrRegionUnavailable and wrapping cause when the retries are used up, and
// the context's error (or ErrClosed) if the wait was cut short.
func (b *backoffer) retry(ctx context.Context, cause error, sleep bool, atLeast time.Duration) error {
	b.failures++
	b.c.stats.regionRetries.Add(1)
	if b.failures > b.c.opts.MaxRetries {
		return fmt.Errorf("%w: %d attempts, the last failed with: %w", ErrRegionUnavailable, b.failures, cause)
	}
	if !sleep {
		return b.c.ctxErr(ctx)
	}
	return b.c.sleep(ctx, max(b.c.backoff(b.failures), atLeast), cause)
}

// retryLeaderless is retry for an attempt that found no reachable leader:
// its store was unreachable, or a peer knew no leader, or named one on a
// store this request found unreachable. The waits grow from MinBackoff to
// leaderlessMaxBackoff only, so the request polls the peers through an
// election; and it spends a retry on the first such attempt and on every
// second one after, so a request stays about as patient (in time) as with
// retry's longer waits before it gives up.
func (b *backoffer) retryLeaderless(ctx context.Context, cause error) error {
	b.leaderless++
	if b.leaderless%2 == 1 {
		b.failures++
		if b.failures > b.c.opts.MaxRetries {
			b.c.stats.regionRetries.Add(1)
			return fmt.Errorf("%w: %d attempts, the last failed with: %w", ErrRegionUnavailable, b.failures, cause)
		}
	}
	b.c.stats.regionRetries.Add(1)
	return b.c.sleep(ctx, jitter(expBackoff(b.c.opts.MinBackoff, min(b.c.opts.MaxBackoff, leaderlessMaxBackoff), b.leaderless)), cause)
}

// backoff is the wait after the n-th failure: MinBackoff doubled n-1 times,
// capped at MaxBackoff, then drawn uniformly from [d/2, d].
func (c *Client) backoff(n int) time.Duration {
	return jitter(expBackoff(c.opts.MinBackoff, c.opts.MaxBackoff, n))
}

// expBackoff is lo doubled n-1 times, capped at hi.
func expBackoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}

// jitter draws uniformly from [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleep waits d. It returns ErrClosed if the client closes first, and the
// context's error (wrapped with cause, if any) if ctx ends first.
func (c *Client) sleep(ctx context.Context, d time.Duration, cause error) error {
	if d <= 0 {
		return c.ctxErr(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.life.Done():
		return ErrClosed
	case <-ctx.Done():
		if cause != nil {
			return fmt.Errorf("kvclient: %w while backing off from: %w", ctx.Err(), cause)
		}
		return fmt.Errorf("kvclient: %w", ctx.Err())
	}
}

// ctxErr returns ErrClosed once the client is closed, the context's error
// if ctx ended, and nil otherwise.
func (c *Client) ctxErr(ctx context.Context) error {
	if c.life.Err() != nil {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kvclient: %w", err)
	}
	return nil
}

// lockWaiter paces a read's waits for live locks of other transactions,
// bounded in total by Options.MaxLockWait.
type lockWaiter struct {
	c        *Client
	deadline time.Time
	waits    int
}

func (c *Client) newLockWaiter() lockWaiter {
	return lockWaiter{c: c}
}

// lockWaitMinBackoff starts the waits for a live lock: its owner is usually
// committing and done within milliseconds.
const lockWaitMinBackoff = 5 * time.Millisecond

// wait sleeps before the next look at a lock that stays alive for at most
// left: a backoff doubling from lockWaitMinBackoff up to MaxBackoff, but
// never past the lock's expiry. cause is the lock, for the error once MaxLockWait is spent.
func (w *lockWaiter) wait(ctx context.Context, left time.Duration, cause error) error {
	now := time.Now()
	if w.deadline.IsZero() {
		w.deadline = now.Add(w.c.opts.MaxLockWait)
	}
	if !now.Before(w.deadline) {
		return fmt.Errorf("%w after %v: %w", ErrLockWaitTimeout, w.c.opts.MaxLockWait, cause)
	}
	w.waits++
	w.c.stats.lockWaits.Add(1)
	d := min(jitter(expBackoff(lockWaitMinBackoff, w.c.opts.MaxBackoff, w.waits)), max(left, time.Millisecond), w.deadline.Sub(now))
	return w.c.sleep(ctx, d, cause)
}

// randDuration draws uniformly from [0, d] (full jitter).
func randDuration(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}
