package pdclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
)

// response is what every unary PD response has.
type response interface {
	GetHeader() *pdpb.ResponseHeader
}

// invoke calls one unary PD method, retrying availability errors with
// jittered exponential backoff, at most c.opts.MaxRetries times. The caller's
// ctx bounds the whole call, backoff included; Close cuts it short.
//
// It returns the response of the first attempt that got one, or:
//   - a *PDError if that response's header carries an error (never retried:
//     PD answered);
//   - the context's error, wrapped, if ctx ended;
//   - ErrClosed if the client was closed;
//   - the gRPC error itself if it is not an availability error;
//   - an error matching ErrUnavailable and wrapping the last gRPC error once
//     the retries are used up.
func invoke[Req any, Resp response](ctx context.Context, c *Client, method string,
	rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req,
) (Resp, error) {
	var zero Resp
	if c.life.Err() != nil {
		return zero, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	// Close cancels the calls in progress, attempts and backoffs alike.
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)()

	for attempt := 1; ; attempt++ {
		resp, err := tryOnce(callCtx, c.opts.AttemptTimeout, rpc, req)
		if err == nil {
			if herr := headerError(resp.GetHeader()); herr != nil {
				return zero, herr
			}
			return resp, nil
		}
		switch {
		case c.life.Err() != nil:
			return zero, ErrClosed
		case ctx.Err() != nil:
			return zero, ctx.Err()
		case !retryable(err):
			if perr := statusError(err); perr != nil {
				return zero, perr
			}
			return zero, err
		case attempt > c.opts.MaxRetries:
			return zero, fmt.Errorf("%w: %d attempts, the last failed with: %w", ErrUnavailable, attempt, err)
		}
		if f := c.opts.TestingKnobs.OnRetry; f != nil {
			f(method, attempt, err)
		}
		if !sleepCtx(callCtx, c.backoff(attempt)) {
			if c.life.Err() != nil {
				return zero, ErrClosed
			}
			return zero, fmt.Errorf("%w while backing off from: %v", ctx.Err(), err)
		}
	}
}

// tryOnce runs one attempt of a call, bounded by timeout if positive.
func tryOnce[Req, Resp any](ctx context.Context, timeout time.Duration,
	rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req,
) (Resp, error) {
	if timeout <= 0 {
		return rpc(ctx, req)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return rpc(ctx, req)
}

// retryable reports whether err says PD could not serve the request just
// now (down, restarting, overloaded, or too slow for one attempt), as
// opposed to having answered it. The caller has checked that its own
// context is still live, so DeadlineExceeded is the attempt's deadline.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return true
	}
	return false
}

// backoff is the wait after the n-th failed attempt: MinBackoff doubled n-1
// times, capped at MaxBackoff, then drawn uniformly from [d/2, d].
func (c *Client) backoff(n int) time.Duration {
	d := c.opts.MinBackoff
	for i := 1; i < n && d < c.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
