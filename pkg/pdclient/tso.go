package pdclient

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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
	// DefaultTSOStallTimeout is how long a request on the Tso stream may go
	// unanswered before its member is given up on. A PD leader answers from
	// memory in well under a millisecond; its slowest legitimate answers
	// wait on etcd. A follower's refusal reads the leader's address (at most
	// 1 s). A leader that caught up with its persisted TSO window writes it
	// inline: an etcd request tried for two election timeouts (2 s with the
	// default 1 s) and failed at once when the leader's lease lapses
	// (leader_lease, 3 s by default, 2 s in the fault tests). So a member
	// silent for 3 s is hung (a disk stall under its etcd, a bug), not slow.
	// Shorter would abandon a leader busy with a slow window write, costing
	// a reconnect and a round of redirects for nothing; longer only delays
	// the move, while a group replacing a dead leader (lease + election
	// timeout, about 5-7 s) is waited for by the batch's 15 s of resends.
	DefaultTSOStallTimeout = 3 * time.Second
)

// TSOOptions tunes a TSOClient. The zero value is usable.
type TSOOptions struct {
	// MaxBatch caps the timestamps asked for in one stream request; 0 means
	// DefaultTSOMaxBatch. At most MaxTSOBatch.
	MaxBatch int
	// MinBackoff and MaxBackoff bound the wait between reconnect attempts,
	// which doubles from MinBackoff up to MaxBackoff; 0 means the defaults.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// StallTimeout bounds how long the batch in flight may go unanswered,
	// and how long opening a stream may take. When it runs out the stream
	// is cancelled, the member is taken for failed (MemberConn opens the
	// next stream on the next member, as after UNAVAILABLE) and the batch is
	// sent again on the new stream; its callers see a pause, not an error.
	// 0 means DefaultTSOStallTimeout. Keep it above PD's slowest legitimate
	// answer (see DefaultTSOStallTimeout): a member abandoned while it still
	// leads is simply asked again after the others name it.
	StallTimeout time.Duration
}

// Validate reports unusable options; zero fields are fine.
func (o TSOOptions) Validate() error {
	switch {
	case o.MaxBatch < 0 || o.MaxBatch > MaxTSOBatch:
		return fmt.Errorf("%w: MaxBatch %d, want 0..%d", ErrInvalidOptions, o.MaxBatch, MaxTSOBatch)
	case o.MinBackoff < 0 || o.MaxBackoff < 0:
		return fmt.Errorf("%w: negative backoff", ErrInvalidOptions)
	case o.StallTimeout < 0:
		return fmt.Errorf("%w: negative StallTimeout %v", ErrInvalidOptions, o.StallTimeout)
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
		o.MinBackoff = DefaultTSOMinBackoff
		if o.MaxBackoff > 0 {
			o.MinBackoff = min(o.MinBackoff, o.MaxBackoff)
		}
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultTSOMaxBackoff, o.MinBackoff)
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultTSOStallTimeout
	}
	return o
}

// TSOClient batches timestamp requests onto PD's Tso stream. It is safe for
// concurrent use. See the package documentation for batching and failures.
//
// Callers join the open batch under a mutex and take a slot in it; the
// stream goroutine takes whole batches, asks PD for one block per batch and
// answers all its callers at once by closing the batch's channel, so a
// request costs no channel operation of its own.
type TSOClient struct {
	pd   pdpb.PDClient
	opts TSOOptions

	mu sync.Mutex
	// queue holds the batches not yet taken by the stream goroutine, oldest
	// first; callers join the last one while it has room.
	queue []*tsoBatch
	// closed is set by the exiting stream goroutine: nobody joins afterwards,
	// so every batch that was joined gets answered.
	closed bool
	wake   chan struct{} // buffered 1: a batch was started

	// life scopes the streams: Close cancels it, which unblocks a stream
	// Recv or connect in progress.
	life      context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when the stream goroutine has exited
}

// tsoBatch is the requests answered by one TsoRequest. Slot i gets first+i.
type tsoBatch struct {
	n uint32 // slots taken; guarded by TSOClient.mu until the batch is taken
	// abandoned counts GetTS callers that gave up waiting; a batch whose
	// callers all gave up is not sent.
	abandoned atomic.Uint32
	done      chan struct{} // closed once first or err is set
	first     uint64
	err       error
	// failedAt is when a stream first broke under the batch (stream
	// goroutine only); zero while it has not.
	failedAt time.Time
}

func (b *tsoBatch) finish(first uint64, err error) {
	b.first, b.err = first, err
	close(b.done)
}

// NewTSOClient starts the stream goroutine; it connects in the background.
// pd is usually pdpb.NewPDClient(conn); the caller keeps ownership of conn.
func NewTSOClient(pd pdpb.PDClient, opts TSOOptions) (*TSOClient, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	life, cancel := context.WithCancel(context.Background())
	c := &TSOClient{
		pd:      pd,
		opts:    opts.withDefaults(),
		wake:    make(chan struct{}, 1),
		life:    life,
		cancel:  cancel,
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.run()
	return c, nil
}

// GetTS returns a new timestamp. It fails with the context's error (wrapped)
// when ctx ends first, an error matching ErrUnavailable when the stream broke
// under the request, a *PDError when PD refused, or ErrClosed.
func (c *TSOClient) GetTS(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, ctxError(err)
	}
	b, slot, err := c.join()
	if err != nil {
		return 0, err
	}
	if d := ctx.Done(); d != nil {
		select {
		case <-b.done:
		case <-d:
			b.abandoned.Add(1)
			return 0, ctxError(ctx.Err())
		}
	} else {
		<-b.done
	}
	if b.err != nil {
		return 0, b.err
	}
	return b.first + uint64(slot), nil
}

// TSFuture is a timestamp requested with GetTSAsync. It is a small value,
// free to copy.
type TSFuture struct {
	b    *tsoBatch
	slot uint32
	// ctx is the request's context, kept because Wait takes none.
	ctx context.Context
	err error
}

// Wait blocks until the timestamp arrives or the request's context ends,
// with the errors of GetTS. It may be called more than once.
func (f TSFuture) Wait() (uint64, error) {
	if f.err != nil {
		return 0, f.err
	}
	select {
	case <-f.b.done:
	case <-f.ctx.Done():
		select {
		case <-f.b.done: // both ready: the answer wins
		default:
			return 0, ctxError(f.ctx.Err())
		}
	}
	if f.b.err != nil {
		return 0, f.b.err
	}
	return f.b.first + uint64(f.slot), nil
}

// GetTSAsync requests a timestamp and returns at once; Wait on the future
// for it. ctx bounds the wait as in GetTS.
func (c *TSOClient) GetTSAsync(ctx context.Context) TSFuture {
	if err := ctx.Err(); err != nil {
		return TSFuture{err: ctxError(err)}
	}
	b, slot, err := c.join()
	if err != nil {
		return TSFuture{err: err}
	}
	return TSFuture{b: b, slot: slot, ctx: ctx}
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

func ctxError(err error) error { return fmt.Errorf("pdclient: get timestamp: %w", err) }

// join takes a slot in the open batch, starting a new one if there is none
// or it is full.
func (c *TSOClient) join() (*tsoBatch, uint32, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, 0, ErrClosed
	}
	var b *tsoBatch
	if n := len(c.queue); n > 0 && c.queue[n-1].n < uint32(c.opts.MaxBatch) {
		b = c.queue[n-1]
	} else {
		b = &tsoBatch{done: make(chan struct{})}
		c.queue = append(c.queue, b)
	}
	slot := b.n
	b.n++
	c.mu.Unlock()
	if slot == 0 {
		select {
		case c.wake <- struct{}{}:
		default: // the stream goroutine has a wake-up pending already
		}
	}
	return b, slot, nil
}

// take removes the oldest batch from the queue, or returns nil.
func (c *TSOClient) take() *tsoBatch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return nil
	}
	b := c.queue[0]
	n := copy(c.queue, c.queue[1:])
	c.queue[n] = nil
	c.queue = c.queue[:n]
	return b
}

// next waits for a batch with a caller still interested in it; nil when the
// client is closing.
func (c *TSOClient) next() *tsoBatch {
	for {
		b := c.take()
		if b == nil {
			select {
			case <-c.closing:
				return nil
			case <-c.wake:
				continue
			}
		}
		// n is final once taken; abandoned only grows.
		if b.abandoned.Load() >= b.n {
			b.finish(0, ctxError(context.Canceled))
			continue
		}
		return b
	}
}

// run owns the stream. It (re)connects, then repeatedly takes a batch,
// sends one TsoRequest for it and hands out the answer.
func (c *TSOClient) run() {
	var (
		stream   *tsoStream
		failures int       // consecutive failures since the last answer
		retry    *tsoBatch // a batch to send again on the next stream
		req      pdpb.TsoRequest
		resp     pdpb.TsoResponse
	)
	defer func() {
		if stream != nil {
			stream.close()
		}
		c.mu.Lock()
		c.closed = true
		queued := c.queue
		c.queue = nil
		c.mu.Unlock()
		for _, b := range queued {
			b.finish(0, ErrClosed)
		}
		close(c.done)
	}()
	for {
		if stream == nil {
			if failures > 1 && !c.sleep(c.backoff(failures-1)) {
				return
			}
			s, err := c.connect()
			if err != nil {
				if c.isClosing() {
					return
				}
				failures++
				continue
			}
			stream = s
		}

		b := retry
		retry = nil
		if b != nil && b.abandoned.Load() >= b.n {
			b.finish(0, ctxError(context.Canceled))
			b = nil
		}
		if b == nil {
			if b = c.next(); b == nil {
				return
			}
		}
		req.Count = b.n
		// The stall timer runs from the send to the answer: a member that
		// keeps the batch longer is hung, and the stream is cancelled under
		// the Recv (see tsoStream). Arming and stopping it per batch costs
		// no measurable CPU (BenchmarkTSO, one caller).
		stream.stall.Reset(c.opts.StallTimeout)
		err := stream.Send(&req)
		if err == nil {
			err = stream.RecvMsg(&resp)
		}
		// Stop is false when the timer fired: the stream is being
		// cancelled, even if the answer came in just before.
		fired := !stream.stall.Stop()
		if err != nil {
			if stream.stalled() {
				err = fmt.Errorf("no answer within the stall timeout %v: %w", c.opts.StallTimeout, err)
			}
			stream.close()
			stream = nil
			failures++
			if c.isClosing() {
				b.finish(0, ErrClosed)
				return
			}
			// Whatever PD answered, if anything, reached no caller: send
			// the batch again on the next stream (MemberConn opens it on
			// the leader a follower names, or on the next member, also
			// when this one stalled). Its timestamps then come from a
			// request sent after the failure, so they are above everything
			// handed out before it, by this leader or, after a failover,
			// by the last one.
			if b.failedAt.IsZero() {
				b.failedAt = time.Now()
			}
			if time.Since(b.failedAt) < batchRetryFor {
				retry = b
				continue
			}
			b.finish(0, fmt.Errorf("%w: TSO stream: %w", ErrUnavailable, err))
			continue
		}
		if fired {
			// The answer beat the stall cancellation by a hair; it is good,
			// but the stream is gone. The member did answer, so MemberConn
			// stays with it (it saw no error).
			stream.close()
			stream = nil
		}
		if err := headerError(resp.GetHeader()); err != nil {
			// PD answered; the member is fine.
			failures = 0
			b.finish(0, err)
			continue
		}
		if resp.GetCount() != req.Count {
			if stream != nil {
				stream.close()
				stream = nil
			}
			failures++
			b.finish(0, fmt.Errorf("%w: TSO stream: asked for %d timestamps, got %d",
				ErrUnavailable, req.Count, resp.GetCount()))
			continue
		}
		failures = 0
		b.finish(resp.GetFirst(), nil)
		c.letAnsweredRejoin(b.n)
	}
}

// batchRetryFor is how long a batch is sent again on new streams after the
// stream broke under it: long enough for a PD group to replace a dead
// leader (lease plus election, about 5–7 s with the defaults). Callers
// with a shorter deadline give up first.
const batchRetryFor = 15 * time.Second

// letAnsweredRejoin yields to the callers just answered before the next
// batch is taken: under load most of them come straight back, and catching
// them in the next batch instead of the one after roughly doubles the batch
// size. It stops as soon as a yield brings nobody new, so an idle or lightly
// loaded client loses at most one yield.
func (c *TSOClient) letAnsweredRejoin(answered uint32) {
	const maxYields = 16
	prev := -1
	for range maxYields {
		n := c.queued()
		if n >= int(answered) || n == prev {
			return
		}
		prev = n
		runtime.Gosched()
	}
}

// tsoStream is an open Tso stream with its stall timer.
type tsoStream struct {
	pdpb.PD_TsoClient
	ctx    context.Context
	cancel context.CancelCauseFunc
	// stall, armed while a batch is in flight (and while the stream is
	// opened), cancels ctx with errStreamStalled: the Recv blocked on the
	// hung member returns, and MemberConn, seeing that cause, moves the
	// next stream to another member. Any other end of the stream (close,
	// TSOClient.Close through c.life) cancels with context.Canceled, which
	// moves nothing.
	stall *time.Timer
}

func (s *tsoStream) stalled() bool { return stalled(s.ctx) }

// close ends the stream; its timer can no longer fire.
func (s *tsoStream) close() {
	s.stall.Stop()
	s.cancel(nil)
}

// connect opens a stream scoped by c.life. Opening it is bounded by the
// stall timeout too: gRPC waits for the connection to a member that
// accepted TCP but never completes the handshake (or drops the packets)
// for its 20 s connect timeout.
func (c *TSOClient) connect() (*tsoStream, error) {
	ctx, cancel := context.WithCancelCause(c.life)
	s := &tsoStream{ctx: ctx, cancel: cancel}
	s.stall = time.AfterFunc(c.opts.StallTimeout, func() { cancel(errStreamStalled) })
	st, err := c.pd.Tso(ctx)
	if !s.stall.Stop() && err == nil {
		// The timer fired as the stream opened: it may not have cancelled
		// ctx yet, but it will.
		err = fmt.Errorf("open TSO stream: %w", errStreamStalled)
	}
	if err != nil {
		s.close()
		return nil, err
	}
	s.PD_TsoClient = st
	return s, nil
}

// queued is the number of requests waiting in batches not yet sent.
func (c *TSOClient) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, b := range c.queue {
		n += int(b.n)
	}
	return n
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
