package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// Options configures an Executor.
type Options struct {
	// RequirePass, when set, makes clients AUTH before anything else.
	RequirePass string
	// MaxBulkLen caps the size of a string a command may create (proto-max-bulk-len).
	MaxBulkLen int64
	// MaxClients is reported by CONFIG GET and INFO; the server enforces it.
	MaxClients int
	// QueryBufferLimit and OutputBufferLimit (hard, soft, soft seconds for
	// normal clients) are reported by CONFIG GET; the server enforces them.
	QueryBufferLimit  int64
	OutputBufferLimit [3]int64
	// ClientMemory is the budget over all clients' buffers
	// (maxmemory-clients), reported by CONFIG GET and INFO; the server
	// gives each client its account. Nil: no bound.
	ClientMemory *resp.ClientMemory
	// MemoryLimit is the memory the process may use (0: unknown): CONFIG
	// SET maxmemory-clients N% takes its percentage of it.
	MemoryLimit int64
	// SyncPolicy is reported by CONFIG GET appendfsync and INFO persistence.
	SyncPolicy string
	// Addr is the listen address reported by INFO and CONFIG GET.
	Addr string
	// Backend names the backend kind in INFO ("embedded", "raft").
	Backend string
	// Databases is the number of logical databases (0: DefaultDatabases).
	Databases int
	// Now is the clock (nil: wall clock). Tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
	// Observe, if set, is called after every command with its table entry, its
	// duration and whether it replied with an error.
	Observe func(cmd *Command, d time.Duration, failed bool)
	// OnPanic, if set, is called after a command panicked (and was contained).
	OnPanic func()
	// BlockPoll, when positive, is how often a blocked command (BLPOP ...)
	// looks at its keys by itself, for pushes it is not told of: those
	// made through other gateways of a cluster. 0: only pushes through
	// this gateway wake it (the embedded backend).
	BlockPoll time.Duration
	// TestingPanicOn, if set, is asked about every key a write names; true
	// makes the write panic inside its transaction, latches held: tests
	// prove a panic is contained.
	TestingPanicOn func(key []byte) bool
	// OnShutdown, if set, stops the server (SHUTDOWN); it must not wait for
	// the connection that asked to close. Unset, SHUTDOWN answers an error.
	OnShutdown func()
}

// Executor runs commands for clients. It is safe for concurrent use by many
// connections; each Client is used by one connection at a time.
type Executor struct {
	be      backend.Backend
	opts    Options
	log     *slog.Logger
	started time.Time
	// mono is a wall-clock reading taken at New; command timestamps are kept as
	// monotonic offsets from it, which costs one clock read instead of two.
	mono time.Time

	clientsMu sync.Mutex
	clients   map[int64]*Client
	nextID    atomic.Int64

	// Counters for INFO stats.
	connectionsTotal atomic.Int64
	rejectedConns    atomic.Int64
	keyspaceHits     atomic.Int64
	keyspaceMisses   atomic.Int64
	panics           atomic.Int64

	scanCursors *cursorTable
	lranges     rangeCache
	pickers     pickerCache
	pops        popCache
	watches     *watchRegistry
	blocking    *blockRegistry
	in          introspection
	// limits are the collection encoding thresholds CONFIG SET changes.
	limits encLimits
}

// New returns an Executor over be.
func New(be backend.Backend, opts Options) *Executor {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBulkLen <= 0 {
		opts.MaxBulkLen = resp.DefaultMaxBulkLen
	}
	if opts.Backend == "" {
		opts.Backend = "embedded"
	}
	if opts.Databases <= 0 {
		opts.Databases = DefaultDatabases
	}
	markAdmin()
	e := &Executor{
		be:          be,
		opts:        opts,
		log:         opts.Logger,
		started:     opts.Now(),
		mono:        time.Now(),
		clients:     make(map[int64]*Client),
		scanCursors: newCursorTable(),
		watches:     newWatchRegistry(opts.Backend != "embedded"),
		blocking:    newBlockRegistry(opts.BlockPoll),
	}
	if opts.Backend != "embedded" {
		// A remote backend's seeks are requests: SPOP walks less.
		e.pops.sampleAfter = spopSampleAfterRemote
	}
	e.in.init(opts)
	e.limits.init()
	return e
}

// Client is the per-connection state.
type Client struct {
	ID        int64
	Addr      string
	LocalAddr string
	Created   time.Time

	// The fields below are touched by the connection's goroutine and read by
	// CLIENT LIST from others, hence the mutex.
	mu      sync.Mutex
	name    string
	libName string
	libVer  string
	lastCmd string
	proto   int
	// db is the selected database; written by the connection's goroutine
	// under mu, so that it may read it without.
	db uint32
	// lastCmdEntry is the table entry lastCmd names; written only by the
	// connection's goroutine, so it may read it without the mutex.
	lastCmdEntry *Command
	// lastAtNs is when the last command started, as an offset from Executor.mono;
	// 0 before the first command (CLIENT LIST then reports Created).
	lastAtNs atomic.Int64

	// req is the Request of the command being executed, reused so that a command
	// allocates none.
	req Request
	// scratch is reusable space for a command's reply data (GET's value).
	scratch []byte
	// keyBuf backs oneKey's result.
	keyBuf [1][]byte
	// keyScratch holds a read's stored key (storedKey); encOne is the
	// stored-key list of a write naming one key.
	keyScratch []byte
	encOne     [1][]byte
	// dbTxn is the running write's Txn over Redis keys (update), and
	// wrapDB says runUpdate must hand it out.
	dbTxn  dbTxn
	wrapDB bool
	// setOp and setFn (bound to setOp.apply) run SET without allocating.
	setOp setOp
	setFn func(backend.Txn) error
	// updateFn (bound to runUpdate) wraps updateInner, the running write's
	// transaction function.
	updateFn    func(backend.Txn) error
	updateInner func(backend.Txn) error
	exec        *Executor

	// multi is the transaction being queued (MULTI); watched what WATCH saw
	// of each watched key; watchDirty is set (by any connection's write)
	// when one of them was modified since.
	multi      multiState
	watched    map[string]watchedKey
	watchDirty atomic.Bool
	// watchBytes is what the watched keys hold (watchKeyOverhead each
	// besides the key), watchRes its share of the memory account: a
	// client that WATCHes key after key of megabytes must fit
	// maxmemory-clients like its buffers.
	watchBytes int
	watchRes   resp.Reservation
	// nameRes is the share of the memory account that the client's name
	// and library attributes hold (countNames).
	nameRes resp.Reservation

	authed bool
	// CLIENT REPLY: replyOff drops every reply, replySkip this command's,
	// replySkipNext the next command's. noEvict is CLIENT NO-EVICT.
	replyOff, replySkip, replySkipNext, noEvict bool
	// onKill, set by the server (SetOnKill), closes the connection (CLIENT
	// KILL, a monitor fallen behind); it is called from any goroutine, once.
	onKill atomic.Pointer[func()]
	killed atomic.Bool
	// block is the blocked command (BLPOP ...) waiting for Wait; set and
	// cleared by the connection's goroutine under mu, read under mu by
	// others (CLIENT LIST, UNBLOCK, KILL).
	block *blockState
	// ready lists the stored keys the running command made ready for
	// blocked clients (signalKeyAsReady); ExecAt wakes their waiters.
	ready [][]byte
	// NewMonitor is set by MONITOR for the server, which takes it (and
	// sets it back to nil) to start sending the client its stream.
	NewMonitor *Monitor
	// dirty means a write was acknowledged with a deferred fsync; the connection
	// must Sync before its replies leave.
	dirty bool
	// Out accumulates replies until the connection flushes them.
	Out resp.Writer
	// CloseAfterReply asks the connection to close once Out is flushed (QUIT).
	CloseAfterReply bool
}

// NewClient registers a connection.
func (e *Executor) NewClient(addr, localAddr string) *Client {
	c := &Client{
		ID:        e.nextID.Add(1),
		Addr:      addr,
		LocalAddr: localAddr,
		Created:   e.opts.Now(),
		proto:     2,
		authed:    e.requirePass() == "",
	}
	c.Out.Proto = 2
	c.Out.OnError = e.noteError
	c.setFn = c.setOp.apply
	c.updateFn = c.runUpdate
	c.exec = e
	e.connectionsTotal.Add(1)
	e.clientsMu.Lock()
	e.clients[c.ID] = c
	e.clientsMu.Unlock()
	return c
}

// CloseClient unregisters a connection.
func (e *Executor) CloseClient(c *Client) {
	e.watches.unwatchAll(c)
	e.stopMonitor(c)
	e.clientsMu.Lock()
	delete(e.clients, c.ID)
	e.clientsMu.Unlock()
}

// ConnectedClients is the number of registered connections.
func (e *Executor) ConnectedClients() int {
	e.clientsMu.Lock()
	defer e.clientsMu.Unlock()
	return len(e.clients)
}

// RejectedConnection counts a connection refused for maxclients (INFO stats).
func (e *Executor) RejectedConnection() { e.rejectedConns.Add(1) }

// Request is one command being executed.
type Request struct {
	ctx  context.Context
	e    *Executor
	c    *Client
	cmd  *Command
	Args [][]byte
	w    *resp.Writer
	// last is true for the last command of the pipeline read so far: only then may
	// the reply be held back for an fsync without hurting batching.
	last bool
	// tx is EXEC's transaction when the command runs inside one: its reads
	// and writes go there instead of to the backend.
	tx *execTxn
	// statsCmd is the entry the command's stats go to: the subcommand of a
	// container command, nil for an unknown one. rejected: dispatch refused
	// the command before it ran; queued: MULTI queued it.
	statsCmd         *Command
	rejected, queued bool
	// subKeys: the command's Update uses sub-keys (updateSub).
	subKeys bool
	// readAhead: the command's Update may be run ahead
	// (WriteOptions.ReadAhead; updateSubAhead).
	readAhead bool
	// servedKey is the position, among its keys, of the key a blocking
	// command popped from.
	servedKey int
}

// writeOpts returns the write options of this request: every write of a pipeline
// defers its fsync to the one Sync at the end of the pipeline. Only a write that
// is alone (the last command, with no deferred write before it) syncs itself:
// if the last write synced too, the pipeline would wait for two fsyncs.
func (r *Request) writeOpts() backend.WriteOptions {
	if r.last && !r.c.dirty {
		return backend.WriteOptions{SubKeys: r.subKeys, ReadAhead: r.readAhead}
	}
	r.c.dirty = true
	return backend.WriteOptions{DeferSync: true, SubKeys: r.subKeys, ReadAhead: r.readAhead}
}

// update runs fn, a write over Redis keys of the client's database, in one
// transaction; keys are the keys it touches.
func (r *Request) update(keys [][]byte, fn func(backend.Txn) error) error {
	var enc [][]byte
	if len(keys) == 1 {
		// The list is the client's (no backend keeps it); the key is new,
		// as a write keeps it until it commits.
		r.c.encOne[0] = keyspace.Key(r.c.db, keys[0])
		enc = r.c.encOne[:]
		defer func() { r.c.encOne[0] = nil }()
	} else {
		enc = storedKeys(r.c.db, keys)
	}
	if r.tx != nil {
		return r.updateStored(enc, func(tx backend.Txn) error {
			return fn(&dbTxn{Txn: tx, db: r.c.db, raw: keys, enc: enc})
		})
	}
	// The Txn wrapper lives in the client: a write allocates nothing for it.
	r.c.dbTxn = dbTxn{db: r.c.db, raw: keys, enc: enc}
	r.c.wrapDB = true
	defer func() { r.c.dbTxn, r.c.wrapDB = dbTxn{}, false }()
	return r.updateStored(enc, fn)
}

// updateStored runs fn, a write over stored keys (MOVE and COPY address two
// databases), in one transaction.
func (r *Request) updateStored(keys [][]byte, fn func(backend.Txn) error) error {
	if panicOn := r.e.opts.TestingPanicOn; panicOn != nil {
		for _, k := range keys {
			if panicOn(keyspace.UserKey(k)) {
				inner := fn
				fn = func(tx backend.Txn) error {
					_ = inner(tx)
					panic(fmt.Sprintf("testing: a write to %q panics", keyspace.UserKey(k)))
				}
				break
			}
		}
	}
	if r.tx != nil {
		t := &cmdTxn{outer: r.tx, writes: map[string]*pendingWrite{}}
		if err := fn(t); err != nil {
			return err
		}
		return t.flush()
	}
	// Whether anyone watches is judged inside the transaction, under the
	// keys' latches (see watchRegistry.watch); the wrapper is prebuilt so
	// that a write allocates nothing for it.
	r.c.updateInner = fn
	defer func() { r.c.updateInner = nil }()
	return r.e.be.Update(r.ctx, r.writeOpts(), keys, r.c.updateFn)
}

// runUpdate is every write's transaction function (Client.updateFn): it
// runs the command's, through a Txn that marks watchers of what it writes
// dirty when some client watches keys, under the one that takes Redis keys
// (update's).
func (c *Client) runUpdate(tx backend.Txn) error {
	if w := c.exec.watches; w.n.Load() > 0 {
		tx = touchTxn{Txn: tx, w: w}
	}
	if c.wrapDB {
		c.dbTxn.Txn = tx
		return c.updateInner(&c.dbTxn)
	}
	return c.updateInner(tx)
}

// get, appendGet, multiGet and heads read Redis keys of the client's
// database, outside a transaction, or inside EXEC's when the command runs
// in one.
func (r *Request) get(key []byte) (backend.Value, bool, error) {
	if r.tx != nil {
		return r.tx.Get(keyspace.Key(r.c.db, key))
	}
	return r.e.be.Get(r.ctx, r.storedKey(key))
}

func (r *Request) appendGet(dst, key []byte) (backend.Value, bool, error) {
	if r.tx != nil {
		v, ok, err := r.tx.Get(keyspace.Key(r.c.db, key))
		if ok {
			v.Data = append(dst, v.Data...)
		}
		return v, ok, err
	}
	return r.e.be.AppendGet(r.ctx, dst, r.storedKey(key))
}

func (r *Request) multiGet(keys [][]byte) ([]backend.Value, []bool, error) {
	enc := storedKeys(r.c.db, keys)
	if r.tx == nil {
		return r.e.be.MultiGet(r.ctx, enc)
	}
	vals, found := make([]backend.Value, len(keys)), make([]bool, len(keys))
	for i, k := range enc {
		v, ok, err := r.tx.Get(k)
		if err != nil {
			return nil, nil, err
		}
		vals[i], found[i] = v, ok
	}
	return vals, found, nil
}

func (r *Request) heads(keys [][]byte) ([]backend.Head, []bool, error) {
	var enc [][]byte
	if len(keys) == 1 && r.tx == nil {
		enc = r.c.oneKey(r.storedKey(keys[0]))
	} else {
		enc = storedKeys(r.c.db, keys)
	}
	if r.tx == nil {
		return r.e.be.Heads(r.ctx, enc)
	}
	heads, found := make([]backend.Head, len(keys)), make([]bool, len(keys))
	for i, k := range enc {
		h, ok, err := r.tx.Head(k)
		if err != nil {
			return nil, nil, err
		}
		heads[i], found[i] = h, ok
	}
	return heads, found, nil
}

// oneKey returns the one-element key list of a single-key command, without
// allocating. It is valid until the next call.
func (c *Client) oneKey(key []byte) [][]byte {
	c.keyBuf[0] = key
	return c.keyBuf[:]
}

// keepScratch keeps b's array (if any) as c's scratch space unless it is large.
func (c *Client) keepScratch(b []byte) {
	if b != nil && cap(b) <= 64<<10 {
		c.scratch = b[:0]
	}
}

// Authenticated reports whether c may run commands other than AUTH and
// HELLO: it has authenticated, or no password is required.
func (c *Client) Authenticated() bool { return c.authed }

// lastAt is when c's last command started (Created before any).
func (e *Executor) lastAt(c *Client) time.Time {
	if ns := c.lastAtNs.Load(); ns != 0 {
		return e.mono.Add(time.Duration(ns))
	}
	return c.Created
}

// lookup finds the command args[0] names, ignoring case. A connection usually
// repeats the command it ran last, so that one is tried first.
func (c *Client) lookup(name []byte) *Command {
	if last := c.lastCmdEntry; last != nil && equalFold(name, last.Name) {
		return last
	}
	var buf [32]byte
	return table[string(lower(buf[:0], name))]
}

// RunsLong reports whether args is a command whose work grows with the
// keyspace (Command.Long) and that c may run: the caller then runs it off
// its event loop. Anything else, an error reply included, is quick.
func (e *Executor) RunsLong(c *Client, args [][]byte) bool {
	if len(args) == 0 {
		return false
	}
	cmd := c.lookup(args[0])
	return cmd != nil && cmd.Long && cmd.arityOK(len(args)) && c.authed
}

// Exec runs one command and appends its reply to c.Out. last says whether more
// commands of the same pipeline are already waiting; when it is true, Exec also
// makes the pipeline's deferred writes durable before returning, and a failure to
// do so is returned: the caller must then drop the replies and close the
// connection, since it cannot promise durability.
func (e *Executor) Exec(ctx context.Context, c *Client, args [][]byte, last bool) error {
	_, err := e.ExecAt(ctx, c, args, last, -1)
	return err
}

// Clock returns the executor's clock, for ExecAt.
func (e *Executor) Clock() time.Duration { return time.Since(e.mono) }

// ExecAt is Exec for a caller that runs commands back to back: start is when
// this one began (from Clock, or the end ExecAt returned for the previous
// command; negative: read the clock), and end is when it finished. Chained
// this way a command costs one clock read, not two; on a small VM the clock
// was 5% of a pipelined GET.
func (e *Executor) ExecAt(ctx context.Context, c *Client, args [][]byte, last bool, start time.Duration) (end time.Duration, err error) {
	if start < 0 {
		// One monotonic clock read (not time.Now's two) serves as the
		// command's timestamp for CLIENT LIST and as the start of its duration.
		start = time.Since(e.mono)
	}
	if len(args) == 0 {
		return start, nil
	}
	cmd := c.lookup(args[0])
	if cmd != nil {
		if cmd != c.lastCmdEntry {
			c.mu.Lock()
			c.lastCmd = cmd.Name
			c.lastCmdEntry = cmd
			c.mu.Unlock()
		}
		// Never 0, which means "no command yet".
		c.lastAtNs.Store(max(int64(start), 1))
	}
	w := &c.Out
	mark := w.Len()
	req := &c.req
	*req = Request{ctx: ctx, e: e, c: c, cmd: cmd, Args: args, w: w, last: last}
	offBefore := c.replyOff
	err = e.dispatchContained(req)
	// The command (an EXEC included) has committed: wake the clients
	// blocked on the keys it made ready.
	e.flushReady(c)
	statsCmd, rejected, queued := req.statsCmd, req.rejected, req.queued
	*req = Request{}
	c.keyBuf[0] = nil
	if errors.Is(err, errPanicked) {
		// The command's state is unknown: answer, then hang up (the replies
		// before this one still go out, after the pipeline's fsync).
		w.Truncate(mark)
		w.Error("ERR internal error")
		c.CloseAfterReply = true
	} else if err != nil {
		// A handler may have begun a reply before failing; the error replaces it.
		w.Truncate(mark)
		writeError(w, e.log, string(args[0]), err)
	}
	// CLIENT REPLY OFF / SKIP: the reply is dropped (its errors counted);
	// CLIENT REPLY ON's own reply is not.
	if offBefore && c.replyOff || c.replySkip {
		w.Truncate(mark)
	}
	c.replySkip, c.replySkipNext = c.replySkipNext, false
	var serr error
	// The command's own duration (stats, SLOWLOG) leaves out the fsync of
	// its pipeline, as Redis's leaves out the AOF's.
	cmdEnd := time.Duration(-1)
	if last && c.dirty {
		c.dirty = false
		cmdEnd = time.Since(e.mono)
		if serr = e.be.Sync(ctx); serr != nil {
			e.log.Error("fsync of pipelined writes failed; dropping replies", "err", serr)
		}
	}
	end = time.Since(e.mono)
	outcome := callOK
	switch {
	case rejected:
		outcome = callRejected
	case queued:
		outcome = callQueued
	case err != nil || serr != nil:
		outcome = callFailed
	}
	if cmdEnd < 0 {
		cmdEnd = end
	}
	e.afterCall(c, statsCmd, args, cmdEnd-start, outcome)
	if cmd != nil && e.opts.Observe != nil {
		e.opts.Observe(cmd, end-start, err != nil || serr != nil)
	}
	return end, serr
}

// errPanicked is what dispatchContained returns for a command that panicked.
var errPanicked = errors.New("command panicked")

// dispatchContained runs the command and turns a panic into errPanicked: one
// bad command must not take every other client down with the process. Every
// resource a command takes (latches, transactions, iterators) is released by
// a defer, so unwinding frees it.
func (e *Executor) dispatchContained(r *Request) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		e.panics.Add(1)
		e.log.Error("command panicked; its connection is closed, other clients carry on",
			"cmd", truncate(r.Args[0], 64), "args", describeArgs(r.Args[1:]), "client", r.c.Addr,
			"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if e.opts.OnPanic != nil {
			e.opts.OnPanic()
		}
		err = errPanicked
	}()
	return e.dispatch(r)
}

// Panics counts the commands that panicked since the start (INFO stats).
func (e *Executor) Panics() int64 { return e.panics.Load() }

// describeArgs renders at most 8 arguments of at most 64 bytes each for a
// log line, so that a 512 MB value does not become a 512 MB log record.
func describeArgs(args [][]byte) string {
	var b strings.Builder
	for i, a := range args {
		if i == 8 {
			fmt.Fprintf(&b, " ...(%d more)", len(args)-i)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Quote(truncate(a, 64)))
		if len(a) > 64 {
			fmt.Fprintf(&b, "...(%d bytes)", len(a))
		}
	}
	return b.String()
}

func (e *Executor) dispatch(r *Request) error {
	cmd := r.cmd
	r.statsCmd = cmd
	// Redis 7.0's processCommand order: existence (of the subcommand too),
	// arity, then authentication (redis-server 7.0.15 answers an
	// unauthenticated NOSUCH with the unknown-command error, not NOAUTH).
	var err error
	switch {
	case cmd == nil:
		err = unknownCommand(r.Args)
	case len(cmd.Subcommands) > 0 && len(r.Args) >= 2:
		sub := cmd.subcommand(r.Args[1])
		r.statsCmd = sub
		switch {
		case sub == nil:
			err = errUnknownSubcommand(r.Args[1], strings.ToUpper(cmd.Name))
		case !sub.arityOK(len(r.Args)):
			err = errWrongArgs(sub.Name)
		case !r.c.authed && cmd.Flags&flagNoAuth == 0:
			err = errNoAuth
		}
	case !cmd.arityOK(len(r.Args)):
		err = errWrongArgs(cmd.Name)
	case !r.c.authed && cmd.Flags&flagNoAuth == 0:
		err = errNoAuth
	}
	if err == nil && r.c.multi.active && cmd.noMulti {
		err = errNotInMulti
	}
	r.rejected = err != nil
	if r.c.multi.active {
		// A command refused in MULTI fails the transaction (EXECABORT),
		// EXEC and DISCARD included, as in Redis.
		if err != nil {
			if cmd != nil && cmd.Name == "exec" {
				// Redis's execCommandAbort: the transaction is discarded now.
				r.c.resetMulti()
				e.watches.unwatchAll(r.c)
				return replyError("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(err.Error(), "ERR "))
			}
			r.c.multi.failed = true
			return err
		}
		if !notQueued(cmd) {
			err := e.queueCommand(r)
			r.queued = err == nil
			r.rejected = err != nil
			return err
		}
	}
	if err != nil {
		return err
	}
	return cmd.Handler(r)
}

// subcommand returns the subcommand of container c that name names, or nil.
func (c *Command) subcommand(name []byte) *Command {
	for _, s := range c.Subcommands {
		if len(s.Name) == len(c.Name)+1+len(name) && equalFold(name, s.Name[len(c.Name)+1:]) {
			return s
		}
	}
	return nil
}

// unknownCommand builds Redis's reply for an unknown command, quoting the first
// arguments up to 128 bytes exactly as Redis does.
func unknownCommand(args [][]byte) error {
	var quoted []byte
	for _, a := range args[1:] {
		if len(quoted) >= 128 {
			break
		}
		room := 128 - len(quoted)
		quoted = append(quoted, '\'')
		quoted = append(quoted, a[:min(len(a), room)]...)
		quoted = append(quoted, '\'', ' ')
	}
	return replyError("ERR unknown command '" + truncate(args[0], 128) + "', with args beginning with: " + string(quoted))
}
