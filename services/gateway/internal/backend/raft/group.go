package raft

import (
	"math"
	"sync"
	"time"
)

// waiter is what every caller queued in a group (a write's queued, a
// read's readReq) carries: the signal that wakes it, and whether it was
// woken to lead the next combined request rather than with its answer.
type waiter struct {
	wake chan struct{}
	lead bool
}

func (w *waiter) base() *waiter { return w }

// waitable is a caller a group queues: a pointer to a struct embedding
// waiter.
type waitable interface{ base() *waiter }

// group queues one region's callers of one kind of combined request
// (writes: combine.go; reads of values or heads: readcombine.go). A few
// combined requests run at once (maxInFlight writes, maxReadsInFlight
// reads), each led by one of its callers; the others wait in the queue until a leader takes them or
// makes one of them the next leader.
type group[T waitable] struct {
	mu       sync.Mutex
	queue    []T
	inFlight int
	// gathering: a leader is waiting for company (gather); callers
	// arriving meanwhile queue behind it instead of leading a request of
	// their own in the free slot.
	gathering bool
	// gathered, while a leader gathers, is closed once want callers
	// queued: the leader stops waiting as soon as the callers it expects
	// are all back.
	gathered chan struct{}
	want     int
	// lastSize and lastDone describe the last combined request that
	// finished: how many callers it answered and when; peak is the most
	// callers recent requests answered (decaying by an eighth a request).
	lastSize int
	lastDone time.Time
	peak     int
}

// recentlyBusy is how long after a combined request of several callers
// finished a lone leader still expects them back (gather): about the time
// a client takes to receive its answer and send its next request.
const recentlyBusy = 2 * time.Millisecond

// fewCallers: up to this many callers per request, a gathering leader
// stops waiting once the callers it expects are queued (take).
const fewCallers = 8

// join queues q, or makes it a leader at once (q.lead set, true returned)
// if fewer than limit combined requests are in flight and no leader is
// gathering.
func (g *group[T]) join(q T, limit int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight < limit && !g.gathering {
		g.inFlight++
		q.base().lead = true
		return true
	}
	g.queue = append(g.queue, q)
	if g.gathered != nil && len(g.queue) >= g.want {
		close(g.gathered)
		g.gathered = nil
	}
	return false
}

// take returns the leader's batch: self, then the queued callers in order
// while fits accepts them (fits is called once per caller, in order, until
// it refuses one). A leader that finds no one queued while company is
// likely waits for it first: while another combined request of the region
// is in flight (under load the callers it answers come back together, and
// one that went first would make a request of its own, then the rest
// another: every other request a lone one), or when the last one to
// finish, moments ago, answered several callers (they come back together
// too, and the first of them would find the region idle). The wait lasts
// gatherWait; when recent requests answered only a few callers, it ends
// as soon as as many are queued (a pair of clients does not wait out
// gatherWait for each other). An idle region never waits: nothing in
// flight, and the last request long ago or a lone caller's own.
func (g *group[T]) take(self T, fits func(T) bool) []T {
	g.mu.Lock()
	if len(g.queue) == 0 && !g.gathering &&
		(g.inFlight > 1 || g.lastSize > 1 && time.Since(g.lastDone) < recentlyBusy) {
		// With a few callers about, the wait ends once as many as recent
		// requests answered (besides this one) are queued: it would
		// otherwise be most of their latency. With many, it lasts
		// gatherWait, short beside their latency, and gathers more
		// (stragglers of earlier rounds too).
		want := math.MaxInt
		if g.peak <= fewCallers {
			want = max(g.peak-1, 1)
		}
		gathered := make(chan struct{})
		g.gathering, g.gathered, g.want = true, gathered, want
		g.mu.Unlock()
		t := time.NewTimer(gatherWait)
		select {
		case <-gathered:
		case <-t.C:
		}
		t.Stop()
		g.mu.Lock()
		g.gathering, g.gathered = false, nil
	}
	n := 0
	for n < len(g.queue) && fits(g.queue[n]) {
		n++
	}
	batch := make([]T, 0, n+1)
	batch = append(append(batch, self), g.queue[:n]...)
	rest := copy(g.queue, g.queue[n:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
	g.mu.Unlock()
	return batch
}

// handOff ends a leader's combined request of batch: it makes the first
// queued caller the next leader (the slot passes to it) or gives the slot
// back, then wakes the callers the batch answered (every field of theirs
// is set before).
func (g *group[T]) handOff(batch []T) {
	g.mu.Lock()
	g.lastSize, g.lastDone = len(batch), time.Now()
	g.peak = max(len(batch), g.peak-g.peak/8)
	if len(g.queue) > 0 {
		next := g.queue[0]
		rest := copy(g.queue, g.queue[1:])
		var zero T
		g.queue[rest] = zero
		g.queue = g.queue[:rest]
		next.base().lead = true
		next.base().wake <- struct{}{}
	} else {
		g.inFlight--
	}
	g.mu.Unlock()
	for _, q := range batch[1:] {
		q.base().wake <- struct{}{}
	}
}
