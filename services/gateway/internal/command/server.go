package command

import (
	"crypto/subtle"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/resp"
)

// RedisVersion is the Redis version whose semantics the gateway implements; it is
// what HELLO and INFO report, so clients enable the matching features.
const RedisVersion = "7.2.0"

func init() {
	const (
		conn = "connection"
		srv  = "server"
		any  = flagLoading | flagStale
	)
	clientSubs := []*Command{
		{Name: "client|setname", Arity: 3, Flags: flagNoScript | any, Group: conn, Since: "2.6.9", Summary: "Sets the connection name.", Complexity: "O(1)"},
		{Name: "client|getname", Arity: 2, Flags: flagNoScript | any, Group: conn, Since: "2.6.9", Summary: "Returns the name of the connection.", Complexity: "O(1)"},
		{Name: "client|id", Arity: 2, Flags: flagNoScript | any, Group: conn, Since: "5.0.0", Summary: "Returns the unique client ID of the connection.", Complexity: "O(1)"},
		{Name: "client|info", Arity: 2, Flags: flagNoScript | any, Group: conn, Since: "6.2.0", Summary: "Returns information about the connection.", Complexity: "O(1)"},
		{Name: "client|list", Arity: -2, Flags: flagNoScript | any, Group: conn, Since: "2.4.0", Summary: "Lists open connections.", Complexity: "O(N) where N is the number of client connections"},
		{Name: "client|setinfo", Arity: 4, Flags: flagNoScript | any, Group: conn, Since: "7.2.0", Summary: "Sets information specific to the client or connection.", Complexity: "O(1)"},
		{Name: "client|kill", Arity: -3, Flags: flagNoScript | any, Group: conn, Since: "2.4.0", Summary: "Kills open connections.", Complexity: "O(N) where N is the number of client connections"},
		{Name: "client|pause", Arity: -3, Flags: flagNoScript | any, Group: conn, Since: "3.0.0", Summary: "Suspends commands processing.", Complexity: "O(1)"},
		{Name: "client|unpause", Arity: 2, Flags: flagNoScript | any, Group: conn, Since: "6.2.0", Summary: "Resumes processing commands from paused clients.", Complexity: "O(N) Where N is the number of paused clients"},
		{Name: "client|reply", Arity: 3, Flags: flagNoScript | any, Group: conn, Since: "3.2.0", Summary: "Instructs the server whether to reply to commands.", Complexity: "O(1)"},
		{Name: "client|unblock", Arity: -3, Flags: flagNoScript | any, Group: conn, Since: "5.0.0", Summary: "Unblocks a client blocked by a blocking command from a different connection.", Complexity: "O(log N) where N is the number of client connections"},
		{Name: "client|no-evict", Arity: 3, Flags: flagNoScript | any, Group: conn, Since: "7.0.0", Summary: "Sets the client eviction mode of the connection.", Complexity: "O(1)"},
	}
	commandSubs := []*Command{
		{Name: "command|count", Arity: 2, Flags: any, Group: srv, Since: "2.8.13", Summary: "Returns a count of commands.", Complexity: "O(1)"},
		{Name: "command|docs", Arity: -2, Flags: any, Group: srv, Since: "7.0.0", Summary: "Returns documentary information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up"},
		{Name: "command|info", Arity: -2, Flags: any, Group: srv, Since: "2.8.13", Summary: "Returns information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up"},
		{Name: "command|list", Arity: -2, Flags: any, Group: srv, Since: "7.0.0", Summary: "Returns a list of command names.", Complexity: "O(N) where N is the total number of Redis commands"},
	}
	configSubs := []*Command{
		{Name: "config|get", Arity: -3, Flags: flagNoScript | any, Group: srv, Since: "2.0.0", Summary: "Returns the effective values of configuration parameters.", Complexity: "O(N) when N is the number of configuration parameters provided"},
		{Name: "config|set", Arity: -4, Flags: flagNoScript | any, Group: srv, Since: "2.0.0", Summary: "Sets configuration parameters in-flight.", Complexity: "O(N) when N is the number of configuration parameters provided"},
		{Name: "config|resetstat", Arity: 2, Flags: flagNoScript | any, Group: srv, Since: "2.0.0", Summary: "Resets the server's statistics.", Complexity: "O(1)"},
		{Name: "config|help", Arity: 2, Flags: any, Group: srv, Since: "5.0.0", Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)"},
	}
	slowlogSubs := []*Command{
		{Name: "slowlog|get", Arity: -2, Flags: any, Group: srv, Since: "2.2.12", Summary: "Returns the slow log's entries.", Complexity: "O(N) where N is the number of entries returned"},
		{Name: "slowlog|len", Arity: 2, Flags: any, Group: srv, Since: "2.2.12", Summary: "Returns the number of entries in the slow log.", Complexity: "O(1)"},
		{Name: "slowlog|reset", Arity: 2, Flags: any, Group: srv, Since: "2.2.12", Summary: "Clears all entries from the slow log.", Complexity: "O(N) where N is the number of entries in the slowlog"},
		{Name: "slowlog|help", Arity: 2, Flags: any, Group: srv, Since: "6.2.0", Summary: "Show helpful text about the different subcommands.", Complexity: "O(1)"},
	}
	latencySubs := []*Command{
		{Name: "latency|latest", Arity: 2, Flags: flagNoScript | any, Group: srv, Since: "2.8.13", Summary: "Returns the latest latency samples for all events.", Complexity: "O(1)"},
		{Name: "latency|reset", Arity: -2, Flags: flagNoScript | any, Group: srv, Since: "2.8.13", Summary: "Resets the latency data for one or more events.", Complexity: "O(1)"},
		{Name: "latency|help", Arity: 2, Flags: any, Group: srv, Since: "2.8.13", Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)"},
	}
	memorySubs := []*Command{
		{Name: "memory|usage", Arity: -3, Flags: flagReadonly, FirstKey: 2, LastKey: 2, Step: 1, Group: srv, Since: "4.0.0", Summary: "Estimates the memory usage of a key.", Complexity: "O(N) where N is the number of samples."},
		{Name: "memory|help", Arity: 2, Flags: any, Group: srv, Since: "4.0.0", Summary: "Outputs helpful text about the different subcommands.", Complexity: "O(1)"},
	}
	register(
		&Command{Name: "ping", Arity: -1, Flags: flagFast | any, Group: conn, Since: "1.0.0", Summary: "Returns the server's liveliness response.", Complexity: "O(1)", Handler: cmdPing},
		&Command{Name: "echo", Arity: 2, Flags: flagFast | any, Group: conn, Since: "1.0.0", Summary: "Returns the given string.", Complexity: "O(1)", Handler: cmdEcho},
		&Command{Name: "quit", Arity: -1, Flags: flagNoAuth | flagFast | any, Group: conn, Since: "1.0.0", Summary: "Closes the connection.", Complexity: "O(1)", Handler: cmdQuit},
		&Command{Name: "select", Arity: 2, Flags: flagFast | any, Group: conn, Since: "1.0.0", Summary: "Changes the selected database.", Complexity: "O(1)", Handler: cmdSelect},
		&Command{Name: "hello", Arity: -1, Flags: flagNoAuth | flagFast | any, Group: conn, Since: "6.0.0", Summary: "Handshakes with the Redis server.", Complexity: "O(1)", Handler: cmdHello},
		&Command{Name: "auth", Arity: -2, Flags: flagNoAuth | flagFast | any, Group: conn, Since: "1.0.0", Summary: "Authenticates the connection.", Complexity: "O(N) where N is the number of passwords defined for the user", Handler: cmdAuth},
		&Command{Name: "client", Arity: -2, Group: conn, Since: "2.4.0", Summary: "A container for client connection commands.", Complexity: "Depends on subcommand.", Handler: cmdClient, Subcommands: clientSubs},
		&Command{Name: "command", Arity: -1, Flags: any, Group: srv, Since: "2.8.13", Summary: "Returns detailed information about all commands.", Complexity: "O(N) where N is the total number of Redis commands", Handler: cmdCommand, Subcommands: commandSubs},
		&Command{Name: "config", Arity: -2, Group: srv, Since: "2.0.0", Summary: "A container for server configuration commands.", Complexity: "Depends on subcommand.", Handler: cmdConfig, Subcommands: configSubs},
		&Command{Name: "info", Arity: -1, Flags: any, Group: srv, Since: "1.0.0", Summary: "Returns information and statistics about the server.", Complexity: "O(1)", Handler: cmdInfo},
		&Command{Name: "slowlog", Arity: -2, Group: srv, Since: "2.2.12", Summary: "A container for slow log commands.", Complexity: "Depends on subcommand.", Handler: cmdSlowlog, Subcommands: slowlogSubs},
		&Command{Name: "latency", Arity: -2, Group: srv, Since: "2.8.13", Summary: "A container for latency diagnostics commands.", Complexity: "Depends on subcommand.", Handler: cmdLatency, Subcommands: latencySubs},
		&Command{Name: "memory", Arity: -2, Group: srv, Since: "4.0.0", Summary: "A container for memory diagnostics commands.", Complexity: "Depends on subcommand.", Handler: cmdMemory, Subcommands: memorySubs,
			// MEMORY USAGE reads a collection's elements (memusage.go).
			subKeys: true},
		&Command{Name: "monitor", Arity: 1, Flags: flagNoScript | any, Group: srv, Since: "1.0.0", Summary: "Listens for all requests received by the server in real-time.", Complexity: "", Handler: cmdMonitor},
		&Command{Name: "time", Arity: 1, Flags: flagFast | any, Group: srv, Since: "2.6.0", Summary: "Returns the server time.", Complexity: "O(1)", Handler: cmdTime},
	)
}

// >> PING [message]
func cmdPing(r *Request) error {
	switch len(r.Args) {
	case 1:
		r.w.Simple("PONG")
	case 2:
		r.w.Bulk(r.Args[1])
	default:
		return errWrongArgs("ping")
	}
	return nil
}

// >> ECHO message
func cmdEcho(r *Request) error {
	r.w.Bulk(r.Args[1])
	return nil
}

// >> QUIT
// Reply: OK, then the server closes the connection.
func cmdQuit(r *Request) error {
	r.w.OK()
	r.c.CloseAfterReply = true
	return nil
}

func (e *Executor) checkPassword(user, pass []byte) error {
	if e.requirePass() == "" {
		return errNoPassSet
	}
	if !equalFold(user, "default") ||
		subtle.ConstantTimeCompare(pass, []byte(e.requirePass())) != 1 {
		return errWrongPass
	}
	return nil
}

// >> AUTH [username] password
func cmdAuth(r *Request) error {
	var err error
	switch len(r.Args) {
	case 2:
		if r.e.requirePass() == "" {
			return errNoPassSet
		}
		err = r.e.checkPassword([]byte("default"), r.Args[1])
	case 3:
		if r.e.requirePass() == "" {
			// Redis's default user has nopass: any password works for it.
			if !equalFold(r.Args[1], "default") {
				return errWrongPass
			}
			r.c.authed = true
			r.w.OK()
			return nil
		}
		err = r.e.checkPassword(r.Args[1], r.Args[2])
	default:
		return errSyntax
	}
	if err != nil {
		return err
	}
	r.c.authed = true
	r.w.OK()
	return nil
}

// >> HELLO [protover [AUTH username password] [SETNAME clientname]]
// Reply: a map describing the server; switches the connection to RESP2 or RESP3.
func cmdHello(r *Request) error {
	args := r.Args
	proto := r.c.proto
	if len(args) >= 2 {
		n, ok := parseInt(args[1])
		if !ok {
			return replyError("ERR Protocol version is not an integer or out of range")
		}
		if n < 2 || n > 3 {
			return errNoProto
		}
		proto = int(n)
	}
	var name []byte
	authed := r.c.authed
	for i := 2; i < len(args); i++ {
		switch {
		case equalFold(args[i], "auth") && i+2 < len(args):
			if err := r.e.checkPassword(args[i+1], args[i+2]); err != nil {
				if r.e.requirePass() == "" && equalFold(args[i+1], "default") {
					authed = true
				} else {
					return err
				}
			} else {
				authed = true
			}
			i += 2
		case equalFold(args[i], "setname") && i+1 < len(args):
			if !validClientName(args[i+1]) {
				return errBadClientName
			}
			name = args[i+1]
			i++
		default:
			return replyError("ERR Syntax error in HELLO option '" + string(args[i]) + "'")
		}
	}
	if !authed {
		return replyError("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	r.c.authed = true
	r.c.mu.Lock()
	r.c.proto = proto
	if name != nil {
		r.c.name = string(name)
	}
	r.c.mu.Unlock()
	if !r.countNames() {
		return nil
	}
	r.w.Proto = proto
	w := r.w
	w.Map(7)
	w.BulkString("server")
	w.BulkString("redis")
	w.BulkString("version")
	w.BulkString(RedisVersion)
	w.BulkString("proto")
	w.Int(int64(proto))
	w.BulkString("id")
	w.Int(r.c.ID)
	w.BulkString("mode")
	w.BulkString("standalone")
	w.BulkString("role")
	w.BulkString("master")
	w.BulkString("modules")
	w.Array(0)
	return nil
}

// validClientName applies Redis's rule: printable ASCII without spaces.
func validClientName(b []byte) bool {
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// >> CLIENT SETNAME | GETNAME | ID | INFO | LIST | SETINFO | KILL | PAUSE | UNPAUSE | REPLY | NO-EVICT | UNBLOCK ...
// Subcommand arity is checked before (dispatch), as Redis does.
func cmdClient(r *Request) error {
	sub := r.Args[1]
	c := r.c
	switch {
	case equalFold(sub, "setname"):
		if !validClientName(r.Args[2]) {
			return errBadClientName
		}
		c.mu.Lock()
		c.name = string(r.Args[2])
		c.mu.Unlock()
		if r.countNames() {
			r.w.OK()
		}
	case equalFold(sub, "getname"):
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			r.w.Null()
		} else {
			r.w.BulkString(name)
		}
	case equalFold(sub, "id"):
		r.w.Int(c.ID)
	case equalFold(sub, "info"):
		r.w.Verbatim(r.e.clientLine(c, time.Now()) + "\n")
	case equalFold(sub, "list"):
		switch {
		case len(r.Args) == 4 && equalFold(r.Args[2], "type"):
			switch t := r.Args[3]; {
			case equalFold(t, "normal"):
			case equalFold(t, "master"), equalFold(t, "replica"), equalFold(t, "slave"), equalFold(t, "pubsub"):
				r.w.Verbatim("") // no such clients here
				return nil
			default:
				return replyError("ERR Unknown client type '" + string(t) + "'")
			}
		case len(r.Args) > 3 && equalFold(r.Args[2], "id"):
			// As Redis: the clients in the order asked, repeats included.
			var sb strings.Builder
			now := time.Now()
			for _, a := range r.Args[3:] {
				id, ok := parseInt(a)
				if !ok {
					return replyError("ERR Invalid client ID")
				}
				r.e.clientsMu.Lock()
				cl := r.e.clients[id]
				r.e.clientsMu.Unlock()
				if cl != nil {
					sb.WriteString(r.e.clientLine(cl, now))
					sb.WriteByte('\n')
				}
			}
			r.w.Verbatim(sb.String())
			return nil
		case len(r.Args) != 2:
			return errSyntax
		}
		r.w.Verbatim(r.e.clientList())
	case equalFold(sub, "setinfo"):
		attr, val := r.Args[2], r.Args[3]
		for _, ch := range val {
			if ch < '!' || ch > '~' {
				return replyError("ERR " + string(attr) + " cannot contain spaces, newlines or special characters.")
			}
		}
		// The reply is written after c.mu is let go: a reply may grow the
		// client's buffer past maxmemory-clients, and evicting a client
		// takes its c.mu (resp.ClientMemory.NewAccount).
		c.mu.Lock()
		switch {
		case equalFold(attr, "lib-name"):
			c.libName = string(val)
		case equalFold(attr, "lib-ver"):
			c.libVer = string(val)
		default:
			c.mu.Unlock()
			return replyError("ERR Unrecognized option '" + string(attr) + "'")
		}
		c.mu.Unlock()
		if r.countNames() {
			r.w.OK()
		}
	case equalFold(sub, "kill"):
		return clientKill(r)
	case equalFold(sub, "unblock"):
		return clientUnblock(r)
	case equalFold(sub, "pause"):
		return clientPause(r)
	case equalFold(sub, "unpause"):
		r.e.in.pauseMu.Lock()
		r.e.in.pauseOn.Store(false)
		r.e.in.pauseMu.Unlock()
		r.w.OK()
	case equalFold(sub, "reply"):
		switch v := r.Args[2]; {
		case equalFold(v, "on"):
			c.replyOff, c.replySkip, c.replySkipNext = false, false, false
			r.w.OK()
		case equalFold(v, "off"):
			c.replyOff = true
		case equalFold(v, "skip"):
			if !c.replyOff {
				c.replySkipNext = true
			}
		default:
			return errSyntax
		}
	case equalFold(sub, "no-evict"):
		// Accepted and remembered, as Redis does; nothing is evicted here.
		switch v := r.Args[2]; {
		case equalFold(v, "on"):
			c.noEvict = true
		case equalFold(v, "off"):
			c.noEvict = false
		default:
			return errSyntax
		}
		r.w.OK()
	}
	return nil
}

// >> CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
// Reply: 1 if the client was blocked (it then gets its timeout's reply, or
// the UNBLOCKED error), else 0. The reason is checked before the id, as in
// Redis.
func clientUnblock(r *Request) error {
	if len(r.Args) > 4 {
		return errSubcommandArgs(r.Args[1], "CLIENT")
	}
	asError := false
	if len(r.Args) == 4 {
		switch v := r.Args[3]; {
		case equalFold(v, "timeout"):
		case equalFold(v, "error"):
			asError = true
		default:
			return replyError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
		}
	}
	id, err := intArg(r.Args[2])
	if err != nil {
		return err
	}
	r.w.Int(b2i(r.e.unblock(id, asError)))
	return nil
}

// >> CLIENT PAUSE timeout [WRITE | ALL]
func clientPause(r *Request) error {
	if len(r.Args) > 4 {
		return errSubcommandArgs(r.Args[1], "CLIENT")
	}
	ms, ok := parseInt(r.Args[2])
	if !ok {
		return replyError("ERR timeout is not an integer or out of range")
	}
	if ms < 0 {
		return replyError("ERR timeout is negative")
	}
	all := true
	switch {
	case len(r.Args) == 3:
	case len(r.Args) == 4 && equalFold(r.Args[3], "all"):
	case len(r.Args) == 4 && equalFold(r.Args[3], "write"):
		all = false
	default:
		return replyError("ERR CLIENT PAUSE mode must be WRITE or ALL")
	}
	until := time.Now().Add(time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond)
	in := &r.e.in
	in.pauseMu.Lock()
	// As Redis's pauseClients: a new pause extends the current one and
	// widens it to ALL, never shortens or narrows it.
	if in.pauseOn.Load() && time.Now().Before(in.pauseUntil) {
		if until.Before(in.pauseUntil) {
			until = in.pauseUntil
		}
		all = all || in.pauseAll
	}
	in.pauseAll, in.pauseUntil = all, until
	in.pauseOn.Store(true)
	in.pauseMu.Unlock()
	r.w.OK()
	return nil
}

// >> CLIENT KILL ip:port | CLIENT KILL <filter value> ...
// Filters: ID, ADDR, LADDR, TYPE, USER, SKIPME, MAXAGE (Redis 7.4's).
func clientKill(r *Request) error {
	e := r.e
	if len(r.Args) == 3 {
		// The old form: one address, OK or an error.
		target := e.findClients(func(cl *Client) bool { return cl.Addr == string(r.Args[2]) })
		if len(target) == 0 {
			return replyError("ERR No such client")
		}
		e.killClients(r.c, target)
		r.w.OK()
		return nil
	}
	if len(r.Args)%2 != 0 {
		return errSyntax
	}
	var (
		id, maxAge  int64
		addr, laddr []byte
		typ         string
		skipMe      = true
	)
	for i := 2; i < len(r.Args); i += 2 {
		opt, v := r.Args[i], r.Args[i+1]
		switch {
		case equalFold(opt, "id"):
			n, ok := parseInt(v)
			if !ok || n <= 0 {
				return replyError("ERR client-id should be greater than 0")
			}
			id = n
		case equalFold(opt, "type"):
			switch {
			case equalFold(v, "normal"):
				typ = "normal"
			case equalFold(v, "master"), equalFold(v, "replica"), equalFold(v, "slave"), equalFold(v, "pubsub"):
				typ = "none" // no such clients here
			default:
				return replyError("ERR Unknown client type '" + string(v) + "'")
			}
		case equalFold(opt, "addr"):
			addr = v
		case equalFold(opt, "laddr"):
			laddr = v
		case equalFold(opt, "user"):
			// Every connection is the default user's.
			if string(v) != "default" {
				return replyError("ERR No such user '" + string(v) + "'")
			}
		case equalFold(opt, "skipme"):
			switch {
			case equalFold(v, "yes"):
				skipMe = true
			case equalFold(v, "no"):
				skipMe = false
			default:
				return errSyntax
			}
		case equalFold(opt, "maxage"):
			n, ok := parseInt(v)
			if !ok || n <= 0 {
				return errSyntax
			}
			maxAge = n
		default:
			return errSyntax
		}
	}
	now := e.opts.Now()
	target := e.findClients(func(cl *Client) bool {
		switch {
		case id != 0 && cl.ID != id,
			addr != nil && cl.Addr != string(addr),
			laddr != nil && cl.LocalAddr != string(laddr),
			typ == "none",
			maxAge != 0 && int64(now.Sub(cl.Created).Seconds()) < maxAge,
			skipMe && cl == r.c:
			return false
		}
		return true
	})
	e.killClients(r.c, target)
	r.w.Int(int64(len(target)))
	return nil
}

func (e *Executor) findClients(match func(*Client) bool) []*Client {
	e.clientsMu.Lock()
	defer e.clientsMu.Unlock()
	var out []*Client
	for _, cl := range e.clients {
		// A client killed already is on its way out (its connection
		// closes on its own goroutine): Redis frees a killed client at
		// once, so a second CLIENT KILL does not find it.
		if !cl.Killed() && match(cl) {
			out = append(out, cl)
		}
	}
	return out
}

// killClients closes the connections of list; self (the client killing)
// is closed once its reply went out, as Redis does.
func (e *Executor) killClients(self *Client, list []*Client) {
	for _, cl := range list {
		if cl == self {
			self.CloseAfterReply = true
			continue
		}
		cl.kill()
	}
}

func (e *Executor) clientList() string {
	e.clientsMu.Lock()
	clients := make([]*Client, 0, len(e.clients))
	for _, c := range e.clients {
		clients = append(clients, c)
	}
	e.clientsMu.Unlock()
	slices.SortFunc(clients, func(a, b *Client) int { return int(a.ID - b.ID) })
	now := time.Now()
	var sb strings.Builder
	for _, c := range clients {
		sb.WriteString(e.clientLine(c, now))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// clientLine formats one client like Redis's CLIENT LIST; fields the gateway has
// no notion of keep Redis's neutral values so parsers find every field.
func (e *Executor) clientLine(c *Client, now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cmd := c.lastCmd
	if cmd == "" {
		cmd = "NULL"
	}
	flags := "N"
	if c.block != nil {
		flags = "b" // blocked (BLPOP ...); cmd names the command
	}
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=%s db=%d sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=%d events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.ID, c.Addr, c.LocalAddr, c.name, int64(now.Sub(c.Created).Seconds()), int64(now.Sub(e.lastAt(c)).Seconds()),
		// tot-mem: what maxmemory-clients counts of the client's buffers
		// (the part past each buffer's first 64 KiB), which is what
		// eviction compares, as Redis's tot-mem is.
		flags, c.db, c.Out.Mem.Held(), cmd, c.proto, c.libName, c.libVer)
}

// >> COMMAND | COMMAND COUNT | COMMAND INFO [name ...] | COMMAND DOCS [name ...] | COMMAND LIST
func cmdCommand(r *Request) error {
	w := r.w
	if len(r.Args) == 1 {
		w.Array(len(ordered))
		for _, c := range ordered {
			writeCommandInfo(w, c)
		}
		return nil
	}
	sub := r.Args[1]
	switch {
	case equalFold(sub, "count"):
		if len(r.Args) != 2 {
			return errWrongArgs("command|count")
		}
		w.Int(int64(len(ordered)))
	case equalFold(sub, "list"):
		w.Array(len(ordered))
		for _, c := range ordered {
			w.BulkString(c.Name)
		}
	case equalFold(sub, "info"):
		cmds := ordered
		if len(r.Args) > 2 {
			cmds = lookupAll(r.Args[2:])
		}
		w.Array(len(cmds))
		for _, c := range cmds {
			if c == nil {
				w.Null() // Redis's addReplyNull: a null bulk in RESP2
				continue
			}
			writeCommandInfo(w, c)
		}
	case equalFold(sub, "docs"):
		cmds := ordered
		if len(r.Args) > 2 {
			cmds = slices.DeleteFunc(lookupAll(r.Args[2:]), func(c *Command) bool { return c == nil })
		}
		w.Map(len(cmds))
		for _, c := range cmds {
			w.BulkString(c.Name)
			writeCommandDocs(w, c)
		}
	default:
		return errUnknownSubcommand(sub, "COMMAND")
	}
	return nil
}

// lookupAll finds commands by name; "container|sub" names a subcommand, as
// in Redis. Unknown names give nil.
func lookupAll(names [][]byte) []*Command {
	out := make([]*Command, len(names))
	for i, n := range names {
		name := string(lower(nil, n))
		parent, _, isSub := strings.Cut(name, "|")
		c := table[parent]
		if isSub && c != nil {
			subs := c.Subcommands
			c = nil
			if j := slices.IndexFunc(subs, func(s *Command) bool { return s.Name == name }); j >= 0 {
				c = subs[j]
			}
		}
		out[i] = c
	}
	return out
}

func (c *Command) flagList() []string {
	var out []string
	for _, f := range flagNames {
		if c.Flags&f.f != 0 {
			out = append(out, f.name)
		}
	}
	return out
}

// writeCommandInfo writes the 10-element COMMAND INFO entry of Redis 7.
func writeCommandInfo(w *resp.Writer, c *Command) {
	m := c.meta()
	w.Array(10)
	w.BulkString(c.Name)
	w.Int(int64(c.Arity))
	writeStatusSet(w, m.Flags)
	w.Int(int64(c.FirstKey))
	w.Int(int64(c.LastKey))
	w.Int(int64(c.Step))
	writeStatusSet(w, m.ACL)
	writeBulkSet(w, m.Tips) // Redis sends tips as bulk strings, flags as statuses
	writeKeySpecs(w, m.KeySpecs)
	if len(c.Subcommands) == 0 {
		w.Set(0) // as Redis does: an empty set, but an array of subcommands
		return
	}
	w.Array(len(c.Subcommands))
	for _, s := range c.Subcommands {
		writeCommandInfo(w, s)
	}
}

func writeCommandDocs(w *resp.Writer, c *Command) {
	n := 4
	if len(c.Subcommands) > 0 {
		n++
	}
	w.Map(n)
	w.BulkString("summary")
	w.BulkString(c.Summary)
	w.BulkString("since")
	w.BulkString(c.Since)
	w.BulkString("group")
	w.BulkString(c.Group)
	w.BulkString("complexity")
	w.BulkString(c.Complexity)
	if len(c.Subcommands) > 0 {
		w.BulkString("subcommands")
		w.Map(len(c.Subcommands))
		for _, s := range c.Subcommands {
			w.BulkString(s.Name)
			writeCommandDocs(w, s)
		}
	}
}

// >> TIME
func cmdTime(r *Request) error {
	now := r.e.opts.Now()
	r.w.Array(2)
	r.w.BulkString(strconv.FormatInt(now.Unix(), 10))
	r.w.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
	return nil
}

// expiredKeys asks the backend, if it counts them, how many keys expired.
func (e *Executor) expiredKeys() int64 {
	if ec, ok := e.be.(interface{ ExpiredKeys() int64 }); ok {
		return ec.ExpiredKeys()
	}
	return 0
}

// countNames reserves what the client's name and library attributes hold
// in its memory account (CLIENT SETNAME, CLIENT SETINFO, HELLO SETNAME):
// one client's are bounded by proto-max-bulk-len, many clients' together
// only by maxmemory-clients. It reports false if the client was evicted
// instead: its reply is marked overflowed, and the server closes it. Called
// without c.mu held (evicting a client takes its c.mu).
func (r *Request) countNames() bool {
	c := r.c
	c.mu.Lock()
	n := len(c.name) + len(c.libName) + len(c.libVer)
	c.mu.Unlock()
	if !c.nameRes.Fit(r.w.Mem, n) {
		r.w.Overflow()
		return false
	}
	return true
}
