package gatewayserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
	raftbackend "github.com/nokv/nokv/services/gateway/internal/backend/raft"
	"github.com/nokv/nokv/services/gateway/internal/command"
	"github.com/nokv/nokv/services/gateway/internal/metrics"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// Server is a running nokv-redis.
type Server struct {
	cfg     Config
	log     *slog.Logger
	be      backend.Backend
	exec    *command.Executor
	metrics *metrics.Metrics
	// clientMem bounds all clients' buffers together (maxmemory-clients);
	// nil when unbounded.
	clientMem *resp.ClientMemory
	// perCmd caches each command's metrics by command ID, created on first use.
	perCmd []atomic.Pointer[metrics.Command]

	ln net.Listener
	rs *redcon.Server
	// loop serves the embedded backend on Linux instead of rs.
	loop    *eventLoop
	served  chan struct{} // closed when the redcon serve loop has returned
	started bool
	httpLn  net.Listener
	httpSrv *http.Server

	connMu  sync.Mutex
	conns   int
	closing bool
	connsWG sync.WaitGroup

	// blockCtx ends the blocked commands (BLPOP ...) of redcon's
	// connections at Close.
	blockCtx    context.Context
	blockCancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
	// shutdown is closed by a client's SHUTDOWN (once, by shutdownOnce);
	// the process's main loop waits on it beside its signals.
	shutdown     chan struct{}
	shutdownOnce sync.Once
	// tickStop ends the goroutine sampling instantaneous_ops_per_sec.
	tickStop chan struct{}
	tickDone chan struct{}
}

// New opens the backend and binds the listeners; nothing is served until Start.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid settings: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	now := cfg.TestingKnobs.NowMs
	var (
		store backend.Backend
		err   error
	)
	if cfg.Backend == BackendRaft {
		// PD must answer at start: a gateway that cannot reach the cluster
		// says so now rather than on every command. It waits pdStartWait
		// for it: processes started together (compose, a script, a test)
		// do not come up in order, and a PD with its embedded etcd can take
		// seconds to serve on a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), pdStartWait)
		store, err = raftbackend.Open(ctx, raftbackend.Options{PDAddr: cfg.PDAddr, MaxRetries: cfg.MaxRetries, NowMs: now,
			NoCombine: !cfg.RaftCombine, NoCombineReads: !cfg.RaftCombineReads, TestingFormatCheckFoundNoRecord: cfg.TestingKnobs.FormatCheckFoundNoRecord,
			ReclaimInterval: cfg.RaftReclaimInterval, SweepInterval: cfg.RaftSweepInterval,
			TestingReclaimHook: cfg.TestingKnobs.ReclaimHook, Log: log})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("open raft backend: %w", err)
		}
	} else {
		if cfg.CacheKeys > 0 {
			log.Warn("cache-keys is deprecated: the key cache is sized in bytes by key-cache now",
				"cache-keys", cfg.CacheKeys, "key-cache", cfg.KeyCacheBytes())
		}
		store, err = embedded.Open(embedded.Options{
			Dir:           cfg.WorkDir,
			Sync:          embedded.SyncPolicy(cfg.Sync),
			CacheSize:     int64(cfg.BlockCache),
			KeyCacheBytes: cfg.KeyCacheBytes(),
			Now:           now,
			Logger:        log,
		})
		if err != nil {
			return nil, fmt.Errorf("open embedded store: %w", err)
		}
	}
	s := &Server{cfg: cfg, log: log, be: store, metrics: metrics.New(), served: make(chan struct{}),
		shutdown: make(chan struct{}), clientMem: resp.NewClientMemory(cfg.ClientMemoryBudget())}
	s.metrics.ClientMemory = s.clientMem.Used
	s.blockCtx, s.blockCancel = context.WithCancel(context.Background())
	blockPoll := time.Duration(0) // the embedded backend: every push goes through this gateway
	if cfg.Backend == BackendRaft {
		blockPoll = cfg.BlockPoll
	}
	s.perCmd = make([]atomic.Pointer[metrics.Command], len(command.Commands()))
	nowTime := time.Now
	if now != nil {
		nowTime = func() time.Time { return time.UnixMilli(now()) }
	}
	s.exec = command.New(store, command.Options{
		RequirePass: cfg.RequirePass,
		MaxBulkLen:  int64(cfg.MaxBulkLen),
		MaxClients:  cfg.MaxClients,
		Databases:   cfg.Databases,
		SyncPolicy:  cfg.Sync,

		QueryBufferLimit: int64(cfg.ClientQueryBufferLimit),
		ClientMemory:     s.clientMem,
		MemoryLimit:      embedded.MemoryLimit(),
		OutputBufferLimit: [3]int64{int64(cfg.ClientOutputBufferLimit.Hard),
			int64(cfg.ClientOutputBufferLimit.Soft), cfg.ClientOutputBufferLimit.SoftSeconds},
		Addr:    cfg.Addr,
		Backend: cfg.Backend,
		Now:     nowTime,
		Logger:  log,
		Observe: s.observe,
		OnPanic: func() { s.metrics.Panics.Add(1) },
		OnShutdown: func() {
			s.shutdownOnce.Do(func() { close(s.shutdown) })
		},

		BlockPoll: blockPoll,

		TestingPanicOn: cfg.TestingKnobs.PanicOn,
	})
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	s.ln = resp.GuardListener{Listener: ln, Limits: cfg.limits(), Output: cfg.ClientOutputBufferLimit.limit(),
		TestingPanic: cfg.TestingKnobs.PanicIn}
	if cfg.MetricsAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = ln.Close()
			_ = store.Close()
			return nil, fmt.Errorf("listen on metrics address %s: %w", cfg.MetricsAddr, err)
		}
		s.httpSrv = &http.Server{Handler: s.metrics.Handler(), ReadHeaderTimeout: 10 * time.Second}
	}
	s.rs = redcon.NewServer(cfg.Addr, s.handle, s.accept, s.closed)
	if cfg.Backend != BackendRaft && eventLoopEnabled {
		// Where it exists (Linux), the event loop serves the embedded
		// backend; redcon's goroutine-per-connection server is the fallback.
		if s.loop, err = newEventLoop(s, ln); err != nil {
			s.loop = nil
			log.Debug("serving with redcon's server", "reason", err)
		}
	}
	return s, nil
}

// limits are the request limits both servers enforce.
func (c Config) limits() resp.Limits {
	return resp.Limits{MaxBulkLen: int64(c.MaxBulkLen), MaxQueryBuffer: int64(c.ClientQueryBufferLimit)}
}

// replyLimit is the hard output limit as a resp.Writer's Limit.
func (c Config) replyLimit() int {
	return int(min(int64(c.ClientOutputBufferLimit.Hard), int64(maxInt)))
}

const maxInt = int(^uint(0) >> 1)

// outputBatch bounds the replies a client's pipelined commands pile up
// before they go out: past it, the next command waits until they have
// (the event loop) or they are written first (redcon's server, where the
// write blocks while the client does not read). Without it one read of
// pipelined GETs of a large value would make the server hold thousands
// of copies of it. Redis writes at most 64 KiB per client and event too.
const outputBatch = 64 << 10

// eventLoopEnabled is false only in tests that cover redcon's server with the
// embedded backend, which would otherwise see it only on other systems.
var eventLoopEnabled = true

// Addr is the RESP address actually bound (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// MetricsAddr is the metrics address actually bound, or "".
func (s *Server) MetricsAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Start serves in background goroutines.
func (s *Server) Start() {
	s.connMu.Lock()
	s.started = true
	s.connMu.Unlock()
	s.tickStop, s.tickDone = make(chan struct{}), make(chan struct{})
	go s.tick()
	go func() {
		defer close(s.served)
		if s.loop != nil {
			s.loop.run()
			return
		}
		if err := s.rs.Serve(s.ln); err != nil {
			s.log.Error("RESP server stopped", "err", err)
		}
	}()
	if s.httpSrv != nil {
		go func() {
			if err := s.httpSrv.Serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server stopped", "err", err)
			}
		}()
	}
	s.log.Info("nokv-redis serving", "addr", s.Addr(), "backend", s.cfg.Backend, "workdir", s.cfg.WorkDir, "sync", s.cfg.Sync, "metrics", s.MetricsAddr())
}

// ShutdownRequested is closed when a client sent SHUTDOWN: the owner of
// the server should then Close it, as on SIGTERM. (The command cannot close
// the server itself: it runs on the connection Close waits for.)
func (s *Server) ShutdownRequested() <-chan struct{} { return s.shutdown }

// Close stops accepting, closes client connections, waits for in-flight commands
// and closes the backend (flushing it to disk). It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.connMu.Lock()
		s.closing = true
		started := s.started
		s.connMu.Unlock()
		// Blocked commands end now; their connections close without a reply.
		s.blockCancel()
		if started && s.loop != nil {
			s.loop.stop()
			<-s.served
			_ = s.ln.Close()
		} else if started {
			// redcon learns its listener only once its serve goroutine runs; if
			// Close comes first, redcon's Close is a no-op, so close the listener
			// ourselves: the serve loop then ends at its first Accept.
			_ = s.rs.Close()
			_ = s.ln.Close()
			<-s.served
		} else {
			if s.loop != nil {
				s.loop.stop()
				go s.loop.run() // it only closes its descriptors and returns
				<-s.loop.done
			}
			_ = s.ln.Close()
			if s.httpLn != nil {
				_ = s.httpLn.Close()
			}
		}
		s.connsWG.Wait()
		if s.tickStop != nil {
			close(s.tickStop)
			<-s.tickDone
		}
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.httpSrv.Shutdown(ctx)
			cancel()
		}
		s.closeErr = s.be.Close()
	})
	return s.closeErr
}

// tick samples the command rate every 100 ms for INFO's
// instantaneous_ops_per_sec, as Redis's serverCron does.
func (s *Server) tick() {
	defer close(s.tickDone)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.tickStop:
			return
		case now := <-t.C:
			s.exec.Tick(now)
		}
	}
}

// observe records an executed command in the metrics.
func (s *Server) observe(c *command.Command, d time.Duration, failed bool) {
	if c.ID >= len(s.perCmd) {
		s.metrics.ObserveCommand(c.Name, d, failed)
		return
	}
	slot := &s.perCmd[c.ID]
	cm := slot.Load()
	if cm == nil {
		cm = s.metrics.Command(c.Name)
		slot.Store(cm)
	}
	cm.Observe(d, failed)
}

func (s *Server) accept(conn redcon.Conn) bool {
	s.connMu.Lock()
	if s.closing {
		s.connMu.Unlock()
		return false
	}
	if s.conns >= s.exec.MaxClients() {
		s.connMu.Unlock()
		s.metrics.ConnectionsRejected.Add(1)
		s.exec.RejectedConnection()
		_, _ = conn.NetConn().Write([]byte("-ERR max number of clients reached\r\n"))
		return false
	}
	s.conns++
	s.connsWG.Add(1)
	s.connMu.Unlock()
	s.metrics.ConnectionsAccepted.Add(1)
	s.metrics.ConnectionsActive.Add(1)
	client := s.exec.NewClient(conn.RemoteAddr(), conn.NetConn().LocalAddr().String())
	client.Out.Limit = s.cfg.replyLimit()
	remote := conn.RemoteAddr()
	client.Out.Mem = s.clientMem.NewAccount(func(held int64, self bool) { s.evicted(client, remote, held, self) })
	rc := &redconConn{client: client, done: make(chan struct{})}
	// CLIENT KILL, from another connection's goroutine: closing the socket
	// ends this connection's read, and redcon then closes it.
	nc := conn.NetConn()
	client.SetOnKill(func() { _ = nc.Close() })
	if g, ok := conn.NetConn().(*resp.GuardedConn); ok {
		// Set before redcon's goroutine for the connection starts, which is
		// the only one to call g.Read and to run the client's commands.
		g.Authenticated = client.Authenticated
		g.SetMemory(client.Out.Mem)
	}
	conn.SetContext(rc)
	return true
}

func (s *Server) closed(conn redcon.Conn, err error) {
	var client *command.Client
	if rc, ok := conn.Context().(*redconConn); ok {
		client = rc.client
		s.exec.CloseClient(rc.client)
		defer client.Out.Mem.Close()
		close(rc.done)
		rc.monitorWG.Wait()
		if rc.monitor != nil {
			if _, _, dropped := rc.monitor.Take(); dropped {
				s.closedForOutputBuffer(client, conn.RemoteAddr(), int64(rc.monitor.Limit()), false)
			}
		}
	}
	if g, ok := conn.NetConn().(*resp.GuardedConn); ok && g.Ended() != nil {
		// A limit passed or a panic, in the guard: why the connection
		// ended, whatever redcon saw after.
		err = g.Ended()
	}
	var le *resp.LimitError
	var pe *resp.PanicError
	switch {
	case errors.As(err, &le) && errors.Is(err, resp.ErrQueryBufferLimit):
		s.closedForQueryBuffer(client, conn.RemoteAddr(), le.Size, le.Head)
	case errors.As(err, &le):
		s.closedForOutputBuffer(client, conn.RemoteAddr(), le.Size, le.Soft)
	case errors.As(err, &pe):
		s.contained(pe.Value, pe.Stack, conn.RemoteAddr())
	case errors.Is(err, resp.ErrClientEvicted):
		// Logged when it was evicted.
	case err != nil && !errors.Is(err, resp.ErrProtocol) && !errors.Is(err, net.ErrClosed):
		s.log.Debug("client connection ended", "remote", conn.RemoteAddr(), "err", err)
	}
	s.metrics.ConnectionsActive.Add(-1)
	s.connMu.Lock()
	s.conns--
	s.connMu.Unlock()
	s.connsWG.Done()
}

// redconConn is what redcon's server keeps for one connection.
type redconConn struct {
	client *command.Client
	// heldSince is when the oldest reply held back in client.Out was made.
	heldSince time.Time
	// closed is set once the connection is done (QUIT, or a failure).
	closed bool
	// done is closed when the connection ended; it stops the goroutine
	// sending a MONITOR stream (monitorWG).
	done      chan struct{}
	monitorWG sync.WaitGroup
	monitor   *command.Monitor
}

// maxReplyHold bounds how long the replies of a pipeline wait for its last
// command. A pipeline on the embedded backend runs well within it, so one
// fsync still covers all of its writes; on the raft backend every command is
// a cluster round trip, and without the bound a pipeline of a thousand
// commands would answer nothing for seconds, past clients' read timeouts.
const maxReplyHold = 2 * time.Millisecond

func (s *Server) handle(conn redcon.Conn, cmd redcon.Command) {
	if g, ok := conn.NetConn().(*resp.GuardedConn); ok {
		// First, for every command redcon hands over, in its order: the
		// guard kept the large arguments from redcon's buffers.
		cmd.Args = g.Restore(cmd.Args)
	}
	rc := conn.Context().(*redconConn)
	if rc.closed {
		// redcon runs every command it has parsed before it looks at the
		// connection again; like Redis, nothing after QUIT or a failure runs.
		return
	}
	defer func() {
		// A panic outside a command (which the executor contains itself)
		// closes this connection only.
		if v := recover(); v != nil {
			s.contained(v, debug.Stack(), conn.RemoteAddr())
			rc.client.Out.Reset()
			rc.closed = true
			_ = conn.NetConn().Close()
		}
	}()
	c := rc.client
	if c.Killed() {
		rc.closed = true
		return
	}
	if s.exec.Held(c, cmd.Args) && !s.waitUnpaused(conn, rc, cmd.Args) {
		return
	}
	// Replies of a pipeline are held back until its last command, so that one
	// fsync can cover all of its writes before any reply leaves; but not past
	// maxReplyHold, nor past outputBatch bytes.
	held := c.Out.Len() > 0
	last := len(conn.PeekPipeline()) == 0 || held && (c.Out.Len() >= outputBatch || time.Since(rc.heldSince) > maxReplyHold)
	err := s.exec.Exec(context.Background(), c, cmd.Args, last)
	if err == nil && c.Blocked() {
		// BLPOP ... with nothing to pop: wait on this connection's
		// goroutine (other clients have theirs); the replies before it go
		// out first, and the commands after it wait in redcon's buffer.
		if err = s.waitBlocked(conn, c); err == nil {
			held = false // sent: the reply held now is the blocked command's
		}
	}
	if c.Out.Overflowed() {
		// One reply passed the hard output limit, or the client was
		// evicted: as Redis, close the client; nothing more is sent.
		if !c.Out.Mem.Evicted() {
			s.closedForOutputBuffer(c, conn.RemoteAddr(), int64(c.Out.Limit), false)
		}
		c.Out.Reset()
		rc.closed = true
		_ = conn.NetConn().Close()
		return
	}
	if m := c.NewMonitor; m != nil && err == nil {
		c.NewMonitor = nil
		// Its +OK goes out before the first line of the stream.
		if err = s.be.Sync(context.Background()); err == nil {
			_, err = conn.NetConn().Write(c.Out.Bytes())
			c.Out.Release()
		}
		if err == nil {
			s.startMonitor(conn, rc, m)
		}
	}
	if err == nil && c.CloseAfterReply && !last {
		// QUIT mid-pipeline: the replies going out now include writes
		// still waiting for their fsync.
		err = s.be.Sync(context.Background())
	}
	if err != nil {
		c.Out.Reset()
		rc.closed = true
		_ = conn.NetConn().Close()
		return
	}
	if !last && !c.CloseAfterReply {
		if !held {
			rc.heldSince = time.Now()
		}
		return
	}
	if len(conn.PeekPipeline()) == 0 && c.Out.Len() <= smallReplies {
		// The end of what redcon has parsed: it flushes its buffer next (and
		// Close flushes it too), so the replies share that one write.
		conn.WriteRaw(c.Out.Bytes())
	} else {
		// Replies due mid-pipeline must not wait for redcon's flush after
		// the whole pipeline; large ones go from c.Out, whose memory the
		// client's account counts until they are sent, rather than from a
		// copy in redcon's buffer that nothing counts. redcon's buffer is
		// empty here (it flushed after the last pipeline), and it writes
		// only a protocol error of its own, after these.
		_, err = conn.NetConn().Write(c.Out.Bytes())
	}
	c.Out.Release()
	if err != nil || c.CloseAfterReply {
		rc.closed = true
		_ = conn.Close()
	}
}

// waitUnpaused holds a command of a client while CLIENT PAUSE holds it,
// after sending the replies before it. It reports false if the connection
// ended meanwhile (the command must not run).
func (s *Server) waitUnpaused(conn redcon.Conn, rc *redconConn, args [][]byte) bool {
	c := rc.client
	if c.Out.Len() > 0 {
		if err := s.be.Sync(context.Background()); err != nil {
			c.Out.Reset()
			rc.closed = true
			_ = conn.NetConn().Close()
			return false
		}
		if _, err := conn.NetConn().Write(c.Out.Bytes()); err != nil {
			rc.closed = true
			_ = conn.NetConn().Close()
			return false
		}
		c.Out.Release()
	}
	for s.exec.Held(c, args) {
		s.connMu.Lock()
		closing := s.closing
		s.connMu.Unlock()
		if closing || c.Killed() {
			rc.closed = true
			return false
		}
		time.Sleep(pausePoll)
	}
	return true
}

// waitBlocked sends c's pending replies, then waits for its blocked command
// (command.Executor.Wait). An error means the connection must close.
func (s *Server) waitBlocked(conn redcon.Conn, c *command.Client) error {
	if c.Out.Len() > 0 {
		if err := s.be.Sync(context.Background()); err != nil {
			return err
		}
		if _, err := conn.NetConn().Write(c.Out.Bytes()); err != nil {
			return err
		}
		c.Out.Release()
	}
	nc := conn.NetConn()
	return s.exec.Wait(s.blockCtx, c, func() bool { return connGone(nc) }, goneCheck)
}

// goneCheck is how often redcon's server looks whether a blocked client's
// connection went away (it reads nothing from it meanwhile); the event
// loop is told by epoll instead.
const goneCheck = 100 * time.Millisecond

// pausePoll is how often a command held by CLIENT PAUSE looks whether the
// pause ended.
const pausePoll = 5 * time.Millisecond

// startMonitor sends m's stream to the connection from a goroutine of its
// own until the connection ends; a monitor fallen behind past its limit is
// closed.
func (s *Server) startMonitor(conn redcon.Conn, rc *redconConn, m *command.Monitor) {
	raw := conn.NetConn()
	if g, ok := raw.(*resp.GuardedConn); ok {
		// The guard serves redcon's goroutine only; the stream is bounded
		// by the monitor's own limit.
		raw = g.Conn
	}
	wake := make(chan struct{}, 1)
	m.SetNotify(func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	rc.monitor = m
	rc.monitorWG.Add(1)
	go func() {
		defer rc.monitorWG.Done()
		for {
			select {
			case <-rc.done:
				return
			case <-wake:
			}
			lines, n, dropped := m.Take()
			if dropped {
				return // the executor closed the connection; closed logs it
			}
			if n == 0 {
				continue
			}
			// One writev of the shared lines: no copy per monitor.
			bufs := net.Buffers(lines)
			if _, err := bufs.WriteTo(raw); err != nil {
				_ = raw.Close()
				return
			}
		}
	}()
}

// contained logs a panic raised while serving one client, outside any
// command, and counts it; the caller closes that client's connection.
func (s *Server) contained(v any, stack []byte, remote string) {
	s.metrics.Panics.Add(1)
	s.log.Error("panic while serving a client; its connection is closed, other clients carry on",
		"client", remote, "panic", fmt.Sprint(v), "stack", string(stack))
}

// closedForQueryBuffer logs, as Redis does, a client closed for passing
// client-query-buffer-limit.
func (s *Server) closedForQueryBuffer(c *command.Client, remote string, size int64, head []byte) {
	s.metrics.ClientsClosedQueryBuffer.Add(1)
	s.log.Warn("closing client that reached max query buffer length",
		"client", clientName(c, remote), "qbuf", size, "limit", int64(s.cfg.ClientQueryBufferLimit),
		"qbuf_initial_bytes", strconv.Quote(string(head)))
}

// smallReplies is the most the replies of a pipeline may take and still be
// copied into redcon's buffer: what a client's account does not count of
// its reply buffer either.
const smallReplies = 64 << 10

// evicted logs and counts a client evicted to keep all clients' buffers
// within maxmemory-clients, and closes it. held is what its buffers held
// (past their free parts). A client evicted as its own buffer grew (self)
// is closed by its owner, which sees the refusal; its goroutine may hold
// its locks, which Kill takes.
func (s *Server) evicted(c *command.Client, remote string, held int64, self bool) {
	s.metrics.ClientsEvicted.Add(1)
	s.log.Warn("evicting client: all clients' buffers passed maxmemory-clients; closing the largest",
		"client", clientName(c, remote), "held", held, "maxmemory_clients", s.clientMem.Limit())
	if !self {
		c.Kill()
	}
}

// closedForOutputBuffer logs, as Redis does, a client closed for passing
// client-output-buffer-limit.
func (s *Server) closedForOutputBuffer(c *command.Client, remote string, size int64, soft bool) {
	s.metrics.ClientsClosedOutputBuffer.Add(1)
	limit := "hard"
	if soft {
		limit = "soft"
	}
	s.log.Warn("client scheduled to be closed ASAP for overcoming of output buffer limits",
		"client", clientName(c, remote), "omem", size, "limit", limit,
		"client_output_buffer_limit", s.cfg.ClientOutputBufferLimit.String())
}

func clientName(c *command.Client, remote string) string {
	if c == nil {
		return "addr=" + remote
	}
	return fmt.Sprintf("id=%d addr=%s", c.ID, remote)
}

// pdStartWait is how long a raft-backend gateway waits at start for PD to
// hand out a timestamp before it gives up (services/gateway/README.md,
// "Limits (raft backend)").
const pdStartWait = 30 * time.Second
