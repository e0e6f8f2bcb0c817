package command

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// introspection is the Executor's state behind INFO stats, commandstats,
// errorstats, SLOWLOG, MONITOR, CLIENT PAUSE and the settings CONFIG SET
// changes at runtime.
type introspection struct {
	commandsProcessed atomic.Int64
	totalErrors       atomic.Int64
	errMu             sync.Mutex
	errStats          map[string]int64

	// instantaneous_ops_per_sec, sampled as Redis's serverCron does: every
	// 100 ms the rate since the last sample goes into a ring of 16, and
	// INFO reports their mean.
	opsMu      sync.Mutex
	opsSamples [opsSamples]int64
	opsIdx     int
	opsLastN   int64
	opsLastAt  time.Time

	slowMu   sync.Mutex
	slowlog  []slowEntry // oldest first
	slowNext int64

	// Settings CONFIG SET changes while the server runs.
	slowerThan       atomic.Int64 // slowlog-log-slower-than, µs; negative: off
	slowMax          atomic.Int64 // slowlog-max-len
	latencyThreshold atomic.Int64 // latency-monitor-threshold, ms
	maxClients       atomic.Int64
	requirePass      atomic.Pointer[string]
	// maxMemClients is maxmemory-clients as Redis keeps it: bytes, or a
	// percentage stored negated (CONFIG GET shows "N%").
	maxMemClients atomic.Int64

	// monitors are the MONITOR clients; monN is their number, the one
	// check every command pays while nobody monitors.
	monMu    sync.Mutex
	monitors map[*Client]*Monitor
	monN     atomic.Int32

	// CLIENT PAUSE: pauseOn is the one check a command pays when no pause
	// is set.
	pauseMu    sync.Mutex
	pauseAll   bool
	pauseUntil time.Time
	pauseOn    atomic.Bool
}

const (
	opsSamples = 16
	// maxErrorCodes bounds the error codes errorstats tracks, as Redis's
	// ERROR_STATS_NUMBER does: a client cannot grow the table without end.
	maxErrorCodes = 128
	// Redis's slowlog entry limits.
	slowlogMaxArgs = 32
	slowlogMaxLen  = 128
)

func (in *introspection) init(opts Options) {
	in.errStats = map[string]int64{}
	in.monitors = map[*Client]*Monitor{}
	in.slowerThan.Store(10000)
	in.slowMax.Store(128)
	in.maxClients.Store(int64(opts.MaxClients))
	in.maxMemClients.Store(opts.ClientMemory.Limit())
	pass := opts.RequirePass
	in.requirePass.Store(&pass)
}

// requirePass is the password clients must AUTH with ("" for none).
func (e *Executor) requirePass() string { return *e.in.requirePass.Load() }

// MaxClients is the current maxclients (CONFIG SET may change it).
func (e *Executor) MaxClients() int { return int(e.in.maxClients.Load()) }

// noteError counts an error reply for INFO errorstats (the Writer's OnError).
func (e *Executor) noteError(msg string) {
	e.in.totalErrors.Add(1)
	code, _, _ := strings.Cut(msg, " ")
	e.in.errMu.Lock()
	if _, ok := e.in.errStats[code]; ok || len(e.in.errStats) < maxErrorCodes {
		e.in.errStats[code]++
	}
	e.in.errMu.Unlock()
}

// Tick samples the command rate for instantaneous_ops_per_sec; the server
// calls it every 100 ms, as Redis's serverCron samples it.
func (e *Executor) Tick(now time.Time) {
	in := &e.in
	n := in.commandsProcessed.Load()
	in.opsMu.Lock()
	defer in.opsMu.Unlock()
	if !in.opsLastAt.IsZero() {
		if ms := now.Sub(in.opsLastAt).Milliseconds(); ms > 0 {
			in.opsSamples[in.opsIdx] = (n - in.opsLastN) * 1000 / ms
			in.opsIdx = (in.opsIdx + 1) % opsSamples
		}
	}
	in.opsLastAt, in.opsLastN = now, n
}

func (e *Executor) opsPerSec() int64 {
	e.in.opsMu.Lock()
	defer e.in.opsMu.Unlock()
	var sum int64
	for _, s := range e.in.opsSamples {
		sum += s
	}
	return sum / opsSamples
}

// resetStats is CONFIG RESETSTAT: the counters INFO stats, commandstats
// and errorstats report start again from zero.
func (e *Executor) resetStats() {
	in := &e.in
	in.commandsProcessed.Store(0)
	in.totalErrors.Store(0)
	in.errMu.Lock()
	clear(in.errStats)
	in.errMu.Unlock()
	in.opsMu.Lock()
	in.opsSamples = [opsSamples]int64{}
	in.opsMu.Unlock()
	e.connectionsTotal.Store(0)
	e.rejectedConns.Store(0)
	e.keyspaceHits.Store(0)
	e.keyspaceMisses.Store(0)
	for _, c := range ordered {
		c.resetStats()
		for _, s := range c.Subcommands {
			s.resetStats()
		}
	}
}

func (c *Command) resetStats() {
	c.Calls.Store(0)
	c.Usec.Store(0)
	c.Rejected.Store(0)
	c.Failed.Store(0)
}

// How a command ended, for afterCall.
const (
	callOK = iota
	callFailed
	callRejected // refused before it ran (arity, authentication, MULTI's checks)
	callQueued   // queued by MULTI: it counts when EXEC runs it
)

// afterCall records a command that ended as outcome after d: its stats,
// the slowlog and the monitors, as Redis's call() does. cmd is the
// subcommand for container commands; nil (unknown command or subcommand)
// records nothing.
func (e *Executor) afterCall(c *Client, cmd *Command, args [][]byte, d time.Duration, outcome int) {
	if cmd == nil || outcome == callQueued || cmd.Name == "quit" {
		return
	}
	if outcome == callRejected {
		cmd.Rejected.Add(1)
		return
	}
	us := d.Microseconds()
	cmd.Calls.Add(1)
	cmd.Usec.Add(us)
	if outcome == callFailed {
		cmd.Failed.Add(1)
	}
	e.in.commandsProcessed.Add(1)
	if t := e.in.slowerThan.Load(); t >= 0 && us >= t && cmd.Name != "exec" {
		e.slowlogPush(c, args, us)
	}
	if e.in.monN.Load() > 0 && !cmd.admin {
		e.feedMonitors(c, args)
	}
}

// redacted returns args with what Redis hides from SLOWLOG and MONITOR
// (passwords) replaced by "(redacted)"; args itself when nothing is.
func redacted(args [][]byte) [][]byte {
	switch {
	case equalFold(args[0], "auth"):
		out := make([][]byte, len(args))
		out[0] = args[0]
		for i := 1; i < len(args); i++ {
			out[i] = []byte("(redacted)")
		}
		return out
	case equalFold(args[0], "hello"):
		out := append([][]byte(nil), args...)
		for i := 2; i < len(out); i++ {
			if equalFold(out[i], "auth") && i+2 < len(out) {
				out[i+1], out[i+2] = []byte("(redacted)"), []byte("(redacted)")
				i += 2
			}
		}
		return out
	}
	return args
}

// slowEntry is one SLOWLOG entry.
type slowEntry struct {
	id, at, micros int64
	args           []string
	addr, name     string
}

func (e *Executor) slowlogPush(c *Client, args [][]byte, us int64) {
	args = redacted(args)
	n := min(len(args), slowlogMaxArgs)
	ent := slowEntry{at: e.opts.Now().Unix(), micros: us, addr: c.Addr, args: make([]string, n)}
	for i := 0; i < n; i++ {
		if i == slowlogMaxArgs-1 && len(args) > slowlogMaxArgs {
			ent.args[i] = "... (" + strconv.Itoa(len(args)-slowlogMaxArgs+1) + " more arguments)"
			break
		}
		a := args[i]
		if len(a) > slowlogMaxLen {
			ent.args[i] = string(a[:slowlogMaxLen]) + "... (" + strconv.Itoa(len(a)-slowlogMaxLen) + " more bytes)"
		} else {
			ent.args[i] = string(a)
		}
	}
	c.mu.Lock()
	ent.name = c.name
	c.mu.Unlock()
	in := &e.in
	in.slowMu.Lock()
	defer in.slowMu.Unlock()
	ent.id = in.slowNext
	in.slowNext++
	in.slowlog = append(in.slowlog, ent)
	if max := in.slowMax.Load(); int64(len(in.slowlog)) > max {
		drop := int64(len(in.slowlog)) - max
		clear(in.slowlog[:drop])
		in.slowlog = in.slowlog[drop:]
	}
}

// >> SLOWLOG GET [count] | LEN | RESET | HELP
func cmdSlowlog(r *Request) error {
	in := &r.e.in
	switch sub := r.Args[1]; {
	case equalFold(sub, "get"):
		count := int64(10)
		if len(r.Args) == 3 {
			n, ok := parseInt(r.Args[2])
			if !ok || n < -1 {
				return replyError("ERR count should be greater than or equal to -1")
			}
			count = n
		} else if len(r.Args) > 3 {
			return errSubcommandArgs(sub, "SLOWLOG")
		}
		in.slowMu.Lock()
		n := int64(len(in.slowlog))
		if count >= 0 && n > count {
			n = count
		}
		list := make([]slowEntry, n) // newest first
		for i := range list {
			list[i] = in.slowlog[len(in.slowlog)-1-i]
		}
		in.slowMu.Unlock()
		w := r.w
		w.Array(len(list))
		for _, ent := range list {
			w.Array(6)
			w.Int(ent.id)
			w.Int(ent.at)
			w.Int(ent.micros)
			w.Array(len(ent.args))
			for _, a := range ent.args {
				w.BulkString(a)
			}
			w.BulkString(ent.addr)
			w.BulkString(ent.name)
		}
	case equalFold(sub, "len"):
		in.slowMu.Lock()
		n := len(in.slowlog)
		in.slowMu.Unlock()
		r.w.Int(int64(n))
	case equalFold(sub, "reset"):
		in.slowMu.Lock()
		in.slowlog = nil
		in.slowMu.Unlock()
		r.w.OK()
	case equalFold(sub, "help"):
		writeHelp(r.w, "SLOWLOG",
			"GET [<count>]",
			"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
			"    Entries are made of:",
			"    id, timestamp, time in microseconds, arguments array, client IP and port,",
			"    client name",
			"LEN",
			"    Return the length of the slowlog.",
			"RESET",
			"    Reset the slowlog.")
	}
	return nil
}

// writeHelp writes a HELP reply as Redis's addReplyHelp does.
func writeHelp(w *resp.Writer, cmd string, lines ...string) {
	w.Array(len(lines) + 3)
	w.Simple(cmd + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")
	for _, l := range lines {
		w.Simple(l)
	}
	w.Simple("HELP")
	w.Simple("    Prints this help.")
}

// >> LATENCY LATEST | RESET [event ...] | HELP
// No latency events are tracked (latency-monitor-threshold only reads back
// what was set): LATEST is empty and RESET resets nothing.
func cmdLatency(r *Request) error {
	switch sub := r.Args[1]; {
	case equalFold(sub, "latest"):
		r.w.Array(0)
	case equalFold(sub, "reset"):
		r.w.Int(0)
	case equalFold(sub, "help"):
		writeHelp(r.w, "LATENCY",
			"DOCTOR",
			"    Return a human readable latency analysis report.",
			"GRAPH <event>",
			"    Return an ASCII latency graph for the <event> class.",
			"HISTORY <event>",
			"    Return time-latency samples for the <event> class.",
			"LATEST",
			"    Return the latest latency samples for all events.",
			"RESET [<event> ...]",
			"    Reset latency data of one or more <event> classes.",
			"    (default: reset all data for all event classes)",
			"HISTOGRAM [COMMAND ...]",
			"    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
			"    If no commands are specified then all histograms are replied.")
	}
	return nil
}

// >> MEMORY USAGE key [SAMPLES count] | HELP
func cmdMemory(r *Request) error {
	switch sub := r.Args[1]; {
	case equalFold(sub, "usage"):
		samples := int64(5) // Redis's OBJ_COMPUTE_SIZE_DEF_SAMPLES
		for i := 3; i < len(r.Args); i++ {
			if !equalFold(r.Args[i], "samples") || i+1 >= len(r.Args) {
				return errSyntax
			}
			n, err := intArg(r.Args[i+1])
			if err != nil {
				return err
			}
			if n < 0 {
				return errSyntax
			}
			samples = n
			i++
		}
		v, ok, err := r.get(r.Args[2])
		if err != nil {
			return err
		}
		if ok && v.Type.IsCollection() {
			var n int64
			n, ok, err = r.memoryUsageColl(r.Args[2], v.Type, samples)
			if err != nil {
				return err
			}
			if ok {
				r.w.Int(n)
				return nil
			}
		}
		if !ok {
			r.w.Null()
			return nil
		}
		r.w.Int(memoryUsage(r.Args[2], v.Data))
	case equalFold(sub, "help"):
		writeHelp(r.w, "MEMORY",
			"DOCTOR",
			"    Return memory problems reports.",
			"MALLOC-STATS",
			"    Return internal statistics report from the memory allocator.",
			"PURGE",
			"    Attempt to purge dirty pages for reclamation by the allocator.",
			"STATS",
			"    Return information about the memory usage of the server.",
			"USAGE <key> [SAMPLES <count>]",
			"    Return memory in bytes used by <key> and its value. Nested values are",
			"    sampled up to <count> times (default: 5, 0 means sample all).")
	}
	return nil
}

// memoryUsage is what Redis 7.0 (jemalloc, x86-64) answers MEMORY USAGE for
// a string key freshly SET to val: its dictEntry (24 bytes), the key's sds
// allocation, and the value object: 16 bytes for an integer (encoding
// "int"), one allocation of robj and sds for up to 44 bytes ("embstr"), an
// robj and a separate sds beyond ("raw"); each allocation rounded up to
// jemalloc's size class. The gateway does not store values this way; the
// figure says what the key would cost in Redis, so tools that rank keys by
// it (redis-cli --memkeys) rank them as Redis would.
func memoryUsage(key, val []byte) int64 {
	const robj = 16
	n := keyUsage(key)
	switch {
	case len(val) <= 20 && isLongString(val):
		n += robj
	case len(val) <= 44:
		n += jemallocSize(robj + 3 + len(val) + 1)
	default:
		n += robj + jemallocSize(sdsHeader(len(val))+len(val)+1)
	}
	return int64(n)
}

// keyUsage is what a key costs Redis beside its value: its dictEntry in
// the keyspace and its sds allocation.
func keyUsage(key []byte) int {
	const dictEntry = 24
	return dictEntry + sdsAllocSize(len(key))
}

// sdsHeader is the size of the sds header Redis picks for a string of n bytes.
func sdsHeader(n int) int {
	switch {
	case n < 1<<8:
		return 3
	case n < 1<<16:
		return 5
	case int64(n) < 1<<32:
		return 9
	}
	return 17
}

// jemallocSize rounds n up to jemalloc's size class (16-byte quantum, four
// classes per doubling).
func jemallocSize(n int) int {
	switch {
	case n <= 8:
		return 8
	case n <= 128:
		return (n + 15) &^ 15
	}
	lg := 0
	for 1<<(lg+1) < n {
		lg++
	}
	step := 1 << (lg - 2)
	return (n + step - 1) / step * step
}

// isLongString is Redis's string2l: the canonical decimal form of an int64.
func isLongString(b []byte) bool {
	if len(b) == 0 || len(b) > 20 {
		return false
	}
	if len(b) == 1 && b[0] == '0' {
		return true
	}
	d := b
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || d[0] < '1' || d[0] > '9' {
		return false
	}
	_, err := strconv.ParseInt(string(b), 10, 64)
	return err == nil
}
