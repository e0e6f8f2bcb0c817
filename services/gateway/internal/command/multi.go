package command

import (
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// Transactions: MULTI queues commands, EXEC runs the queue as one backend
// transaction (one Update: on the embedded backend one batch under the
// latches of every key the queue and WATCH name; on the raft backend one
// Percolator transaction, whose reads are locked so that it is
// serializable), WATCH makes EXEC a no-op (a null reply) when a watched key
// was modified after WATCH.
//
// Commands that work on the whole keyspace (KEYS, SCAN, DBSIZE, FLUSHDB,
// FLUSHALL, RANDOMKEY) cannot run inside a transaction of named keys: EXEC
// runs them between the transactions of the commands before and after
// them, in order, so a queue holding one is atomic in parts (documented).

func init() {
	const (
		g = "transactions"
		f = flagNoScript | flagLoading | flagStale
	)
	register(
		&Command{Name: "multi", Arity: 1, Flags: f | flagFast, Group: g, Since: "1.2.0", Summary: "Starts a transaction.", Complexity: "O(1)", Handler: cmdMulti},
		&Command{Name: "exec", Arity: 1, Flags: f, Group: g, Since: "1.2.0", Summary: "Executes all commands in a transaction.", Complexity: "Depends on commands in the transaction", Handler: cmdExec},
		&Command{Name: "discard", Arity: 1, Flags: f | flagFast, Group: g, Since: "2.0.0", Summary: "Discards a transaction.", Complexity: "O(N), when N is the number of queued commands", Handler: cmdDiscard},
		&Command{Name: "watch", Arity: -2, Flags: f | flagFast, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "2.2.0", Summary: "Monitors changes to keys to determine the execution of a transaction.", Complexity: "O(1) for every key.", Handler: cmdWatch},
		&Command{Name: "unwatch", Arity: 1, Flags: f | flagFast, Group: g, Since: "2.2.0", Summary: "Forgets about watched keys of a transaction.", Complexity: "O(1)", Handler: cmdUnwatch},
	)
	for _, name := range []string{"keys", "scan", "dbsize", "flushdb", "flushall", "randomkey"} {
		table[name].keyspaceWide = true
	}
	// They carry a collection's elements to the destination.
	for _, name := range []string{"rename", "renamenx", "move", "copy", "dump", "restore"} {
		table[name].subKeys = true
	}
}

const (
	errNestedMulti    replyError = "ERR MULTI calls can not be nested"
	errExecNoMulti    replyError = "ERR EXEC without MULTI"
	errDiscardNoMulti replyError = "ERR DISCARD without MULTI"
	errWatchInMulti   replyError = "ERR WATCH inside MULTI is not allowed"
	errNotInMulti     replyError = "ERR Command not allowed inside a transaction"
	errExecAbort      replyError = "EXECABORT Transaction discarded because of previous errors."
)

// errWatchedKeyChanged aborts EXEC's transaction: its reply is a null array.
var errWatchedKeyChanged = errors.New("a watched key was modified")

// multiState is a client's transaction in the making.
type multiState struct {
	active bool
	// failed: a command was refused while queueing; EXEC answers EXECABORT.
	failed bool
	queue  [][][]byte
	bytes  int64
	// res is what the client's account (maxmemory-clients) counts of the
	// queue: Redis counts it too (multi-mem).
	res resp.Reservation
}

// notQueued are the commands a client in MULTI runs at once (Redis's list).
func notQueued(cmd *Command) bool {
	switch cmd.Name {
	case "multi", "exec", "discard", "watch", "quit", "reset":
		return true
	}
	return false
}

// queueCommand queues a command that dispatch checked as Redis does before
// queueing (existence, arity, authentication), or refuses it (too many
// queued bytes), which fails the transaction.
func (e *Executor) queueCommand(r *Request) error {
	m := &r.c.multi
	err := func() error {
		size := int64(0)
		for _, a := range r.Args {
			size += int64(len(a)) + 16
		}
		if limit := e.opts.QueryBufferLimit; limit > 0 && m.bytes+size > limit {
			return replyError("ERR the queued commands of this MULTI exceed client-query-buffer-limit (" + strconv.FormatInt(limit, 10) + " bytes)")
		}
		// The arguments alias the connection's read buffer: copy them into
		// one allocation.
		buf := make([]byte, 0, size)
		args := make([][]byte, len(r.Args))
		for i, a := range r.Args {
			buf = append(buf, a...)
			args[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
		}
		m.queue = append(m.queue, args)
		m.bytes += size
		return nil
	}()
	if err != nil {
		m.failed = true
		return err
	}
	if !m.res.Fit(r.w.Mem, int(m.bytes)+24*len(m.queue)) {
		// Evicted (maxmemory-clients): the server closes the client.
		r.w.Overflow()
		return nil
	}
	r.w.Simple("QUEUED")
	return nil
}

func (c *Client) resetMulti() {
	c.multi.res.Fit(c.Out.Mem, 0)
	c.multi = multiState{}
}

// >> MULTI
func cmdMulti(r *Request) error {
	if r.c.multi.active {
		return errNestedMulti
	}
	r.c.multi.active = true
	r.w.OK()
	return nil
}

// >> DISCARD
func cmdDiscard(r *Request) error {
	if !r.c.multi.active {
		return errDiscardNoMulti
	}
	r.c.resetMulti()
	r.e.watches.unwatchAll(r.c)
	r.w.OK()
	return nil
}

// >> WATCH key [key ...]
func cmdWatch(r *Request) error {
	if r.c.multi.active {
		return errWatchInMulti
	}
	if err := r.e.watches.watch(r, storedKeys(r.c.db, r.Args[1:])); err != nil {
		return err
	}
	if !r.c.watchRes.Fit(r.w.Mem, r.c.watchBytes) {
		// Evicted (maxmemory-clients): the server closes the client,
		// which forgets its watched keys.
		r.w.Overflow()
		return nil
	}
	r.w.OK()
	return nil
}

// watchKeyOverhead is what a watched key holds besides its bytes: its
// entries in the client's map and in the registry's.
const watchKeyOverhead = 128

// >> UNWATCH
func cmdUnwatch(r *Request) error {
	r.e.watches.unwatchAll(r.c)
	r.w.OK()
	return nil
}

// >> EXEC
// Reply: an array of the queued commands' replies (errors included: a
// command's error affects that command only), a null array if a watched
// key was modified, or EXECABORT if a command was refused while queueing.
func cmdExec(r *Request) error {
	c := r.c
	if !c.multi.active {
		return errExecNoMulti
	}
	m := c.multi
	c.resetMulti()
	defer r.e.watches.unwatchAll(c)
	if m.failed {
		return errExecAbort
	}
	if c.watchDirty.Load() {
		r.w.NullArray()
		return nil
	}
	// Split the queue where a keyspace-wide command stands alone.
	var parts [][][][]byte
	start := 0
	for i, args := range m.queue {
		if cmd := c.lookup(args[0]); cmd != nil && cmd.keyspaceWide {
			parts = append(parts, m.queue[start:i], m.queue[i:i+1])
			start = i + 1
		}
	}
	parts = append(parts, m.queue[start:])
	body := resp.Writer{Proto: r.w.Proto, Limit: r.w.Limit, OnError: r.w.OnError, Mem: r.w.Mem}
	defer body.Release() // what the client's account counted of it
	watched := c.watched
	for i, part := range parts {
		var err error
		if len(part) == 1 && c.lookup(part[0][0]) != nil && c.lookup(part[0][0]).keyspaceWide {
			err = r.execOne(&body, part[0], nil)
		} else if len(part) > 0 || (i == 0 && len(watched) > 0) {
			err = r.execAtomic(&body, part, watched)
		}
		watched = nil // checked by the first part
		if errors.Is(err, errWatchedKeyChanged) {
			r.w.NullArray()
			return nil
		}
		if err != nil {
			if i > 0 {
				// Earlier parts were committed: say so rather than pretend
				// nothing happened.
				return replyError("ERR EXEC stopped after " + strconv.Itoa(countCommands(parts[:i])) + " of its commands were applied: " + errorText(err))
			}
			return err
		}
		if body.Overflowed() {
			r.w.Overflow()
			return nil
		}
	}
	r.w.AdoptArray(&body, len(m.queue))
	return nil
}

func countCommands(parts [][][][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// errorText is err as the client would read it, without the "ERR " prefix.
func errorText(err error) string {
	var w resp.Writer
	writeError(&w, nil, "exec", err)
	b := w.Bytes()
	if len(b) > 3 {
		b = b[1 : len(b)-2]
	}
	if len(b) > 4 && string(b[:4]) == "ERR " {
		b = b[4:]
	}
	return string(b)
}

// execAtomic runs queued commands in one backend Update, replies appended
// to body. The Update may run its function more than once (the raft
// backend retries write conflicts): each run starts from body's mark.
func (r *Request) execAtomic(body *resp.Writer, queue [][][]byte, watched map[string]watchedKey) error {
	keys := make([][]byte, 0, len(queue)+len(watched))
	for k := range watched {
		keys = append(keys, []byte(k))
	}
	keys = append(keys, r.c.queueKeys(r.e, queue)...)
	mark := body.Len()
	db := r.c.db
	for _, args := range queue {
		if cmd := r.c.lookup(args[0]); cmd != nil && cmd.subKeys {
			r.subKeys = true
		}
	}
	opts := r.writeOpts()
	r.subKeys = false
	return r.e.be.Update(r.ctx, opts, keys, func(tx backend.Txn) error {
		body.Truncate(mark)
		// A queued SELECT changes the database of the commands after it;
		// a run again starts where the first did.
		r.c.setDB(db)
		x := &execTxn{Txn: tx, e: r.e, read: map[string]bool{}, written: map[string]bool{}}
		if err := r.e.watches.check(x, r.c, watched); err != nil {
			return err
		}
		for _, args := range queue {
			if err := r.execOne(body, args, x); err != nil {
				return err
			}
		}
		x.lockReads()
		return nil
	})
}

// execOne runs one queued command, inside x (nil: on its own), its reply or
// error appended to body. It returns only errors that must end the whole
// EXEC: the backend's (unavailable, conflict, closed), never a command's.
func (r *Request) execOne(body *resp.Writer, args [][]byte, x *execTxn) error {
	sub := Request{ctx: r.ctx, e: r.e, c: r.c, cmd: r.c.lookup(args[0]), Args: args, w: body, last: r.last, tx: x}
	mark := body.Len()
	start := time.Now()
	err := r.e.dispatch(&sub)
	outcome := callOK
	if sub.rejected {
		outcome = callRejected
	} else if err != nil {
		outcome = callFailed
	}
	// Each queued command counts, and is logged and monitored, as it runs,
	// as in Redis.
	r.e.afterCall(r.c, sub.statsCmd, args, time.Since(start), outcome)
	if r.c.replyOff {
		// CLIENT REPLY OFF ran earlier in this EXEC: as in Redis, the
		// replies after it are dropped, the array's header stays.
		body.Truncate(mark)
		return nil
	}
	if err == nil {
		return nil
	}
	var re replyError
	if errors.As(err, &re) || errors.Is(err, backend.ErrTooLarge) || errors.Is(err, backend.ErrNotSupported) {
		body.Truncate(mark)
		writeError(body, r.e.log, string(args[0]), err)
		return nil
	}
	return err
}

// keysOf returns the key arguments of args, as the table locates them (a
// container's subcommand's entry, for OBJECT ENCODING key).
func (c *Command) keysOf(args [][]byte) [][]byte {
	if len(args) > 1 {
		if sub := c.subcommand(args[1]); sub != nil {
			c = sub
		}
	}
	if c.keyFunc != nil {
		return c.keyFunc(args)
	}
	if c.FirstKey <= 0 || c.FirstKey >= len(args) {
		return nil
	}
	last := c.LastKey
	if last < 0 {
		last += len(args)
	}
	last = min(last, len(args)-1)
	step := max(c.Step, 1)
	var keys [][]byte
	for i := c.FirstKey; i <= last; i += step {
		keys = append(keys, args[i])
	}
	return keys
}

// execTxn is EXEC's view of its transaction: reads and writes go to the
// backend's Txn; it remembers which keys were read and written, so that the
// keys only read can be locked at the end (ReadLocker), and it tells the
// watch registry about every write.
type execTxn struct {
	backend.Txn
	e       *Executor
	read    map[string]bool
	written map[string]bool
}

func (x *execTxn) Get(key []byte) (backend.Value, bool, error) {
	x.read[string(key)] = true
	return x.Txn.Get(key)
}

func (x *execTxn) Head(key []byte) (backend.Head, bool, error) {
	x.read[string(key)] = true
	return x.Txn.Head(key)
}

func (x *execTxn) Set(key []byte, v backend.Value) {
	x.written[string(key)] = true
	x.e.watches.touch(key)
	x.Txn.Set(key, v)
}

func (x *execTxn) Delete(key []byte) {
	x.written[string(key)] = true
	x.e.watches.touch(key)
	x.Txn.Delete(key)
}

func (x *execTxn) lockReads() {
	l, ok := x.Txn.(backend.ReadLocker)
	if !ok {
		return
	}
	for k := range x.read {
		if !x.written[k] {
			l.LockRead([]byte(k))
		}
	}
}

// cmdTxn is one queued command's view inside EXEC: its writes are held
// apart until it succeeds, so a command that fails part way writes
// nothing, as outside a transaction.
type cmdTxn struct {
	outer  *execTxn
	writes map[string]*pendingWrite
	order  []string
}

type pendingWrite struct {
	v       backend.Value
	deleted bool
}

func (t *cmdTxn) Get(key []byte) (backend.Value, bool, error) {
	if p, ok := t.writes[string(key)]; ok {
		if p.deleted || p.v.Expired(t.Now()) {
			return backend.Value{}, false, nil
		}
		return p.v, true, nil
	}
	return t.outer.Get(key)
}

func (t *cmdTxn) Head(key []byte) (backend.Head, bool, error) {
	if p, ok := t.writes[string(key)]; ok {
		if p.deleted || p.v.Expired(t.Now()) {
			return backend.Head{}, false, nil
		}
		return backend.Head{Type: p.v.Type, ExpiresAt: p.v.ExpiresAt, Len: int64(len(p.v.Data))}, true, nil
	}
	return t.outer.Head(key)
}

func (t *cmdTxn) Set(key []byte, v backend.Value) { t.put(key, &pendingWrite{v: v}) }

func (t *cmdTxn) Delete(key []byte) { t.put(key, &pendingWrite{deleted: true}) }

func (t *cmdTxn) put(key []byte, p *pendingWrite) {
	k := string(key)
	if _, ok := t.writes[k]; !ok {
		t.order = append(t.order, k)
	}
	t.writes[k] = p
}

func (t *cmdTxn) Now() int64 { return t.outer.Now() }

// flush hands the command's writes to EXEC's transaction, after checking
// that the backend can store each value: a value too large fails this
// command, not the whole EXEC.
func (t *cmdTxn) flush() error {
	if c, ok := t.outer.e.be.(backend.ValueSizeChecker); ok {
		for _, k := range t.order {
			if p := t.writes[k]; !p.deleted {
				if err := c.CheckValueSize(int64(len(p.v.Data))); err != nil {
					return err
				}
			}
		}
	}
	for _, k := range t.order {
		if p := t.writes[k]; p.deleted {
			t.outer.Delete([]byte(k))
		} else {
			t.outer.Set([]byte(k), p.v)
		}
	}
	return nil
}

// watchedKey is what WATCH saw of a key.
type watchedKey struct {
	found     bool
	expiresAt int64
	// sum fingerprints the value (raft backend only: another gateway's
	// writes are seen by comparing what is stored).
	sum uint64
}

// watchRegistry tracks, like Redis's watched_keys, which clients watch
// which keys, so that a write through this gateway marks its watchers
// dirty while it holds the key (inside its transaction, before it
// commits). Writes through other gateways (raft backend) are found at EXEC
// by comparing what the key holds with what WATCH saw.
type watchRegistry struct {
	n    atomic.Int64 // watched (key, client) pairs; 0 makes touch free
	mu   sync.Mutex
	keys map[string]map[*Client]struct{}
	seed maphash.Seed
	// crossGateway: other gateways write the same data (raft backend).
	crossGateway bool
}

func newWatchRegistry(crossGateway bool) *watchRegistry {
	return &watchRegistry{keys: map[string]map[*Client]struct{}{}, seed: maphash.MakeSeed(), crossGateway: crossGateway}
}

// watch registers r's client as a watcher of keys (stored keys: a watched
// key is a database's) and records what each holds. It runs as a transaction over the keys (one that writes nothing):
// under the embedded backend's latches, a write of a key either committed
// before (and WATCH sees its value) or runs after the registration (and
// marks the client dirty); on the raft backend EXEC compares what WATCH
// read with what its own snapshot reads.
func (w *watchRegistry) watch(r *Request, keys [][]byte) error {
	c := r.c
	var fresh [][]byte
	for _, k := range keys {
		if _, ok := c.watched[string(k)]; !ok {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	return r.e.be.Update(r.ctx, backend.WriteOptions{DeferSync: true}, fresh, func(tx backend.Txn) error {
		states := make([]watchedKey, len(fresh))
		for i, k := range fresh {
			if w.crossGateway {
				v, ok, err := tx.Get(k)
				if err != nil {
					return err
				}
				if ok {
					states[i] = watchedKey{found: true, expiresAt: v.ExpiresAt, sum: w.sum(v)}
				}
				continue
			}
			h, ok, err := tx.Head(k)
			if err != nil {
				return err
			}
			if ok {
				states[i] = watchedKey{found: true, expiresAt: h.ExpiresAt}
			}
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if c.watched == nil {
			c.watched = map[string]watchedKey{}
		}
		for i, k := range fresh {
			ks := string(k)
			if _, ok := c.watched[ks]; ok {
				c.watched[ks] = states[i] // a retried run: the later snapshot
				continue
			}
			c.watched[ks] = states[i]
			c.watchBytes += len(ks) + watchKeyOverhead
			set := w.keys[ks]
			if set == nil {
				set = map[*Client]struct{}{}
				w.keys[ks] = set
			}
			set[c] = struct{}{}
			w.n.Add(1)
		}
		return nil
	})
}

func (w *watchRegistry) sum(v backend.Value) uint64 {
	var h maphash.Hash
	h.SetSeed(w.seed)
	h.WriteByte(byte(v.Type))
	_, _ = h.Write(v.Data)
	return h.Sum64()
}

// unwatchAll forgets c's watched keys and clears its dirty mark.
func (w *watchRegistry) unwatchAll(c *Client) {
	if len(c.watched) > 0 {
		w.mu.Lock()
		for k := range c.watched {
			if set := w.keys[k]; set != nil {
				delete(set, c)
				if len(set) == 0 {
					delete(w.keys, k)
				}
			}
			w.n.Add(-1)
		}
		w.mu.Unlock()
	}
	c.watched = nil
	c.watchDirty.Store(false)
	c.watchBytes = 0
	c.watchRes.Fit(c.Out.Mem, 0)
}

// touch marks every client watching key dirty.
func (w *watchRegistry) touch(key []byte) {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for c := range w.keys[string(key)] {
		c.watchDirty.Store(true)
	}
	w.mu.Unlock()
}

// watchedKeys lists every key some client watches (for FLUSHALL).
func (w *watchRegistry) watchedKeys() [][]byte {
	if w.n.Load() == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([][]byte, 0, len(w.keys))
	for k := range w.keys {
		keys = append(keys, []byte(k))
	}
	return keys
}

// check runs first inside EXEC's transaction: a watched key that was live
// at WATCH and has expired or gone since, or (raft backend) holds anything
// else than WATCH saw, aborts EXEC. On the raft backend the watched keys
// are also locked, so that a write committed by another gateway after this
// transaction's snapshot makes it conflict, run again and see the change.
func (w *watchRegistry) check(x *execTxn, c *Client, watched map[string]watchedKey) error {
	if c.watchDirty.Load() {
		return errWatchedKeyChanged
	}
	for k, was := range watched {
		key := []byte(k)
		if !w.crossGateway {
			if !was.found {
				continue
			}
			if _, ok, err := x.Txn.Head(key); err != nil {
				return err
			} else if !ok {
				return errWatchedKeyChanged
			}
			continue
		}
		v, ok, err := x.Txn.Get(key)
		if err != nil {
			return err
		}
		now := watchedKey{}
		if ok {
			now = watchedKey{found: true, expiresAt: v.ExpiresAt, sum: w.sum(v)}
		}
		if now != was {
			return errWatchedKeyChanged
		}
		x.read[k] = true
	}
	return nil
}

// touchTxn is the Txn of a write outside EXEC while some client watches
// keys: each write marks the key's watchers dirty, inside the transaction.
type touchTxn struct {
	backend.Txn
	w *watchRegistry
}

func (t touchTxn) Set(key []byte, v backend.Value) {
	t.w.touch(key)
	t.Txn.Set(key, v)
}

func (t touchTxn) Delete(key []byte) {
	t.w.touch(key)
	t.Txn.Delete(key)
}
