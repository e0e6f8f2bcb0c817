package command

import (
	"crypto/subtle"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/glob"
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
	}
	commandSubs := []*Command{
		{Name: "command|count", Arity: 2, Flags: any, Group: srv, Since: "2.8.13", Summary: "Returns a count of commands.", Complexity: "O(1)"},
		{Name: "command|docs", Arity: -2, Flags: any, Group: srv, Since: "7.0.0", Summary: "Returns documentary information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up"},
		{Name: "command|info", Arity: -2, Flags: any, Group: srv, Since: "2.8.13", Summary: "Returns information about one, multiple or all commands.", Complexity: "O(N) where N is the number of commands to look up"},
		{Name: "command|list", Arity: -2, Flags: any, Group: srv, Since: "7.0.0", Summary: "Returns a list of command names.", Complexity: "O(N) where N is the total number of Redis commands"},
	}
	configSubs := []*Command{
		{Name: "config|get", Arity: -3, Flags: flagNoScript | any, Group: srv, Since: "2.0.0", Summary: "Returns the effective values of configuration parameters.", Complexity: "O(N) when N is the number of configuration parameters provided"},
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
	if e.opts.RequirePass == "" {
		return errNoPassSet
	}
	if !equalFold(user, "default") ||
		subtle.ConstantTimeCompare(pass, []byte(e.opts.RequirePass)) != 1 {
		return errWrongPass
	}
	return nil
}

// >> AUTH [username] password
func cmdAuth(r *Request) error {
	var err error
	switch len(r.Args) {
	case 2:
		if r.e.opts.RequirePass == "" {
			return errNoPassSet
		}
		err = r.e.checkPassword([]byte("default"), r.Args[1])
	case 3:
		if r.e.opts.RequirePass == "" {
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
				if r.e.opts.RequirePass == "" && equalFold(args[i+1], "default") {
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

// >> CLIENT SETNAME | GETNAME | ID | INFO | LIST | SETINFO ...
func cmdClient(r *Request) error {
	sub := r.Args[1]
	check := func(name string, arity int) error {
		if (arity >= 0 && len(r.Args) != arity) || (arity < 0 && len(r.Args) < -arity) {
			return errWrongArgs(name)
		}
		return nil
	}
	c := r.c
	switch {
	case equalFold(sub, "setname"):
		if err := check("client|setname", 3); err != nil {
			return err
		}
		if !validClientName(r.Args[2]) {
			return errBadClientName
		}
		c.mu.Lock()
		c.name = string(r.Args[2])
		c.mu.Unlock()
		r.w.OK()
	case equalFold(sub, "getname"):
		if err := check("client|getname", 2); err != nil {
			return err
		}
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name == "" {
			r.w.Null()
		} else {
			r.w.BulkString(name)
		}
	case equalFold(sub, "id"):
		if err := check("client|id", 2); err != nil {
			return err
		}
		r.w.Int(c.ID)
	case equalFold(sub, "info"):
		if err := check("client|info", 2); err != nil {
			return err
		}
		r.w.Verbatim(r.e.clientLine(c, time.Now()) + "\n")
	case equalFold(sub, "list"):
		if err := check("client|list", -2); err != nil {
			return err
		}
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
		if err := check("client|setinfo", 4); err != nil {
			return err
		}
		attr, val := r.Args[2], r.Args[3]
		for _, ch := range val {
			if ch < '!' || ch > '~' {
				return replyError("ERR " + string(attr) + " cannot contain spaces, newlines or special characters.")
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case equalFold(attr, "lib-name"):
			c.libName = string(val)
		case equalFold(attr, "lib-ver"):
			c.libVer = string(val)
		default:
			return replyError("ERR Unrecognized option '" + string(attr) + "'")
		}
		r.w.OK()
	default:
		return errUnknownSubcommand(sub, "CLIENT")
	}
	return nil
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
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=-1 name=%s age=%d idle=%d flags=N db=%d sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s",
		c.ID, c.Addr, c.LocalAddr, c.name, int64(now.Sub(c.Created).Seconds()), int64(now.Sub(e.lastAt(c)).Seconds()),
		c.db, cmd, c.proto, c.libName, c.libVer)
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

// configParams returns the parameters CONFIG GET answers: the ones the gateway
// has, and Redis's fixed values for those clients and tools commonly ask about.
func (e *Executor) configParams() [][2]string {
	appendonly := "no"
	if e.opts.SyncPolicy != "" {
		appendonly = "yes" // every write goes through the WAL
	}
	_, port, _ := strings.Cut(e.opts.Addr, ":")
	if i := strings.LastIndexByte(e.opts.Addr, ':'); i >= 0 {
		port = e.opts.Addr[i+1:]
	}
	return [][2]string{
		{"appendfsync", e.opts.SyncPolicy},
		{"appendonly", appendonly},
		{"bind", strings.TrimSuffix(e.opts.Addr, ":"+port)},
		{"databases", strconv.Itoa(e.opts.Databases)},
		{"maxclients", strconv.Itoa(e.opts.MaxClients)},
		{"maxmemory", "0"},
		{"maxmemory-policy", "noeviction"},
		{"port", port},
		{"proto-max-bulk-len", strconv.FormatInt(e.opts.MaxBulkLen, 10)},
		{"requirepass", e.opts.RequirePass},
		{"save", ""},
		{"timeout", "0"},
		{"hz", "10"},
		{"cluster-enabled", "no"},
		{"client-query-buffer-limit", strconv.FormatInt(e.opts.QueryBufferLimit, 10)},
		// Only normal clients exist here; the other classes keep Redis's
		// defaults, as CONFIG GET in Redis lists them.
		{"client-output-buffer-limit", fmt.Sprintf("normal %d %d %d slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			e.opts.OutputBufferLimit[0], e.opts.OutputBufferLimit[1], e.opts.OutputBufferLimit[2])},
	}
}

// >> CONFIG GET parameter [parameter ...]
// Reply: a map of the matching parameters (glob patterns allowed).
func cmdConfig(r *Request) error {
	sub := r.Args[1]
	if !equalFold(sub, "get") {
		return errUnknownSubcommand(sub, "CONFIG")
	}
	if len(r.Args) < 3 {
		return errWrongArgs("config|get")
	}
	var out [][2]string
	seen := map[string]bool{}
	for _, p := range r.e.configParams() {
		for _, pat := range r.Args[2:] {
			if !seen[p[0]] && glob.Match(lower(nil, pat), []byte(p[0])) {
				seen[p[0]] = true
				out = append(out, p)
			}
		}
	}
	r.w.Map(len(out))
	for _, p := range out {
		r.w.BulkString(p[0])
		r.w.BulkString(p[1])
	}
	return nil
}

// >> TIME
func cmdTime(r *Request) error {
	now := r.e.opts.Now()
	r.w.Array(2)
	r.w.BulkString(strconv.FormatInt(now.Unix(), 10))
	r.w.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
	return nil
}

// >> INFO [section ...]
func cmdInfo(r *Request) error {
	want := map[string]bool{}
	for _, a := range r.Args[1:] {
		want[string(lower(nil, a))] = true
	}
	all := len(want) == 0 || want["all"] || want["everything"] || want["default"]
	var sb strings.Builder
	section := func(name string, body func(*strings.Builder) error) error {
		if !all && !want[strings.ToLower(name)] {
			return nil
		}
		if sb.Len() > 0 {
			sb.WriteString("\r\n")
		}
		sb.WriteString("# " + name + "\r\n")
		return body(&sb)
	}
	e := r.e
	kv := func(b *strings.Builder, k string, v any) { fmt.Fprintf(b, "%s:%v\r\n", k, v) }
	now := e.opts.Now()
	_ = section("Server", func(b *strings.Builder) error {
		kv(b, "redis_version", RedisVersion)
		kv(b, "redis_mode", "standalone")
		kv(b, "nokv_backend", e.opts.Backend)
		kv(b, "os", runtime.GOOS+" "+runtime.GOARCH)
		kv(b, "arch_bits", strconv.IntSize)
		kv(b, "go_version", runtime.Version())
		kv(b, "process_id", os.Getpid())
		kv(b, "tcp_port", e.configValue("port"))
		kv(b, "uptime_in_seconds", int64(now.Sub(e.started).Seconds()))
		kv(b, "uptime_in_days", int64(now.Sub(e.started).Hours()/24))
		kv(b, "hz", 10)
		return nil
	})
	_ = section("Clients", func(b *strings.Builder) error {
		kv(b, "connected_clients", e.ConnectedClients())
		kv(b, "maxclients", e.opts.MaxClients)
		kv(b, "blocked_clients", 0)
		return nil
	})
	_ = section("Memory", func(b *strings.Builder) error {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		kv(b, "used_memory", ms.HeapAlloc)
		kv(b, "used_memory_rss", ms.Sys)
		kv(b, "maxmemory", 0)
		kv(b, "maxmemory_policy", "noeviction")
		return nil
	})
	_ = section("Persistence", func(b *strings.Builder) error {
		kv(b, "loading", 0)
		kv(b, "aof_enabled", 1)
		kv(b, "nokv_sync_policy", e.opts.SyncPolicy)
		kv(b, "rdb_bgsave_in_progress", 0)
		kv(b, "aof_rewrite_in_progress", 0)
		return nil
	})
	_ = section("Stats", func(b *strings.Builder) error {
		kv(b, "total_connections_received", e.connectionsTotal.Load())
		kv(b, "total_commands_processed", e.commandsProcessed.Load())
		kv(b, "rejected_connections", e.rejectedConns.Load())
		kv(b, "expired_keys", e.expiredKeys())
		kv(b, "keyspace_hits", e.keyspaceHits.Load())
		kv(b, "keyspace_misses", e.keyspaceMisses.Load())
		return nil
	})
	_ = section("Replication", func(b *strings.Builder) error {
		kv(b, "role", "master")
		kv(b, "connected_slaves", 0)
		return nil
	})
	if err := section("Keyspace", func(b *strings.Builder) error {
		dbs, err := e.be.Keyspace(r.ctx)
		if err != nil {
			return err
		}
		for _, d := range dbs {
			if d.Keys > 0 {
				fmt.Fprintf(b, "db%d:keys=%d,expires=%d,avg_ttl=0\r\n", d.DB, d.Keys, d.Expires)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	r.w.Verbatim(sb.String())
	return nil
}

func (e *Executor) configValue(name string) string {
	for _, p := range e.configParams() {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

// expiredKeys asks the backend, if it counts them, how many keys expired.
func (e *Executor) expiredKeys() int64 {
	if ec, ok := e.be.(interface{ ExpiredKeys() int64 }); ok {
		return ec.ExpiredKeys()
	}
	return 0
}
