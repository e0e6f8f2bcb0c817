package command

import (
	"container/list"
	"context"
	"errors"
	"math"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP; BZPOPMIN,
// BZPOPMAX, BZMPOP in zsets_blocking.go) first try once, like their
// non-blocking forms. If there is nothing to pop the handler writes no
// reply: it leaves a blockState on the client (Client.Blocked), and the
// server calls Executor.Wait off its event loop (the event loop) or on the
// connection's goroutine (redcon's server).
//
// Wait registers the client in a per-gateway registry of waiters by stored
// key (db and key), in arrival order. Every command that may make a
// waited-on key non-empty names it with Request.signalKeyAsReady inside its
// transaction; once the command (or the EXEC holding it) has committed,
// ExecAt hands the keys to the registry, which wakes the first waiter of
// each key only: Redis serves the client that has waited longest. The
// woken waiter retries its pop in a transaction; if it popped and the key
// still holds elements, or if it leaves without having used a wake-up (it
// timed out, was unblocked, was killed, its connection went away), it
// passes the wake-up on to the next waiter of the key. A waiter that lost
// the race (another client popped first) simply waits on, in its place.
//
// On the raft backend other gateways push too, and nothing tells this one:
// a poller wakes the first waiter of every waited-on key every
// Options.BlockPoll (100 ms by default), so that a push made elsewhere is
// served within that bound. The poller leaves alone the keys a command of
// this gateway has marked ready and not yet flushed (pending): that
// command wakes their waiters itself once it committed, in the order it
// made them ready, where a poll would wake them in no particular order (a
// client blocked on a and b after MULTI; ZADD b; ZADD a; EXEC must be
// served from b, as Redis does). A waiter also leaves pending keys out of
// an attempt, for a poll that woke it just before the mark.

// blockOp is what a blocked command retries.
type blockOp struct {
	// keys are the stored keys waited on, in argument order.
	keys [][]byte
	// try attempts the command on the keys at positions order (in that
	// order) and, if it is served, writes its reply; more reports that the
	// key it popped from still holds elements. blocked says it is retried
	// while blocked: a key of the wrong type is then skipped (Redis leaves
	// such a client blocked) instead of failing the command.
	try func(r *Request, order []int, blocked bool) (served, more bool, err error)
	// timeout is how long to wait; 0 waits forever.
	timeout time.Duration
}

// blockState is a client's blocked command, from its handler to the end of
// Wait.
type blockState struct {
	op   blockOp
	cmd  *Command
	args [][]byte
	// res is args' share of the client's memory account.
	res resp.Reservation
	// silent: the reply is dropped (CLIENT REPLY OFF or SKIP when the
	// command was called).
	silent bool
	// stop is closed by CLIENT UNBLOCK or CLIENT KILL; why says which.
	stop     chan struct{}
	stopOnce sync.Once
	why      atomic.Int32
}

// Reasons a blocked command is stopped from outside (blockState.why).
const (
	unblockTimeout int32 = iota + 1
	unblockError
	unblockKilled
)

func (b *blockState) interrupt(why int32) bool {
	done := false
	b.stopOnce.Do(func() {
		b.why.Store(why)
		close(b.stop)
		done = true
	})
	return done
}

// errUnblocked is what CLIENT UNBLOCK ... ERROR makes the blocked command
// reply (Redis sends it with this code, not ERR).
const errUnblocked replyError = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

// ErrBlockedClientGone ends Wait when the client's connection went away or
// it was killed while blocked: the server closes it, nothing is sent.
var ErrBlockedClientGone = errors.New("command: blocked client went away")

// errRetry says a blocked command's attempt lost to other writers and must
// be made again.
var errRetry = errors.New("command: blocked command must try again")

// waiter is one blocked client in the registry.
type waiter struct {
	keys  []string
	elems []*list.Element
	// ready lists the positions of keys the registry signalled since the
	// waiter last looked (guarded by the registry's mutex); wake has a
	// token when ready is not empty.
	ready []int
	wake  chan struct{}
}

// blockRegistry is the gateway's waiters by stored key.
type blockRegistry struct {
	mu     sync.Mutex
	queues map[string]*list.List
	// n counts registered waiters (signalKeyAsReady skips the registry
	// while there are none); shown counts blocked clients (INFO
	// blocked_clients): a waiter is shown once its first attempt after
	// registering found nothing, so that a client seen blocked is one a
	// later push serves in the order keys became ready, as in Redis (a
	// push racing that attempt would otherwise be served in argument
	// order); timed counts those with a timeout (clients_in_timeout_table).
	n, shown, timed atomic.Int64
	// poll, when positive, is how often every key's first waiter is woken
	// to look (raft: pushes through other gateways); polling says the
	// poller runs.
	poll    time.Duration
	polling bool
	// pollStop ends the poller once no one waits.
	pollStop chan struct{}
	// pending counts, per stored key, the marks (signalKeyAsReady) of
	// commands not yet flushed (flushReady); guarded by mu.
	pending map[string]int
}

func newBlockRegistry(poll time.Duration) *blockRegistry {
	return &blockRegistry{queues: map[string]*list.List{}, poll: poll, pending: map[string]int{}}
}

// add registers a waiter on keys (stored keys), last in every key's queue.
func (g *blockRegistry) add(keys [][]byte) *waiter {
	w := &waiter{keys: make([]string, len(keys)), elems: make([]*list.Element, len(keys)), wake: make(chan struct{}, 1)}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, k := range keys {
		w.keys[i] = string(k)
		q := g.queues[w.keys[i]]
		if q == nil {
			q = list.New()
			g.queues[w.keys[i]] = q
		}
		w.elems[i] = q.PushBack(w)
	}
	g.n.Add(1)
	if g.poll > 0 && !g.polling {
		g.polling = true
		g.pollStop = make(chan struct{})
		go g.pollLoop(g.pollStop)
	}
	return w
}

// remove unregisters w. Wake-ups it received and did not use, and the key
// it served from if that still holds elements (passOn), go to the next
// waiters.
func (g *blockRegistry) remove(w *waiter, passOn string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, k := range w.keys {
		if w.elems[i] == nil {
			continue // a key named twice: removed with its first position
		}
		q := g.queues[k]
		q.Remove(w.elems[i])
		if q.Len() == 0 {
			delete(g.queues, k)
		}
	}
	g.n.Add(-1)
	if len(g.queues) == 0 && g.polling {
		g.polling = false
		close(g.pollStop)
	}
	for _, i := range w.ready {
		g.signalLocked(w.keys[i])
	}
	w.ready = nil
	if passOn != "" {
		g.signalLocked(passOn)
	}
}

// signal wakes the first waiter of each of keys (stored keys).
func (g *blockRegistry) signal(keys [][]byte) {
	if g.n.Load() == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		g.signalLocked(string(k))
	}
}

// signalDBs wakes the first waiter of every waited-on key of databases a
// and b (SWAPDB).
func (g *blockRegistry) signalDBs(a, b uint32) {
	if g.n.Load() == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.queues {
		if db := keyspace.DB([]byte(k)); db == a || db == b {
			g.signalLocked(k)
		}
	}
}

func (g *blockRegistry) signalLocked(key string) {
	q := g.queues[key]
	if q == nil {
		return
	}
	w := q.Front().Value.(*waiter)
	for i, k := range w.keys {
		if k != key {
			continue
		}
		for _, j := range w.ready {
			if j == i {
				return // already told
			}
		}
		w.ready = append(w.ready, i)
		break
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// markPending records that a command of this gateway may make key ready and
// will flush it (flushPending) once it returned.
func (g *blockRegistry) markPending(key []byte) {
	g.mu.Lock()
	g.pending[string(key)]++
	g.mu.Unlock()
}

// flushPending wakes the first waiter of each of keys, in order, and drops
// their marks (markPending): one per key named, as marked.
func (g *blockRegistry) flushPending(keys [][]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, k := range keys {
		key := string(k)
		g.signalLocked(key)
		if n := g.pending[key]; n > 1 {
			g.pending[key] = n - 1
		} else {
			delete(g.pending, key)
		}
	}
}

// dropPending removes from order the positions of w's keys that a command
// of this gateway has marked and not flushed: it will wake w for them.
func (g *blockRegistry) dropPending(w *waiter, order []int) []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		return order
	}
	out := order[:0]
	for _, i := range order {
		if g.pending[w.keys[i]] == 0 {
			out = append(out, i)
		}
	}
	return out
}

// take returns (and clears) the positions of w's keys signalled since the
// last take, in the order they were signalled.
func (g *blockRegistry) take(w *waiter) []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := w.ready
	w.ready = nil
	return r
}

// pollLoop wakes the first waiter of every waited-on key every g.poll, until
// stop is closed (no one waits).
func (g *blockRegistry) pollLoop(stop chan struct{}) {
	t := time.NewTicker(g.poll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		g.pollOnce()
	}
}

// pollOnce wakes the first waiter of every waited-on key but those a
// command of this gateway is about to wake (pending).
func (g *blockRegistry) pollOnce() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k := range g.queues {
		if g.pending[k] == 0 {
			g.signalLocked(k)
		}
	}
}

// signalKeyAsReady records that this command may have made key (a Redis key
// of the client's database) hold something a blocked client waits for: a
// list pushed to, a sorted set added to (ZADD, ZINCRBY, a STORE), or either
// created by RESTORE, RENAME, MOVE, COPY. It may be called inside the
// command's transaction, even if that runs more than once: the waiters are
// woken by ExecAt once the command (or the EXEC holding it) returned, i.e.
// committed.
func (r *Request) signalKeyAsReady(key []byte) {
	if r.e.blocking.n.Load() == 0 {
		return
	}
	stored := keyspace.Key(r.c.db, key)
	r.e.blocking.markPending(stored)
	r.c.ready = append(r.c.ready, stored)
}

// signalStoredKeyAsReady is signalKeyAsReady for a stored key (MOVE and COPY
// write to another database).
func (r *Request) signalStoredKeyAsReady(stored []byte) {
	if r.e.blocking.n.Load() == 0 {
		return
	}
	stored = bytesClone(stored)
	r.e.blocking.markPending(stored)
	r.c.ready = append(r.c.ready, stored)
}

// flushReady wakes the waiters of the keys c's last command made ready.
func (e *Executor) flushReady(c *Client) {
	if len(c.ready) == 0 {
		return
	}
	e.blocking.flushPending(c.ready)
	clear(c.ready)
	c.ready = c.ready[:0]
}

// block makes the handler's command wait: nothing is replied now, the
// server calls Wait. Inside EXEC, which never blocks, the command replies
// what it replies at a timeout instead (nullArray: a null array, else a
// null bulk), as Redis does.
func (r *Request) block(op blockOp, nullArray bool) error {
	if r.tx != nil {
		if nullArray {
			r.w.NullArray()
		} else {
			r.w.Null()
		}
		return nil
	}
	// The command is kept (copied: the parser moves on) for as long as it
	// waits, forever with a timeout of 0: the copy counts against
	// maxmemory-clients, so that many clients blocking on keys of
	// hundreds of MB fit the budget too.
	size := 0
	for _, a := range r.Args {
		size += len(a) + 24
	}
	var res resp.Reservation
	if !res.Fit(r.w.Mem, size) {
		// Evicted (maxmemory-clients): the server closes the client.
		r.w.Overflow()
		return nil
	}
	args := make([][]byte, len(r.Args))
	for i, a := range r.Args {
		args[i] = bytesClone(a)
	}
	b := &blockState{op: op, cmd: r.cmd, args: args, res: res, stop: make(chan struct{}), silent: r.c.replyOff || r.c.replySkip}
	r.c.mu.Lock()
	r.c.block = b
	r.c.mu.Unlock()
	return nil
}

// Blocked reports whether c's last command is waiting: the server must call
// Wait before it runs c's next command.
func (c *Client) Blocked() bool { return c.block != nil }

// Wait waits until c's blocked command is served (its reply in c.Out), times
// out (a null array), is unblocked (CLIENT UNBLOCK), or ctx ends. gone, if
// set, tells whether c's connection went away; Wait asks it before every
// attempt, so that nothing is popped for a client that left, and every
// goneEvery if that is positive (a server that cannot be told otherwise).
// It returns ErrBlockedClientGone (or ctx's error) when the client must be
// closed without a reply, or an error of the final Sync.
func (e *Executor) Wait(ctx context.Context, c *Client, gone func() bool, goneEvery time.Duration) error {
	b := c.block
	if b == nil {
		return nil
	}
	defer func() {
		c.mu.Lock()
		c.block = nil
		c.mu.Unlock()
		b.res.Fit(c.Out.Mem, 0)
	}()
	if c.dirty {
		// Writes before the blocked command were acknowledged with a
		// deferred fsync; their replies are going out now.
		c.dirty = false
		if err := e.be.Sync(ctx); err != nil {
			return err
		}
	}
	if b.silent {
		mark := c.Out.Len()
		defer c.Out.Truncate(mark)
	}
	w := e.blocking.add(b.op.keys)
	if b.op.timeout > 0 {
		e.blocking.timed.Add(1)
		defer e.blocking.timed.Add(-1)
	}
	passOn := ""
	shown := false
	defer func() {
		if shown {
			e.blocking.shown.Add(-1)
		}
		e.blocking.remove(w, passOn)
	}()
	var timeout <-chan time.Time
	if b.op.timeout > 0 {
		t := time.NewTimer(b.op.timeout)
		defer t.Stop()
		timeout = t.C
	}
	var tick <-chan time.Time
	if gone != nil && goneEvery > 0 {
		t := time.NewTicker(goneEvery)
		defer t.Stop()
		tick = t.C
	}
	// The first attempt after registering covers a push that committed
	// between the handler's attempt and the registration.
	order := make([]int, len(b.op.keys))
	for i := range order {
		order[i] = i
	}
	for {
		order = e.blocking.dropPending(w, order)
		if len(order) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if c.killed.Load() || gone != nil && gone() {
				return ErrBlockedClientGone
			}
			served, more, key, err := e.tryBlocked(ctx, c, b, order)
			if errors.Is(err, errRetry) {
				e.blocking.signal(b.op.keys)
				err = nil
			}
			if err != nil {
				return err // ctx ended during the attempt
			}
			if served {
				if more {
					passOn = string(b.op.keys[key])
				}
				return nil
			}
		}
		if !shown {
			shown = true
			e.blocking.shown.Add(1)
		}
		order = nil
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.stop:
			switch b.why.Load() {
			case unblockTimeout:
				c.Out.NullArray()
				return nil
			case unblockError:
				c.Out.Error(string(errUnblocked))
				return nil
			}
			return ErrBlockedClientGone
		case <-timeout:
			c.Out.NullArray()
			return nil
		case <-w.wake:
			order = e.blocking.take(w)
		case <-tick:
			if gone() {
				return ErrBlockedClientGone
			}
		}
	}
}

// tryBlocked runs one attempt of b's command on the keys at positions order.
// A command error is written as the reply (served); only ctx's end is
// returned, and errRetry when other writers kept winning.
func (e *Executor) tryBlocked(ctx context.Context, c *Client, b *blockState, order []int) (served, more bool, key int, err error) {
	r := &Request{ctx: ctx, e: e, c: c, cmd: b.cmd, Args: b.args, w: &c.Out, last: true, statsCmd: b.cmd}
	mark := c.Out.Len()
	served, more, err = b.op.try(r, order, true)
	defer e.flushReady(c)
	if err != nil {
		c.Out.Truncate(mark)
		if ctx.Err() != nil {
			return false, false, 0, err
		}
		if errors.Is(err, backend.ErrConflict) {
			// Other writers kept winning (the raft backend gave up after
			// its retries); nothing was popped: wait on, and try again.
			return false, false, 0, errRetry
		}
		writeError(&c.Out, e.log, b.cmd.Name, err)
		return true, false, 0, nil
	}
	if served {
		key = r.servedKey
	}
	return served, more, key, nil
}

// Unblock is CLIENT UNBLOCK's work: it stops the blocked command of the
// client id with a timeout's reply or (asError) the UNBLOCKED error. It
// reports whether that client was blocked.
func (e *Executor) unblock(id int64, asError bool) bool {
	e.clientsMu.Lock()
	c := e.clients[id]
	e.clientsMu.Unlock()
	if c == nil {
		return false
	}
	c.mu.Lock()
	b := c.block
	c.mu.Unlock()
	if b == nil {
		return false
	}
	why := unblockTimeout
	if asError {
		why = unblockError
	}
	return b.interrupt(why)
}

// BlockedClients is the number of clients blocked (INFO blocked_clients).
func (e *Executor) BlockedClients() int64 { return e.blocking.shown.Load() }

// blockTimeout parses a blocking command's timeout as Redis 7.0.15 does:
// seconds as a long double, times 1000, rounded up (ceill), cast to a long
// long (on x86-64 a value past its range becomes LLONG_MIN, hence
// "negative"); 0 waits forever, and so does anything in (-0.001, 0].
// Redis then adds the current time, and a deadline that overflows never
// comes: a timeout too large for a time.Duration waits forever here too.
func blockTimeout(arg []byte) (time.Duration, error) {
	f, ok := parseLongDouble(arg)
	if !ok {
		return 0, replyError("ERR timeout is not a float or out of range")
	}
	const errNegative replyError = "ERR timeout is negative"
	if f.IsInf() {
		return 0, errNegative
	}
	ms := new(big.Float).SetPrec(longDoublePrec).SetMode(big.ToNearestEven).Mul(f, big.NewFloat(1000))
	if ms.Cmp(new(big.Float).SetMantExp(big.NewFloat(1), 63)) >= 0 {
		return 0, errNegative
	}
	i, acc := ms.Int64() // towards zero; below the range: MinInt64
	if acc == big.Below {
		// A positive fraction: ceill rounds it up.
		if i == math.MaxInt64 {
			return 0, errNegative
		}
		i++
	}
	if i < 0 {
		return 0, errNegative
	}
	if i > math.MaxInt64/int64(time.Millisecond) {
		return 0, nil
	}
	return time.Duration(i) * time.Millisecond, nil
}
