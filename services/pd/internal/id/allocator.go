package id

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nokv/nokv/services/pd/internal/storage"
)

// Step is the least number of ids reserved by one synced write.
const Step = 1000

var (
	// ErrInvalidCount is returned by Alloc for a count of 0.
	ErrInvalidCount = errors.New("id: invalid count")
	// ErrExhausted is returned by Alloc when the id space would overflow.
	ErrExhausted = errors.New("id: id space exhausted")
)

// Allocator hands out ids. It is safe for concurrent use. It holds no
// resources of its own and does not own the storage.
type Allocator struct {
	st *storage.Storage

	mu    sync.Mutex
	next  uint64 // next id to hand out
	limit uint64 // persisted mark: ids >= limit have not been handed out
}

// New loads the high-water mark from st. The first id handed out is above
// floor and at or above the mark. Nothing is written until the first Alloc.
func New(st *storage.Storage, floor uint64) (*Allocator, error) {
	mark, err := st.GetUint64(storage.KeyIDHighWater)
	if err != nil {
		return nil, fmt.Errorf("load id high-water mark: %w", err)
	}
	if floor == ^uint64(0) {
		return nil, fmt.Errorf("id floor %d: %w", floor, ErrExhausted)
	}
	next := max(mark, floor+1)
	// limit = next: the reservation starts empty, the first Alloc persists.
	return &Allocator{st: st, next: next, limit: next}, nil
}

// Alloc returns the first of count consecutive ids [first, first+count).
// It syncs a new mark to storage only when the current reservation does not
// cover the block; that write reserves max(Step, count) ids.
func (a *Allocator) Alloc(count uint32) (first uint64, err error) {
	if count == 0 {
		return 0, fmt.Errorf("%w: 0", ErrInvalidCount)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	end := a.next + uint64(count)
	if end < a.next {
		return 0, fmt.Errorf("alloc %d ids after %d: %w", count, a.next, ErrExhausted)
	}
	if end > a.limit {
		mark := a.next + max(Step, uint64(count))
		if mark < a.next {
			mark = end // near the top of the space reserve only what is asked
		}
		b := a.st.NewBatch()
		b.PutUint64(storage.KeyIDHighWater, mark)
		if err := b.Commit(); err != nil {
			return 0, fmt.Errorf("persist id high-water mark: %w", err)
		}
		a.limit = mark
	}
	first = a.next
	a.next = end
	return first, nil
}
