package command

import (
	"strconv"
	"time"
)

// Monitor is the stream of a MONITOR client: every command other clients
// run is appended as Redis formats it, and the server sends it. Appending
// never waits for the monitor: past Limit bytes not yet taken the monitor
// is dropped (its connection closed, as Redis's output buffer limit would),
// so a slow monitor never stalls anyone. A line is formatted once and
// shared by every monitor's stream: a hundred monitors that do not read
// hold each line once, not a hundred copies (with one copy each, a 10 MB
// SET held 1 GB before the server could send or drop anything).
type Monitor struct {
	c     *Client
	limit int
	// Notify, if set by the server, is called (without locks held) after
	// lines were appended; the event loop leaves it nil and drains every
	// monitor once per iteration.
	Notify func()
	// lines were appended since the last Take, bytes long in all; each
	// line is shared with the other monitors and never written to.
	lines [][]byte
	bytes int
	// dropped is set once the lines passed limit.
	dropped bool
}

// DefaultMonitorLimit bounds a monitor's unsent lines when the output
// buffer limit does not bound them lower.
const DefaultMonitorLimit = 64 << 20

// Take returns the lines appended since the last call (nil if none), in
// order, with their length in bytes, and whether the monitor fell behind
// past its limit and must be closed. The lines are shared: read only.
func (m *Monitor) Take() (lines [][]byte, n int, dropped bool) {
	e := m.c.exec
	e.in.monMu.Lock()
	defer e.in.monMu.Unlock()
	lines, n, m.lines, m.bytes = m.lines, m.bytes, nil, 0
	return lines, n, m.dropped
}

// SetNotify sets the function told of new lines (see Monitor.Notify).
func (m *Monitor) SetNotify(f func()) {
	m.c.exec.in.monMu.Lock()
	m.Notify = f
	m.c.exec.in.monMu.Unlock()
}

// Limit is how many unsent bytes the monitor may fall behind by before it
// is dropped.
func (m *Monitor) Limit() int { return m.limit }

// >> MONITOR
func cmdMonitor(r *Request) error {
	e, c := r.e, r.c
	e.in.monMu.Lock()
	defer e.in.monMu.Unlock()
	if e.in.monitors[c] != nil {
		return nil // as Redis: a second MONITOR is ignored, without a reply
	}
	limit := DefaultMonitorLimit
	if l := c.Out.Limit; l > 0 && l < limit {
		limit = l
	}
	m := &Monitor{c: c, limit: limit}
	e.in.monitors[c] = m
	e.in.monN.Add(1)
	c.NewMonitor = m
	r.w.OK()
	return nil
}

// stopMonitor forgets c's monitor, if any (its connection closed).
func (e *Executor) stopMonitor(c *Client) {
	if e.in.monN.Load() == 0 {
		return
	}
	e.in.monMu.Lock()
	defer e.in.monMu.Unlock()
	if e.in.monitors[c] != nil {
		delete(e.in.monitors, c)
		e.in.monN.Add(-1)
	}
}

// feedMonitors appends the line for args run by c to every monitor, as
// Redis's replicationFeedMonitors formats it:
// +1700000000.123456 [0 127.0.0.1:1234] "SET" "k" "v".
func (e *Executor) feedMonitors(c *Client, args [][]byte) {
	now := time.Now()
	line := make([]byte, 0, 64)
	line = append(line, '+')
	line = strconv.AppendInt(line, now.Unix(), 10)
	line = append(line, '.')
	us := strconv.AppendInt(nil, int64(now.Nanosecond()/1000), 10)
	for i := len(us); i < 6; i++ {
		line = append(line, '0')
	}
	line = append(line, us...)
	line = append(line, " [0 "...)
	line = append(line, c.Addr...)
	line = append(line, ']')
	for _, a := range redacted(args) {
		line = append(line, ' ')
		line = appendRepr(line, a)
	}
	line = append(line, '\r', '\n')
	var notify []func()
	var drop []*Client
	e.in.monMu.Lock()
	for mc, m := range e.in.monitors {
		if m.dropped {
			continue
		}
		if m.bytes+len(line) > m.limit {
			m.dropped, m.lines, m.bytes = true, nil, 0
			drop = append(drop, mc)
			continue
		}
		m.lines = append(m.lines, line)
		m.bytes += len(line)
		if m.Notify != nil {
			notify = append(notify, m.Notify)
		}
	}
	e.in.monMu.Unlock()
	for _, f := range notify {
		f()
	}
	// The server logs and counts the drop when it closes the connection.
	for _, mc := range drop {
		mc.kill()
	}
}

// appendRepr quotes b as Redis's sdscatrepr does.
func appendRepr(dst, b []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for _, ch := range b {
		switch ch {
		case '\\', '"':
			dst = append(dst, '\\', ch)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\a':
			dst = append(dst, '\\', 'a')
		case '\b':
			dst = append(dst, '\\', 'b')
		default:
			if ch >= 0x20 && ch < 0x7f {
				dst = append(dst, ch)
			} else {
				dst = append(dst, '\\', 'x', hex[ch>>4], hex[ch&15])
			}
		}
	}
	return append(dst, '"')
}

// Kill asks the server to close c's connection, as CLIENT KILL does: the
// server evicting it (maxmemory-clients).
func (c *Client) Kill() { c.kill() }

// kill asks the server to close c's connection (CLIENT KILL, a monitor
// fallen behind).
func (c *Client) kill() {
	if c.killed.Swap(true) {
		return
	}
	c.mu.Lock()
	b := c.block
	c.mu.Unlock()
	if b != nil {
		b.interrupt(unblockKilled)
	}
	if f := c.onKill.Load(); f != nil {
		(*f)()
	}
}

// SetOnKill sets how the server closes c's connection when it is killed
// (CLIENT KILL, a monitor fallen behind); if c was killed already, f runs
// now. f may be called from any goroutine.
func (c *Client) SetOnKill(f func()) {
	c.onKill.Store(&f)
	if c.killed.Load() {
		f()
	}
}

// Killed reports whether c's connection was killed (CLIENT KILL): the
// server closes it without running anything more.
func (c *Client) Killed() bool { return c.killed.Load() }

// Held reports whether the command args of c must wait for a CLIENT PAUSE
// to end: every command under PAUSE ALL, those that may write under PAUSE
// WRITE (EXEC of a transaction holding one included), as Redis 7 holds them;
// the pausing client is held too, as in Redis. The caller runs the command
// once Held turns false (UNPAUSE, or the pause timed out).
func (e *Executor) Held(c *Client, args [][]byte) bool {
	if !e.in.pauseOn.Load() || len(args) == 0 {
		return false
	}
	e.in.pauseMu.Lock()
	all, until := e.in.pauseAll, e.in.pauseUntil
	if !time.Now().Before(until) {
		e.in.pauseOn.Store(false)
		e.in.pauseMu.Unlock()
		return false
	}
	e.in.pauseMu.Unlock()
	if all {
		return true
	}
	cmd := c.lookup(args[0])
	if cmd == nil {
		return false
	}
	if cmd.Flags&flagWrite != 0 {
		return true
	}
	if cmd.Name == "exec" {
		for _, q := range c.multi.queue {
			if qc := c.lookup(q[0]); qc != nil && qc.Flags&flagWrite != 0 {
				return true
			}
		}
	}
	return false
}
