package pdclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nokv/nokv/api/pdpb"
)

// MaxTSOBatch is the largest count PD answers in one TsoResponse: the
// consecutive logicals of one physical millisecond.
const MaxTSOBatch = 1 << 18

// Defaults for TSOOptions.
const (
	DefaultTSOMaxBatch   = 10000
	DefaultTSOMinBackoff = 50 * time.Millisecond
	DefaultTSOMaxBackoff = 2 * time.Second
)

var (
	// ErrClosed is returned by calls on a closed client.
	ErrClosed = errors.New("pdclient: client closed")
	// ErrUnavailable is matched by errors of requests that failed because the
	// stream to PD broke or could not be used; retrying is safe.
	ErrUnavailable = errors.New("pdclient: PD unavailable")
	// ErrInvalidOptions is returned by constructors for unusable options.
	ErrInvalidOptions = errors.New("pdclient: invalid options")
)

// PDError is a business error PD reported in a response header.
type PDError struct {
	Type    pdpb.ErrorType
	Message string
}

func (e *PDError) Error() string {
	return fmt.Sprintf("pdclient: PD error %s: %s", e.Type, e.Message)
}

// TSOOptions tunes a TSOClient. The zero value is usable.
type TSOOptions struct {
	// MaxBatch caps the timestamps asked for in one stream request; 0 means
	// DefaultTSOMaxBatch. At most MaxTSOBatch.
	MaxBatch int
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts,
	// which doubles from MinBackoff up to MaxBackoff; 0 means the defaults.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Validate reports unusable options; zero fields are fine.
func (o TSOOptions) Validate() error {
	switch {
	case o.MaxBatch < 0 || o.MaxBatch > MaxTSOBatch:
		return fmt.Errorf("%w: MaxBatch %d, want 0..%d", ErrInvalidOptions, o.MaxBatch, MaxTSOBatch)
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return fmt.Errorf("%w: negative backoff", ErrInvalidOptions)
	case o.MinBackoff > 0 && o.MaxBackoff > 0 && o.MinBackoff > o.MaxBackoff:
		return fmt.Errorf("%w: MinBackoff %v above MaxBackoff %v", ErrInvalidOptions, o.MinBackoff, o.MaxBackoff)
	}
	return nil
}

func (o TSOOptions) withDefaults() TSOOptions {
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultTSOMaxBatch
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = min(DefaultTSOMinBackoff, max(o.MaxBackoff, time.Nanosecond))
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultTSOMaxBackoff, o.MinBackoff)
	}
	return o
}

// TSFuture is a timestamp requested with GetTSAsync.
type TSFuture interface {
	// Wait blocks until the timestamp arrives, the request's context ends or
	// the client is closed. It may be called more than once.
	Wait() (uint64, error)
}

// TSOClient batches timestamp requests onto PD's Tso stream. It is safe for
// concurrent use. See the package documentation for batching and failures.
type TSOClient struct {
	pd   pdpb.PDClient
	opts TSOOptions

	reqCh chan *tsoRequest
	pool  sync.Pool // *tsoRequest for GetTS

	// life scopes the streams: Close cancels it, which unblocks a stream
	// Recv or connect in progress.
	life      context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the stream goroutine has exited
}

// NewTSOClient starts the stream goroutine; it connects in the background.
// pd is usually pdpb.NewPDClient(conn); the caller keeps ownership of conn.
func NewTSOClient(pd pdpb.PDClient, opts TSOOptions) (*TSOClient, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	life, cancel := context.WithCancel(context.Background())
	c := &TSOClient{
		pd:      pd,
		opts:    opts,
		reqCh:   make(chan *tsoRequest, opts.MaxBatch),
		life:    life,
		cancel:  cancel,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	c.pool.New = func() any {
		return &tsoRequest{c: c, pooled: true, done: make(chan struct{}, 1)}
	}
	go c.run()
	return c, nil
}

// GetTS returns a new timestamp. It fails with the context's error (wrapped)
// when ctx ends first, ErrUnavailable when the stream broke under the
// request, a *PDError when PD refused, or ErrClosed.
func (c *TSOClient) GetTS(ctx context.Context) (uint64, error) {
	r := c.pool.Get().(*tsoRequest)
	r.ctx = ctx
	if err := c.submit(ctx, r); err != nil {
		c.release(r)
		return 0, err
	}
	ts, err, finished := r.wait()
	if finished {
		// Only a request whose answer was received goes back to the pool:
		// an abandoned one may still be answered by the stream goroutine.
		c.release(r)
	}
	return ts, err
}

// GetTSAsync requests a timestamp and returns at once; Wait on the future
// for it. ctx bounds the request as in GetTS.
func (c *TSOClient) GetTSAsync(ctx context.Context) TSFuture {
	r := &tsoRequest{c: c, ctx: ctx, done: make(chan struct{})}
	if err := c.submit(ctx, r); err != nil {
		r.finish(0, err)
	}
	return r
}

// Close stops the stream goroutine and fails pending requests with
// ErrClosed. It returns when the goroutine has exited; it does not close
// the gRPC connection.
func (c *TSOClient) Close() {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.cancel()
	})
	<-c.done
}

func (c *TSOClient) submit(ctx context.Context, r *tsoRequest) error {
	select {
	case <-c.closing:
		return ErrClosed
	default:
	}
	select {
	case c.reqCh <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pdclient: get timestamp: %w", ctx.Err())
	case <-c.closing:
		return ErrClosed
	}
}

func (c *TSOClient) release(r *tsoRequest) {
	r.ctx, r.ts, r.err = nil, 0, nil
	c.pool.Put(r)
}

// tsoRequest is one caller's request. It carries the caller's context
// because the stream goroutine skips requests whose caller has given up.
type tsoRequest struct {
	c   *TSOClient
	ctx context.Context
	// pooled requests (GetTS) are answered by a send on done, so that done
	// can be reused; futures (GetTSAsync) by closing it, so that Wait can be
	// repeated.
	pooled bool
	done   chan struct{}
	ts     uint64
	err    error
}

// finish answers the request; the stream goroutine calls it exactly once.
func (r *tsoRequest) finish(ts uint64, err error) {
	r.ts, r.err = ts, err
	if r.pooled {
		r.done <- struct{}{}
	} else {
		close(r.done)
	}
}

func (r *tsoRequest) Wait() (uint64, error) {
	ts, err, _ := r.wait()
	return ts, err
}

// wait returns finished=true when it received the answer.
func (r *tsoRequest) wait() (ts uint64, err error, finished bool) {
	select {
	case <-r.done:
		return r.ts, r.err, true
	case <-r.ctx.Done():
		return 0, fmt.Errorf("pdclient: get timestamp: %w", r.ctx.Err()), false
	case <-r.c.done:
		// The stream goroutine answers everything it took before exiting;
		// a request that slipped into the queue after that is not answered.
		select {
		case <-r.done:
			return r.ts, r.err, true
		default:
			return 0, ErrClosed, false
		}
	}
}

// run owns the stream. It (re)connects, then repeatedly takes a batch of
// waiting requests, sends one TsoRequest for it and hands out the answer.
func (c *TSOClient) run() {
	defer close(c.done)
	var (
		stream   pdpb.PD_TsoClient
		cancel   context.CancelFunc = func() {}
		failures int                // consecutive failures since the last answered batch
		batch    = make([]*tsoRequest, 0, c.opts.MaxBatch)
		req      pdpb.TsoRequest
		resp     pdpb.TsoResponse
	)
	defer func() {
		cancel()
		c.failQueued()
	}()
	for {
		if stream == nil {
			if failures > 1 && !c.sleep(c.backoff(failures-1)) {
				return
			}
			s, stop, err := c.connect()
			if err != nil {
				if c.isClosing() {
					return
				}
				failures++
				continue
			}
			stream, cancel = s, stop
		}

		var first *tsoRequest
		select {
		case <-c.closing:
			return
		case first = <-c.reqCh:
		}
		batch = c.collect(batch[:0], first)
		if len(batch) == 0 {
			continue
		}

		req.Count = uint32(len(batch))
		err := stream.Send(&req)
		if err == nil {
			err = stream.RecvMsg(&resp)
		}
		if err != nil {
			cancel()
			stream = nil
			failures++
			if c.isClosing() {
				failBatch(batch, ErrClosed)
				return
			}
			failBatch(batch, fmt.Errorf("%w: TSO stream: %w", ErrUnavailable, err))
			continue
		}
		if e := resp.GetHeader().GetError(); e != nil && e.GetType() != pdpb.ErrorType_OK {
			// PD answered; the stream is fine.
			failBatch(batch, &PDError{Type: e.GetType(), Message: e.GetMessage()})
			failures = 0
			continue
		}
		if resp.GetCount() != req.Count {
			cancel()
			stream = nil
			failures++
			failBatch(batch, fmt.Errorf("%w: TSO stream: asked for %d timestamps, got %d",
				ErrUnavailable, req.Count, resp.GetCount()))
			continue
		}
		failures = 0
		ts := resp.GetFirst()
		for i, r := range batch {
			r.finish(ts+uint64(i), nil)
			batch[i] = nil
		}
	}
}

// connect opens a stream scoped by c.life; stop ends it.
func (c *TSOClient) connect() (s pdpb.PD_TsoClient, stop context.CancelFunc, err error) {
	ctx, stop := context.WithCancel(c.life)
	s, err = c.pd.Tso(ctx)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

// collect appends first and every request already queued, up to MaxBatch,
// dropping (and answering) those whose caller has given up.
func (c *TSOClient) collect(batch []*tsoRequest, first *tsoRequest) []*tsoRequest {
	batch = c.appendLive(batch, first)
	for len(batch) < c.opts.MaxBatch {
		select {
		case r := <-c.reqCh:
			batch = c.appendLive(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (c *TSOClient) appendLive(batch []*tsoRequest, r *tsoRequest) []*tsoRequest {
	if err := r.ctx.Err(); err != nil {
		r.finish(0, fmt.Errorf("pdclient: get timestamp: %w", err))
		return batch
	}
	return append(batch, r)
}

func failBatch(batch []*tsoRequest, err error) {
	for i, r := range batch {
		r.finish(0, err)
		batch[i] = nil
	}
}

// failQueued answers what is left in the queue when the goroutine exits.
func (c *TSOClient) failQueued() {
	for {
		select {
		case r := <-c.reqCh:
			r.finish(0, ErrClosed)
		default:
			return
		}
	}
}

func (c *TSOClient) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// backoff is MinBackoff doubled n-1 times, capped at MaxBackoff.
func (c *TSOClient) backoff(n int) time.Duration {
	d := c.opts.MinBackoff
	for i := 1; i < n && d < c.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.opts.MaxBackoff)
}

// sleep waits d; false if the client is closing.
func (c *TSOClient) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closing:
		return false
	}
}
