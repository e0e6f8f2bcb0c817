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
	// SyncPolicy is reported by CONFIG GET appendfsync and INFO persistence.
	SyncPolicy string
	// Addr is the listen address reported by INFO and CONFIG GET.
	Addr string
	// Backend names the backend kind in INFO ("embedded", "raft").
	Backend string
	// Now is the clock (nil: wall clock). Tests inject one.
	Now    func() time.Time
	Logger *slog.Logger
	// Observe, if set, is called after every command with its table entry, its
	// duration and whether it replied with an error.
	Observe func(cmd *Command, d time.Duration, failed bool)
	// OnPanic, if set, is called after a command panicked (and was contained).
	OnPanic func()
	// TestingPanicOn, if set, is asked about every key a write names; true
	// makes the write panic inside its transaction, latches held: tests
	// prove a panic is contained.
	TestingPanicOn func(key []byte) bool
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
	commandsProcessed atomic.Int64
	connectionsTotal  atomic.Int64
	rejectedConns     atomic.Int64
	keyspaceHits      atomic.Int64
	keyspaceMisses    atomic.Int64
	panics            atomic.Int64

	scanCursors *cursorTable
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
	return &Executor{
		be:          be,
		opts:        opts,
		log:         opts.Logger,
		started:     opts.Now(),
		mono:        time.Now(),
		clients:     make(map[int64]*Client),
		scanCursors: newCursorTable(),
	}
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
	// setOp and setFn (bound to setOp.apply) run SET without allocating.
	setOp setOp
	setFn func(backend.Txn) error

	authed bool
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
		authed:    e.opts.RequirePass == "",
	}
	c.Out.Proto = 2
	c.setFn = c.setOp.apply
	e.connectionsTotal.Add(1)
	e.clientsMu.Lock()
	e.clients[c.ID] = c
	e.clientsMu.Unlock()
	return c
}

// CloseClient unregisters a connection.
func (e *Executor) CloseClient(c *Client) {
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
}

// writeOpts returns the write options of this request: every write of a pipeline
// defers its fsync to the one Sync at the end of the pipeline. Only a write that
// is alone (the last command, with no deferred write before it) syncs itself:
// if the last write synced too, the pipeline would wait for two fsyncs.
func (r *Request) writeOpts() backend.WriteOptions {
	if r.last && !r.c.dirty {
		return backend.WriteOptions{}
	}
	r.c.dirty = true
	return backend.WriteOptions{DeferSync: true}
}

func (r *Request) update(keys [][]byte, fn func(backend.Txn) error) error {
	if panicOn := r.e.opts.TestingPanicOn; panicOn != nil {
		for _, k := range keys {
			if panicOn(k) {
				inner := fn
				fn = func(tx backend.Txn) error {
					_ = inner(tx)
					panic(fmt.Sprintf("testing: a write to %q panics", k))
				}
				break
			}
		}
	}
	return r.e.be.Update(r.ctx, r.writeOpts(), keys, fn)
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
	err = e.dispatchContained(req)
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
	e.commandsProcessed.Add(1)
	var serr error
	if last && c.dirty {
		c.dirty = false
		if serr = e.be.Sync(ctx); serr != nil {
			e.log.Error("fsync of pipelined writes failed; dropping replies", "err", serr)
		}
	}
	end = time.Since(e.mono)
	if cmd != nil {
		cmd.Calls.Add(1)
		if e.opts.Observe != nil {
			e.opts.Observe(cmd, end-start, err != nil || serr != nil)
		}
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
	// Redis 7.0's processCommand order: existence, arity, then
	// authentication (redis-server 7.0.15 answers an unauthenticated
	// NOSUCH with the unknown-command error, not NOAUTH).
	if cmd == nil {
		return unknownCommand(r.Args)
	}
	if !cmd.arityOK(len(r.Args)) {
		return errWrongArgs(cmd.Name)
	}
	if !r.c.authed && cmd.Flags&flagNoAuth == 0 {
		return errNoAuth
	}
	return cmd.Handler(r)
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
