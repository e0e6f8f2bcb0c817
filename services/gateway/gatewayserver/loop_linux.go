//go:build linux

package gatewayserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/command"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// eventLoop serves the embedded backend's connections the way Redis does:
// one goroutine waits on epoll for every socket, reads what each ready
// client sent, runs all the commands (their writes deferred), makes the
// iteration's writes durable with one Sync, then writes every reply. No
// goroutine per connection, no wakeups between threads per request: on a
// small machine that is where a goroutine-per-connection server spends most
// of its CPU (see docs/benchmarks.md). Requests are parsed in place by
// resp.Parser, which accepts and rejects what Redis does; a connection
// reads once per readiness event, as Redis does, and level-triggered epoll
// reports it again while its socket holds more.
//
// Commands of the embedded backend never wait on the network, so running
// them on the loop is safe; the raft backend keeps redcon's server.
type eventLoop struct {
	s       *Server
	epfd    int
	lfd     int
	wakefd  int
	local   string
	limits  resp.Limits
	conns   map[int]*loopConn
	pending []*loopConn
	// backlog holds connections paused with parsed input left (their
	// replies passed outputBatch) whose replies have gone out: their next
	// commands run in the next iteration, which then does not wait.
	backlog, backlog2 []*loopConn
	// overSoft holds the connections whose unsent replies are at or above
	// the soft output limit; while there are any, the loop wakes up to
	// check them.
	overSoft map[*loopConn]struct{}
	output   resp.OutputLimit
	panicIn  func(stage string, data []byte) bool
	// ran is set once a command ran in this iteration: the iteration must
	// end with a Sync even if no reply is pending (it ends the batch).
	ran    bool
	events []unix.EpollEvent
	// ctx is what commands and the iteration's Sync run under: a batch
	// context if the backend offers one (backend.Batcher), so that the
	// writes of an iteration are one commit.
	ctx context.Context

	// Commands that run long (command.Command.Long: KEYS) run on goroutines
	// of their own, so that they cannot stall every other client; their
	// clients are busy meanwhile. doneFD (an eventfd) wakes the loop when
	// one finishes; finished lists them.
	doneFD    int
	finishMu  sync.Mutex
	finished  []*loopConn
	offLoop   sync.WaitGroup
	offCtx    context.Context
	offCancel context.CancelFunc

	// kills lists the connections CLIENT KILL closed (from any goroutine;
	// nkills is their number, checked without the lock); the loop closes
	// them before it sends the iteration's replies.
	killMu sync.Mutex
	kills  []*loopConn
	nkills atomic.Int32
	// held lists the connections whose next command CLIENT PAUSE holds;
	// while there are any the loop wakes every pausePoll to look again.
	held []*loopConn
	// monitors are the MONITOR connections; their streams are sent at the
	// end of every iteration.
	monitors []*loopConn

	// fdMu guards wakefd against stop writing to it after the loop closed
	// it (and the number went to another file).
	fdMu     sync.Mutex
	stopOnce sync.Once
	done     chan struct{}
}

// loopConn is one client connection of the loop.
type loopConn struct {
	fd     int
	remote string
	parser *resp.Parser
	client *command.Client
	// out holds reply bytes the socket did not take yet; while it is not
	// empty the loop waits for the socket to drain and reads nothing more
	// from the client (backpressure).
	out    []byte
	outRes resp.Reservation // what the client's account counts of out
	queued bool
	// paused means the client's replies passed outputBatch with commands
	// left in its parser: the rest run once the replies went out, and the
	// client is not read meanwhile.
	paused, inBacklog bool
	// softSince is when out reached the soft output limit (zero: below).
	softSince time.Time
	// busy means a command of c runs off the loop (see eventLoop.doneFD):
	// until it finishes, the loop touches neither c's client nor its
	// parser, and c's socket is out of the epoll set.
	busy bool
	// offErr is the error the off-loop command's ExecAt returned.
	offErr error
	// blocked means c's off-loop work is a blocked command (BLPOP ...)
	// waiting: its socket stays in the epoll set for EPOLLRDHUP (the
	// client went away: cancelWait ends the wait) and, while replies sent
	// before the command are pending in out, for EPOLLOUT. watched says
	// the socket is still in the set.
	blocked, watched bool
	cancelWait       context.CancelFunc
	// heldArgs is the command CLIENT PAUSE holds (a copy): it runs first
	// once the pause ends; meanwhile the client is not read. heldRes is
	// its share of the client's memory account: a thousand paused
	// clients each holding a large SET must fit maxmemory-clients too.
	heldArgs [][]byte
	heldRes  resp.Reservation
	// offRes is the share of the client's account that the copy of a
	// command running off the loop (startOffLoop) holds.
	offRes resp.Reservation
	// monitor is the client's MONITOR stream, once it ran MONITOR.
	monitor *command.Monitor
}

// errWouldBlock ends a read when the socket has nothing more for now.
var errWouldBlock = errors.New("gateway: no more data for now")

// fdReader reads a client's non-blocking socket.
type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// newEventLoop takes over the listening socket of ln.
func newEventLoop(s *Server, ln net.Listener) (*eventLoop, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("event loop: listener is %T, not TCP", ln)
	}
	f, err := tl.File()
	if err != nil {
		return nil, fmt.Errorf("event loop: listener socket: %w", err)
	}
	lfd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("event loop: listener socket: %w", err)
	}
	l := &eventLoop{
		s: s, lfd: lfd, local: ln.Addr().String(), limits: s.cfg.limits(),
		conns: map[int]*loopConn{}, events: make([]unix.EpollEvent, 256), done: make(chan struct{}),
		ctx: context.Background(), overSoft: map[*loopConn]struct{}{},
		output: s.cfg.ClientOutputBufferLimit.limit(), panicIn: s.cfg.TestingKnobs.PanicIn,
		doneFD: -1,
	}
	l.offCtx, l.offCancel = context.WithCancel(context.Background())
	if b, ok := s.be.(backend.Batcher); ok {
		l.ctx = b.Batch(l.ctx)
	}
	fail := func(err error) (*eventLoop, error) {
		l.closeFDs()
		return nil, fmt.Errorf("event loop: %w", err)
	}
	if err := unix.SetNonblock(lfd, true); err != nil {
		return fail(err)
	}
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fail(err)
	}
	if l.doneFD, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fail(err)
	}
	for _, fd := range []int{lfd, l.wakefd, l.doneFD} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return fail(err)
		}
	}
	return l, nil
}

func (l *eventLoop) closeFDs() {
	l.fdMu.Lock()
	defer l.fdMu.Unlock()
	for _, fd := range []*int{&l.lfd, &l.epfd, &l.wakefd, &l.doneFD} {
		if *fd > 0 {
			unix.Close(*fd)
		}
		*fd = -1
	}
}

// stop wakes the loop, which closes every connection and returns.
func (l *eventLoop) stop() {
	l.stopOnce.Do(func() {
		l.fdMu.Lock()
		defer l.fdMu.Unlock()
		if l.wakefd < 0 {
			return // the loop already ended
		}
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(l.wakefd, one[:])
	})
}

func (l *eventLoop) run() {
	// Not locked to its OS thread: a locked goroutine that blocks (on the
	// WAL fsync, every iteration) makes the runtime hand its P to another
	// thread and back, two extra thread wakeups per iteration; unlocked, the
	// fsync waiter and the loop take turns on one thread. Measured: SET
	// +8% (scripts/bench-embedded.sh rows, 5 interleaved runs).
	defer close(l.done)
	for {
		timeout := -1
		switch {
		case len(l.backlog) > 0:
			timeout = 0
		case len(l.held) > 0:
			timeout = int(pausePoll / time.Millisecond)
		case len(l.overSoft) > 0:
			timeout = softCheckMs
		}
		n, err := unix.EpollWait(l.epfd, l.events, timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			l.s.log.Error("event loop: epoll_wait failed", "err", err)
			l.shutdown()
			return
		}
		for i := 0; i < n; i++ {
			ev := l.events[i]
			switch fd := int(ev.Fd); fd {
			case l.wakefd:
				l.shutdown()
				return
			case l.lfd:
				l.acceptAll()
			case l.doneFD:
				l.finishOffLoop()
			default:
				if c := l.conns[fd]; c != nil {
					l.serve(c, ev.Events)
				}
			}
		}
		l.retryHeld()
		l.resume()
		l.reply()
		l.checkSoftLimits()
	}
}

// requestKill closes c at the loop's next chance (CLIENT KILL, possibly
// from a command running off the loop).
func (l *eventLoop) requestKill(c *loopConn) {
	l.killMu.Lock()
	l.kills = append(l.kills, c)
	l.nkills.Add(1)
	l.killMu.Unlock()
	var one [8]byte
	one[0] = 1
	l.fdMu.Lock()
	if l.doneFD >= 0 {
		_, _ = unix.Write(l.doneFD, one[:])
	}
	l.fdMu.Unlock()
}

// closeKilled closes the connections CLIENT KILL named; one running a
// command off the loop is closed when it finishes.
func (l *eventLoop) closeKilled() {
	if l.nkills.Load() == 0 {
		return
	}
	l.killMu.Lock()
	list := l.kills
	l.kills = nil
	l.nkills.Store(0)
	l.killMu.Unlock()
	for _, c := range list {
		if !c.busy {
			c.client.Out.Reset()
			c.dropOut()
			l.close(c)
		}
	}
}

// retryHeld runs the commands CLIENT PAUSE held whose pause ended.
func (l *eventLoop) retryHeld() {
	if len(l.held) == 0 {
		return
	}
	// The list is taken first: a command resumed here may be held again
	// (its pipeline ran CLIENT PAUSE, then a write), which appends its
	// client to l.held anew.
	list := l.held
	l.held = nil
	for _, c := range list {
		switch {
		case l.conns[c.fd] != c:
		case l.s.exec.Held(c.client, c.heldArgs):
			l.held = append(l.held, c)
		default:
			if len(c.out) == 0 {
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd)})
			}
			l.resumeOne(c)
		}
	}
}

// sendMonitors appends to every MONITOR connection the lines fed since the
// last iteration and sends them; one whose unsent bytes pass its limit is
// closed, as the output buffer limit would close it.
func (l *eventLoop) sendMonitors() {
	if len(l.monitors) == 0 {
		return
	}
	keep := l.monitors[:0]
	for _, c := range l.monitors {
		if l.conns[c.fd] != c {
			continue
		}
		lines, n, dropped := c.monitor.Take()
		if !dropped && len(c.out)+n > c.monitor.Limit() {
			dropped = true
		}
		if dropped {
			l.s.closedForOutputBuffer(c.client, c.remote, int64(len(c.out)+n), false)
			l.close(c)
			continue
		}
		keep = append(keep, c)
		if n == 0 {
			continue
		}
		wasEmpty := len(c.out) == 0
		c.out = slices.Grow(c.out, n)
		for _, line := range lines {
			c.out = append(c.out, line...)
		}
		// Counted as each monitor's copy is made, and the clients the
		// budget evicts for it (other monitors' copies, mostly) are closed
		// at once, not after every monitor's copy was made: a hundred
		// monitors that do not read hold about the budget, not a hundred
		// copies of each line.
		if !l.countOut(c) {
			continue
		}
		l.closeKilled()
		if wasEmpty {
			l.write(c)
		}
	}
	clear(l.monitors[len(keep):])
	l.monitors = keep
}

// softCheckMs is how often (ms) the loop checks the clients whose pending
// replies are over the soft output limit (Redis checks 10 times a second).
const softCheckMs = 100

// serve handles one readiness event of c. A panic here (outside any
// command, which the executor contains itself) closes c only.
func (l *eventLoop) serve(c *loopConn, events uint32) {
	defer l.contain(c)
	if c.busy {
		if c.blocked {
			l.serveBlocked(c, events)
		}
		return
	}
	if events&unix.EPOLLOUT != 0 {
		l.flush(c)
		return
	}
	if c.heldArgs != nil && events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		l.close(c) // hung up while CLIENT PAUSE held its command
		return
	}
	if len(c.out) == 0 && !c.paused && !c.busy && c.heldArgs == nil {
		l.read(c)
	}
}

// contain, deferred around the work for one connection, turns a panic into
// closing that connection: the stack is logged once and counted.
func (l *eventLoop) contain(c *loopConn) {
	v := recover()
	if v == nil {
		return
	}
	l.s.contained(v, debug.Stack(), c.remote)
	c.client.Out.Reset()
	c.dropOut()
	l.close(c)
}

func (l *eventLoop) acceptAll() {
	for {
		nfd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return // EAGAIN: all accepted; other errors: try again next time
		}
		l.open(nfd, sockaddrString(sa))
	}
}

func sockaddrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	case *unix.SockaddrInet6:
		return (&net.TCPAddr{IP: a.Addr[:], Port: a.Port}).String()
	}
	return "unknown"
}

func (l *eventLoop) open(fd int, remote string) {
	s := l.s
	s.connMu.Lock()
	if s.closing || s.conns >= s.exec.MaxClients() {
		closing := s.closing
		s.connMu.Unlock()
		if !closing {
			s.metrics.ConnectionsRejected.Add(1)
			s.exec.RejectedConnection()
			_, _ = unix.Write(fd, []byte("-ERR max number of clients reached\r\n"))
		}
		unix.Close(fd)
		return
	}
	s.conns++
	s.connMu.Unlock()
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		s.log.Error("event loop: watch connection", "err", err)
		unix.Close(fd)
		s.connMu.Lock()
		s.conns--
		s.connMu.Unlock()
		return
	}
	s.metrics.ConnectionsAccepted.Add(1)
	s.metrics.ConnectionsActive.Add(1)
	c := &loopConn{fd: fd, remote: remote, parser: resp.NewParser(l.limits), client: s.exec.NewClient(remote, l.local)}
	c.client.Out.Limit = s.cfg.replyLimit()
	c.client.Out.Mem = s.clientMem.NewAccount(func(held int64, self bool) { s.evicted(c.client, remote, held, self) })
	c.parser.Mem = c.client.Out.Mem
	c.client.SetOnKill(func() { l.requestKill(c) })
	l.conns[fd] = c
}

// read takes what the client sent (one read, as Redis does: if more is
// waiting, epoll reports the socket again) and runs every complete command
// in it. Their replies wait in the client's output buffer for the end of
// the iteration.
func (l *eventLoop) read(c *loopConn) {
	if c.client.CloseAfterReply {
		return
	}
	n, err := c.parser.Fill(fdReader(c.fd))
	if n > 0 {
		if l.panicIn != nil && l.panicIn("read", c.parser.Peek(c.parser.Buffered())) {
			panic("testing: panic while reading a client's requests")
		}
		if c.parser.OverQueryLimit() {
			// As Redis: checked after the read, before anything in it runs;
			// the client is closed without a reply.
			l.s.closedForQueryBuffer(c.client, c.remote, int64(c.parser.Buffered()), c.parser.Peek(64))
			c.parser.Reset()
			l.close(c)
			return
		}
		if !l.process(c) {
			return
		}
	}
	c.parser.Release()
	if n == 0 && !errors.Is(err, errWouldBlock) {
		if err != nil && !errors.Is(err, io.EOF) {
			l.s.log.Debug("client connection ended", "remote", c.remote, "err", err)
		}
		l.close(c)
		return
	}
	l.queue(c)
}

// process runs the complete commands in c's parser, until its replies pass
// outputBatch (c is then paused, the rest waiting for them to go out). It
// reports false if c was closed.
func (l *eventLoop) process(c *loopConn) bool {
	c.paused = false
	at := time.Duration(-1) // when the next command starts: chained, one clock read each
	for !c.client.CloseAfterReply {
		if c.client.Out.Len() >= outputBatch {
			c.paused = true
			break
		}
		args := c.heldArgs
		if args != nil {
			c.heldArgs = nil
			c.heldRes.Fit(c.client.Out.Mem, 0)
		} else {
			c.parser.Unauthenticated = !c.client.Authenticated()
			var perr error
			args, perr = c.parser.Next()
			var pe *resp.ProtocolError
			if errors.As(perr, &pe) {
				// As Redis does: answer the commands before it, then send the
				// error, then hang up.
				c.client.Out.Error(pe.ReplyError())
				c.client.CloseAfterReply = true
				break
			}
			if args == nil {
				break
			}
		}
		if l.s.exec.Held(c.client, args) {
			// CLIENT PAUSE: keep the command (the parser's buffer is
			// reused) and read nothing more until it ran.
			if c.heldArgs = l.copyCounted(c, &c.heldRes, args); c.heldArgs == nil {
				return false
			}
			l.held = append(l.held, c)
			if len(c.out) == 0 {
				// Not read meanwhile: level-triggered epoll would
				// report its pending input on every wait.
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: 0, Fd: int32(c.fd)})
			}
			break
		}
		if l.s.exec.RunsLong(c.client, args) {
			switch l.startOffLoop(c, args) {
			case offStarted:
				return true
			case offRefused:
				return false
			} // offInline: run it here
		}
		l.ran = true
		var xerr error
		if at, xerr = l.s.exec.ExecAt(l.ctx, c.client, args, false, at); xerr != nil {
			l.close(c)
			return false
		}
		if c.client.Out.Overflowed() {
			// A reply passed the hard output limit, or the client was
			// evicted: as Redis, close the client, and send nothing more.
			if !c.client.Out.Mem.Evicted() {
				l.s.closedForOutputBuffer(c.client, c.remote, int64(c.client.Out.Limit), false)
			}
			c.client.Out.Reset()
			l.close(c)
			return false
		}
		if m := c.client.NewMonitor; m != nil {
			c.client.NewMonitor = nil
			c.monitor = m
			l.monitors = append(l.monitors, c)
		}
		if c.client.Blocked() {
			return l.startBlocked(c)
		}
	}
	return true
}

// startBlocked sends c's replies so far and waits for its blocked command
// (BLPOP ...) on a goroutine of its own, c busy until it is served (the
// commands c pipelined after it wait in its parser, unread). It reports
// false if c was closed.
func (l *eventLoop) startBlocked(c *loopConn) bool {
	// The replies before the blocked command go out now, after the
	// iteration's writes are durable; the command itself sees only
	// committed writes (this Sync commits the iteration's batch, the
	// elements of collections included).
	if err := l.s.be.Sync(l.ctx); err != nil {
		l.s.log.Error("fsync failed; dropping replies and closing the connection", "err", err)
		c.client.Out.Reset()
		l.close(c)
		return false
	}
	l.moveOut(c)
	if !l.countOut(c) {
		return false
	}
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			l.close(c)
			return false
		}
		c.out = c.out[n:]
	}
	if len(c.out) == 0 {
		c.dropOut()
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: l.blockedEvents(c), Fd: int32(c.fd)}); err != nil {
		c.client.Out.Reset()
		l.close(c)
		return false
	}
	ctx, cancel := context.WithCancel(l.offCtx)
	c.busy, c.blocked, c.watched, c.cancelWait, c.offErr = true, true, true, cancel, nil
	fd := c.fd
	l.offLoop.Add(1)
	go func() {
		defer l.offLoop.Done()
		defer cancel()
		defer l.finishLater(c)
		c.offErr = l.s.exec.Wait(ctx, c.client, func() bool { return fdGone(fd) }, 0)
	}()
	return true
}

// blockedEvents is what a blocked client's socket is watched for.
func (l *eventLoop) blockedEvents(c *loopConn) uint32 {
	if len(c.out) > 0 {
		return unix.EPOLLRDHUP | unix.EPOLLOUT
	}
	return unix.EPOLLRDHUP
}

// serveBlocked handles a readiness event of a blocked client's socket.
func (l *eventLoop) serveBlocked(c *loopConn, events uint32) {
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// The client went away: nothing is popped for it any more.
		c.cancelWait()
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		c.watched = false
		return
	}
	if events&unix.EPOLLOUT == 0 {
		return
	}
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			c.cancelWait()
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
			c.watched = false
			return
		}
		c.out = c.out[n:]
	}
	c.dropOut()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: l.blockedEvents(c), Fd: int32(c.fd)})
}

// finishLater hands c, whose off-loop command finished, back to the loop.
func (l *eventLoop) finishLater(c *loopConn) {
	l.finishMu.Lock()
	l.finished = append(l.finished, c)
	l.finishMu.Unlock()
	var one [8]byte
	one[0] = 1
	l.fdMu.Lock()
	if l.doneFD >= 0 {
		_, _ = unix.Write(l.doneFD, one[:])
	}
	l.fdMu.Unlock()
}

// copyCounted copies args, a command the loop keeps while c's parser
// moves on, once res (its share of c's memory account) holds its size.
// Refused (c was evicted: it holds the most), c is closed, as evictions
// close clients, and it returns nil.
func (l *eventLoop) copyCounted(c *loopConn, res *resp.Reservation, args [][]byte) [][]byte {
	size := 0
	for _, a := range args {
		size += len(a) + 24
	}
	if !res.Fit(c.client.Out.Mem, size) {
		res.Fit(c.client.Out.Mem, 0)
		c.client.Out.Reset()
		l.close(c)
		return nil
	}
	own := make([][]byte, len(args))
	for i, a := range args {
		own[i] = bytes.Clone(a)
	}
	return own
}

// How startOffLoop went.
const (
	offStarted = iota // the command runs off the loop, c busy
	offInline         // it could not: the command runs on the loop
	offRefused        // the budget evicted c to copy its command: c is closed
)

// startOffLoop runs args (a command that runs long) on a goroutine of its
// own, with c busy until it finishes.
func (l *eventLoop) startOffLoop(c *loopConn, args [][]byte) int {
	// The parser reuses its buffer once the loop reads again (KEYS with
	// a pattern of hundreds of MB, from many clients at once).
	own := l.copyCounted(c, &c.offRes, args)
	if own == nil {
		return offRefused
	}
	// The command must see every write before it, its client's included,
	// and those sit in the iteration's batch: commit it (with its fsync;
	// the replies wait for the end of the iteration as always).
	if err := l.s.be.Sync(l.ctx); err != nil {
		c.offRes.Fit(c.client.Out.Mem, 0)
		return offInline
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil); err != nil {
		c.offRes.Fit(c.client.Out.Mem, 0)
		return offInline
	}
	c.busy, c.offErr = true, nil
	l.offLoop.Add(1)
	go func() {
		defer l.offLoop.Done()
		defer func() {
			if v := recover(); v != nil {
				// ExecAt contains a command's panics; this is anything else.
				l.s.contained(v, debug.Stack(), c.remote)
				c.offErr = fmt.Errorf("panic: %v", v)
			}
			l.finishLater(c)
		}()
		_, c.offErr = l.s.exec.ExecAt(l.offCtx, c.client, own, false, -1)
	}()
	return offStarted
}

// finishOffLoop takes back the clients whose off-loop command finished:
// their replies go out with this iteration's, and their next commands run.
func (l *eventLoop) finishOffLoop() {
	var buf [8]byte
	_, _ = unix.Read(l.doneFD, buf[:])
	l.closeKilled()
	l.finishMu.Lock()
	list := l.finished
	l.finished = nil
	l.finishMu.Unlock()
	for _, c := range list {
		c.busy = false
		c.offRes.Fit(c.client.Out.Mem, 0) // the command's copy
		blocked, watched := c.blocked, c.watched
		c.blocked, c.watched, c.cancelWait = false, false, nil
		if l.conns[c.fd] != c {
			continue // closed meanwhile
		}
		if c.offErr != nil || c.client.Killed() {
			l.close(c)
			continue
		}
		if c.client.Out.Overflowed() {
			if !c.client.Out.Mem.Evicted() {
				l.s.closedForOutputBuffer(c.client, c.remote, int64(c.client.Out.Limit), false)
			}
			c.client.Out.Reset()
			l.close(c)
			continue
		}
		op, events := unix.EPOLL_CTL_ADD, uint32(unix.EPOLLIN)
		if watched {
			op = unix.EPOLL_CTL_MOD
		}
		if len(c.out) > 0 {
			events = unix.EPOLLOUT // the replies sent before it are still going out
		}
		if blocked && !watched {
			l.close(c) // it went away
			continue
		}
		if err := unix.EpollCtl(l.epfd, op, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)}); err != nil {
			l.close(c)
			continue
		}
		l.ran = true
		l.resumeOne(c)
	}
}

// resume runs the next commands of the clients paused for their replies,
// now that those went out.
func (l *eventLoop) resume() {
	if len(l.backlog) == 0 {
		return
	}
	list := l.backlog
	l.backlog, l.backlog2 = l.backlog2[:0], nil
	for _, c := range list {
		c.inBacklog = false
		if l.conns[c.fd] == c && c.paused && len(c.out) == 0 {
			l.resumeOne(c)
		}
	}
	clear(list)
	l.backlog2 = list[:0]
}

func (l *eventLoop) resumeOne(c *loopConn) {
	defer l.contain(c)
	if l.process(c) {
		c.parser.Release()
		l.queue(c)
	}
}

// toBacklog queues a paused client whose replies went out to run on.
func (l *eventLoop) toBacklog(c *loopConn) {
	if c.paused && !c.busy && !c.inBacklog && len(c.out) == 0 {
		c.inBacklog = true
		l.backlog = append(l.backlog, c)
	}
}

// queue marks c as having replies to send at the end of the iteration.
func (l *eventLoop) queue(c *loopConn) {
	if !c.queued && !c.busy && c.client.Out.Len() > 0 {
		c.queued = true
		l.pending = append(l.pending, c)
	}
}

// reply makes the iteration's writes durable with one Sync (and, under a
// batch context, commits them as one batch first), then sends
// every reply: no client hears of a write a crash could still take back.
func (l *eventLoop) reply() {
	l.closeKilled()
	defer l.sendMonitors()
	if len(l.pending) == 0 && !l.ran {
		return
	}
	l.ran = false
	syncErr := l.s.be.Sync(l.ctx)
	if syncErr != nil {
		l.s.log.Error("fsync failed; dropping replies and closing their connections", "err", syncErr)
	}
	for _, c := range l.pending {
		c.queued = false
		if l.conns[c.fd] != c || c.busy {
			continue // closed meanwhile; or its replies wait for its command
		}
		if syncErr != nil {
			c.client.Out.Reset()
			l.close(c)
			continue
		}
		l.send(c)
	}
	clear(l.pending)
	l.pending = l.pending[:0]
}

// send writes c's replies of this iteration.
func (l *eventLoop) send(c *loopConn) {
	defer l.contain(c)
	if l.panicIn != nil && l.panicIn("write", c.client.Out.Bytes()) {
		panic("testing: panic while writing to a client")
	}
	l.moveOut(c)
	if !l.countOut(c) {
		return
	}
	if h := l.output.Hard; h > 0 && int64(len(c.out)) >= h {
		l.s.closedForOutputBuffer(c.client, c.remote, int64(len(c.out)), false)
		l.close(c)
		return
	}
	if !l.write(c) {
		return
	}
	if c.client.CloseAfterReply && len(c.out) == 0 {
		l.close(c)
		return
	}
	if l.checkSoft(c, time.Now()) {
		l.toBacklog(c)
	}
}

// checkSoft applies the soft output limit to c's unsent replies, as Redis's
// checkClientOutputBufferLimits does: c is closed once they have stayed at
// or above it for longer than its seconds. It reports false if c was
// closed.
func (l *eventLoop) checkSoft(c *loopConn, now time.Time) bool {
	soft := l.output.Soft
	if soft <= 0 {
		return true
	}
	if int64(len(c.out)) < soft {
		if !c.softSince.IsZero() {
			c.softSince = time.Time{}
			delete(l.overSoft, c)
		}
		return true
	}
	if c.softSince.IsZero() {
		c.softSince = now
		l.overSoft[c] = struct{}{}
		return true
	}
	if now.Sub(c.softSince) <= l.output.SoftFor {
		return true
	}
	l.s.closedForOutputBuffer(c.client, c.remote, int64(len(c.out)), true)
	l.close(c)
	return false
}

// checkSoftLimits checks every client over the soft output limit, also
// those the socket has not reported on (a client that stopped reading).
func (l *eventLoop) checkSoftLimits() {
	if len(l.overSoft) == 0 {
		return
	}
	now := time.Now()
	for c := range l.overSoft {
		if l.conns[c.fd] != c {
			delete(l.overSoft, c)
			continue
		}
		l.checkSoft(c, now)
	}
}

// write sends as much of c.out as the socket takes; what is left waits for
// EPOLLOUT. It reports false if the connection broke (and was closed).
func (l *eventLoop) write(c *loopConn) bool {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(c.fd)})
			return true
		}
		if err != nil {
			l.close(c)
			return false
		}
		c.out = c.out[n:]
	}
	c.dropOut()
	return true
}

// flush continues a partial write once the socket drained.
func (l *eventLoop) flush(c *loopConn) {
	if !l.write(c) || !l.checkSoft(c, time.Now()) || len(c.out) > 0 {
		return
	}
	if c.client.CloseAfterReply {
		l.close(c)
		return
	}
	events := uint32(unix.EPOLLIN)
	if c.heldArgs != nil {
		events = 0 // see process
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: events, Fd: int32(c.fd)})
	l.toBacklog(c)
}

// moveOut moves c's replies into its unsent bytes: a large reply buffer is
// taken whole when nothing is pending (not held twice while copied), a
// small one copied (the reply buffer is then reused for the next replies).
func (l *eventLoop) moveOut(c *loopConn) {
	if len(c.out) == 0 {
		if b, res := c.client.Out.TakeLarge(); b != nil {
			c.dropOut()
			c.out, c.outRes = b, res
			return
		}
	}
	c.out = append(c.out, c.client.Out.Bytes()...)
	c.client.Out.Release()
}

// countOut makes c's account count its unsent replies. It reports false
// if that evicted c: c is closed.
func (l *eventLoop) countOut(c *loopConn) bool {
	if c.outRes.Extend(c.client.Out.Mem, cap(c.out)) {
		return true
	}
	c.dropOut()
	l.close(c)
	return false
}

// dropOut lets c's unsent replies go (they went out, or c is closing), and
// what its account counted of them.
func (c *loopConn) dropOut() {
	c.out = nil
	c.outRes.Fit(c.client.Out.Mem, 0)
}

func (l *eventLoop) close(c *loopConn) {
	if l.conns[c.fd] != c {
		return
	}
	defer c.client.Out.Mem.Close() // whatever its buffers still held
	delete(l.conns, c.fd)
	delete(l.overSoft, c)
	if c.blocked {
		// Closed while blocked (an output limit): its wait ends too, and
		// pops nothing more for it.
		c.cancelWait()
	}
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	s := l.s
	s.exec.CloseClient(c.client)
	s.metrics.ConnectionsActive.Add(-1)
	s.connMu.Lock()
	s.conns--
	s.connMu.Unlock()
}

// shutdown stops accepting and closes every connection, once the commands
// running off the loop have finished (they are told to stop).
func (l *eventLoop) shutdown() {
	l.offCancel()
	l.offLoop.Wait()
	// Writes of this iteration were answered to no one; committing them is
	// harmless, and ends the batch, which other writers wait for.
	_ = l.s.be.Sync(l.ctx)
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lfd, nil)
	for _, c := range l.conns {
		l.close(c)
	}
	l.closeFDs()
}
