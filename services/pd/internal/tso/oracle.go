package tso

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nokv/nokv/services/pd/internal/storage"
)

// DefaultWindow is how far ahead of the issued physical time the high-water
// mark is persisted when Options.Window is zero. A restart after a crash skips
// at most this much time; a larger window means fewer synced writes.
const DefaultWindow = 3 * time.Second

var (
	// ErrClosed is returned by Get after Close.
	ErrClosed = errors.New("tso: oracle closed")
	// ErrInvalidCount is returned by Get for a count of 0 or above MaxCount.
	ErrInvalidCount = errors.New("tso: invalid count")
	// ErrInvalidOptions is returned by New for unusable Options.
	ErrInvalidOptions = errors.New("tso: invalid options")
)

// Options configures an Oracle. The zero value is usable.
type Options struct {
	// Window is how far ahead the high-water mark is persisted; 0 means
	// DefaultWindow. It must be at least a millisecond.
	Window time.Duration
	// Now is the wall clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
}

// Oracle issues timestamps. It is safe for concurrent use. It does not own
// the storage: close the Oracle before closing the storage.
type Oracle struct {
	st     *storage.Storage
	now    func() time.Time
	window int64 // ms

	// next is the next timestamp to issue if the physical time stays put.
	// It only grows, by compare-and-swap.
	next atomic.Uint64
	// limit is the persisted high-water mark: no issued timestamp has a
	// physical part >= limit. It is stored only after the mark is synced.
	limit atomic.Int64

	saveMu sync.Mutex // serialises persisting the mark

	kick      chan struct{} // asks the saver to extend the mark; buffered 1
	stop      chan struct{}
	wg        sync.WaitGroup
	closed    atomic.Bool
	closeOnce sync.Once
}

// New loads the high-water mark from st, persists a new one a window ahead of
// the starting physical time and starts the background saver.
func New(st *storage.Storage, opts Options) (*Oracle, error) {
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.Window < time.Millisecond {
		return nil, fmt.Errorf("%w: window %v is below 1ms", ErrInvalidOptions, opts.Window)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	o := &Oracle{
		st:     st,
		now:    opts.Now,
		window: opts.Window.Milliseconds(),
		kick:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	saved, err := st.GetUint64(storage.KeyTSOHighWater)
	if err != nil {
		return nil, fmt.Errorf("load TSO high-water mark: %w", err)
	}
	if saved > uint64(maxPhysical) {
		return nil, fmt.Errorf("load TSO high-water mark: %d ms is beyond the timestamp range: corrupt", saved)
	}
	// Everything issued before has physical < saved, so starting at saved
	// would do; one more millisecond keeps a margin for free.
	phys := max(o.nowMs(), int64(saved)+1)
	if err := o.persist(phys + o.window); err != nil {
		return nil, err
	}
	o.next.Store(Compose(phys, 0))
	o.wg.Add(1)
	go o.saver()
	return o, nil
}

// Get returns the first of count consecutive timestamps [first, first+count),
// all with the same physical part. count must be in 1..MaxCount. Every
// timestamp returned is greater than every one returned before by this
// Oracle or, across restarts, by any Oracle on the same storage.
func (o *Oracle) Get(count uint32) (first uint64, err error) {
	if count == 0 || count > MaxCount {
		return 0, fmt.Errorf("%w: %d, want 1..%d", ErrInvalidCount, count, MaxCount)
	}
	for {
		if o.closed.Load() {
			return 0, ErrClosed
		}
		cur := o.next.Load()
		phys, logical := Physical(cur), Logical(cur)
		if now := o.nowMs(); now > phys {
			phys, logical = now, 0
		}
		if uint64(logical)+uint64(count) > MaxCount {
			// This millisecond is used up: take the next one rather than
			// wait for the clock.
			phys, logical = phys+1, 0
		}
		limit := o.limit.Load()
		if phys >= limit {
			if err := o.extend(phys); err != nil {
				return 0, err
			}
			continue
		}
		first = Compose(phys, logical)
		// first+count may carry into the physical bits when the block ends
		// the millisecond; that is exactly the next free timestamp.
		if !o.next.CompareAndSwap(cur, first+uint64(count)) {
			continue
		}
		if limit-phys <= o.window/2 {
			select {
			case o.kick <- struct{}{}:
			default: // a kick is already pending
			}
		}
		return first, nil
	}
}

// Close stops the background saver. Get fails with ErrClosed afterwards.
// Close does not close the storage.
func (o *Oracle) Close() {
	o.closeOnce.Do(func() {
		o.closed.Store(true)
		close(o.stop)
		o.wg.Wait()
	})
}

func (o *Oracle) nowMs() int64 { return o.now().UnixMilli() }

// extend makes sure the persisted mark is above phys; it is the slow path of
// a Get that caught up with the mark.
func (o *Oracle) extend(phys int64) error {
	o.saveMu.Lock()
	defer o.saveMu.Unlock()
	if o.closed.Load() {
		// Close came while this Get waited for the saver: the leadership
		// it served may be over, and a write now would be made without it.
		return ErrClosed
	}
	if o.limit.Load() > phys {
		return nil // someone else extended it meanwhile
	}
	return o.persist(max(phys, o.nowMs()) + o.window)
}

// saver extends the mark in the background when Get reports that the issued
// physical time got within half a window of it.
func (o *Oracle) saver() {
	defer o.wg.Done()
	for {
		select {
		case <-o.stop:
			return
		case <-o.kick:
		}
		o.saveMu.Lock()
		target := max(Physical(o.next.Load()), o.nowMs()) + o.window
		if target > o.limit.Load() {
			// An error here is not lost: a Get that reaches the old mark
			// retries the write inline and returns its error.
			_ = o.persist(target)
		}
		o.saveMu.Unlock()
	}
}

// persist syncs mark to storage and then publishes it as the limit. Callers
// hold saveMu, except New, which runs before anything else can.
func (o *Oracle) persist(mark int64) error {
	if mark > maxPhysical {
		return fmt.Errorf("persist TSO high-water mark: %d ms is beyond the timestamp range", mark)
	}
	b := o.st.NewBatch()
	b.PutUint64(storage.KeyTSOHighWater, uint64(mark))
	if err := b.Commit(); err != nil {
		return fmt.Errorf("persist TSO high-water mark: %w", err)
	}
	o.limit.Store(mark)
	return nil
}
