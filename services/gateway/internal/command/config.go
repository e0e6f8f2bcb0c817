package command

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/nokv/nokv/services/gateway/internal/glob"
)

// configParam is one setting CONFIG GET reports; set, when not nil, is how
// CONFIG SET changes it while the server runs. The others answer Redis's
// "can't set immutable config": they are set at start (flags, environment).
type configParam struct {
	name string
	get  func(e *Executor) string
	// parse checks a new value and returns the function that applies it;
	// nothing is applied until every value of a CONFIG SET parsed.
	parse func(e *Executor, v string) (apply func(), err error)
}

// configParams lists the settings in CONFIG GET's order: the gateway's own,
// and Redis's fixed values for those clients and tools commonly ask about.
func (e *Executor) configParams() []configParam {
	fixed := func(v string) func(*Executor) string { return func(*Executor) string { return v } }
	port := e.opts.Addr
	if i := strings.LastIndexByte(port, ':'); i >= 0 {
		port = port[i+1:]
	}
	bind := strings.TrimSuffix(e.opts.Addr, ":"+port)
	appendonly := "no"
	if e.opts.SyncPolicy != "" {
		appendonly = "yes" // every write goes through the WAL
	}
	return []configParam{
		{name: "appendfsync", get: fixed(e.opts.SyncPolicy)},
		{name: "appendonly", get: fixed(appendonly)},
		{name: "bind", get: fixed(bind)},
		{name: "databases", get: fixed(strconv.Itoa(e.opts.Databases))},
		{name: "maxclients", get: func(e *Executor) string { return strconv.FormatInt(e.in.maxClients.Load(), 10) },
			parse: intSetting(1, math.MaxUint32, func(e *Executor, n int64) { e.in.maxClients.Store(n) })},
		{name: "maxmemory", get: fixed("0")},
		{name: "maxmemory-policy", get: fixed("noeviction")},
		{name: "maxmemory-clients", get: func(e *Executor) string {
			if v := e.in.maxMemClients.Load(); v < 0 {
				return strconv.FormatInt(-v, 10) + "%"
			} else {
				return strconv.FormatInt(v, 10)
			}
		}, parse: memoryPercentSetting(-100, func(e *Executor, v int64) {
			e.in.maxMemClients.Store(v)
			e.opts.ClientMemory.SetLimit(clientMemoryBytes(v, e.opts.MemoryLimit))
		})},
		{name: "port", get: fixed(port)},
		{name: "proto-max-bulk-len", get: fixed(strconv.FormatInt(e.opts.MaxBulkLen, 10))},
		{name: "requirepass", get: func(e *Executor) string { return e.requirePass() },
			parse: func(e *Executor, v string) (func(), error) {
				return func() { e.in.requirePass.Store(&v) }, nil
			}},
		{name: "save", get: fixed("")},
		{name: "timeout", get: fixed("0")},
		{name: "hz", get: fixed("10")},
		{name: "cluster-enabled", get: fixed("no")},
		{name: "client-query-buffer-limit", get: fixed(strconv.FormatInt(e.opts.QueryBufferLimit, 10))},
		// Only normal clients exist here; the other classes keep Redis's
		// defaults, as CONFIG GET in Redis lists them.
		{name: "client-output-buffer-limit", get: fixed(fmt.Sprintf("normal %d %d %d slave 268435456 67108864 60 pubsub 33554432 8388608 60",
			e.opts.OutputBufferLimit[0], e.opts.OutputBufferLimit[1], e.opts.OutputBufferLimit[2]))},
		{name: "slowlog-log-slower-than", get: func(e *Executor) string { return strconv.FormatInt(e.in.slowerThan.Load(), 10) },
			parse: intSetting(-1, math.MaxInt64, func(e *Executor, n int64) { e.in.slowerThan.Store(n) })},
		{name: "slowlog-max-len", get: func(e *Executor) string { return strconv.FormatInt(e.in.slowMax.Load(), 10) },
			parse: intSetting(0, math.MaxInt64, func(e *Executor, n int64) { e.in.slowMax.Store(n) })},
		{name: "latency-monitor-threshold", get: func(e *Executor) string { return strconv.FormatInt(e.in.latencyThreshold.Load(), 10) },
			parse: intSetting(0, math.MaxInt64, func(e *Executor, n int64) { e.in.latencyThreshold.Store(n) })},
		{name: "latency-tracking", get: fixed("no")},
		// The collection encoding thresholds (enclimits.go): OBJECT
		// ENCODING and MEMORY USAGE follow them as writes cross them.
		// Redis 7.0 also answers to the ziplist names, each an alias
		// sharing its listpack setting's value.
		limitParam("hash-max-listpack-entries", func(e *Executor) *atomic.Int64 { return &e.limits.hashEntries }, sizeEntries),
		limitParam("hash-max-listpack-value", func(e *Executor) *atomic.Int64 { return &e.limits.hashValue }, sizeMemory),
		limitParam("hash-max-ziplist-entries", func(e *Executor) *atomic.Int64 { return &e.limits.hashEntries }, sizeEntries),
		limitParam("hash-max-ziplist-value", func(e *Executor) *atomic.Int64 { return &e.limits.hashValue }, sizeMemory),
		limitParam("set-max-intset-entries", func(e *Executor) *atomic.Int64 { return &e.limits.setIntset }, sizeEntries),
		limitParam("zset-max-listpack-entries", func(e *Executor) *atomic.Int64 { return &e.limits.zsetEntries }, sizeEntries),
		limitParam("zset-max-listpack-value", func(e *Executor) *atomic.Int64 { return &e.limits.zsetValue }, sizeMemory),
		limitParam("zset-max-ziplist-entries", func(e *Executor) *atomic.Int64 { return &e.limits.zsetEntries }, sizeEntries),
		limitParam("zset-max-ziplist-value", func(e *Executor) *atomic.Int64 { return &e.limits.zsetValue }, sizeMemory),
		limitParam("list-max-listpack-size", func(e *Executor) *atomic.Int64 { return &e.limits.listFill }, intInt),
		limitParam("list-max-ziplist-size", func(e *Executor) *atomic.Int64 { return &e.limits.listFill }, intInt),
		limitParam("list-compress-depth", func(e *Executor) *atomic.Int64 { return &e.limits.listCompress }, intDepth),
	}
}

// The kinds of numeric setting the encoding thresholds are in Redis 7.0's
// config.c, each with its parser and range.
const (
	sizeEntries = iota // size_t in [0, LONG_MAX], a plain integer
	sizeMemory         // size_t in [0, LONG_MAX], MEMORY_CONFIG (1kb, 2m...)
	intInt             // int in [INT_MIN, INT_MAX]
	intDepth           // int in [0, INT_MAX]
)

// limitParam is an encoding threshold's setting, read and written through
// the atomic field returns.
func limitParam(name string, field func(*Executor) *atomic.Int64, kind int) configParam {
	set := func(e *Executor, n int64) { field(e).Store(n) }
	p := configParam{name: name, get: func(e *Executor) string { return strconv.FormatInt(field(e).Load(), 10) }}
	switch kind {
	case sizeEntries:
		p.parse = intSetting(0, math.MaxInt64, set)
	case sizeMemory:
		p.parse = memorySetting(math.MaxInt64, set)
	case intInt:
		p.parse = intSetting(math.MinInt32, math.MaxInt32, set)
	case intDepth:
		p.parse = intSetting(0, math.MaxInt32, set)
	}
	return p
}

// intSetting parses an integer setting within [lo, hi] as Redis's numeric
// configs do.
func intSetting(lo, hi int64, set func(*Executor, int64)) func(*Executor, string) (func(), error) {
	return func(e *Executor, v string) (func(), error) {
		n, ok := parseInt([]byte(v))
		if !ok {
			return nil, errors.New("argument couldn't be parsed into an integer")
		}
		if n < lo || n > hi {
			return nil, errBetween(lo, hi)
		}
		return func() { set(e, n) }, nil
	}
}

// errBetween is numericBoundaryCheck's complaint.
func errBetween(lo, hi int64) error {
	return fmt.Errorf("argument must be between %d and %d inclusive", lo, hi)
}

func (e *Executor) configValue(name string) string {
	for _, p := range e.configParams() {
		if p.name == name {
			return p.get(e)
		}
	}
	return ""
}

// >> CONFIG GET parameter [parameter ...] | SET parameter value [parameter value ...] | RESETSTAT | HELP
func cmdConfig(r *Request) error {
	switch sub := r.Args[1]; {
	case equalFold(sub, "get"):
		return configGet(r)
	case equalFold(sub, "set"):
		return configSet(r)
	case equalFold(sub, "resetstat"):
		r.e.resetStats()
		r.w.OK()
	case equalFold(sub, "help"):
		writeHelp(r.w, "CONFIG",
			"GET <pattern>",
			"    Return parameters matching the glob-like <pattern> and their values.",
			"SET <directive> <value>",
			"    Set the configuration <directive> to <value>.",
			"RESETSTAT",
			"    Reset statistics reported by the INFO command.",
			"REWRITE",
			"    Rewrite the configuration file.")
	}
	return nil
}

// configGet replies a map of the parameters matching the glob patterns.
// A pattern without glob characters is a name looked up without case and
// answered as the client spelled it, as Redis's configGetCommand does.
func configGet(r *Request) error {
	var out [][2]string
	seen := map[string]bool{}
	for _, p := range r.e.configParams() {
		for _, pat := range r.Args[2:] {
			if seen[p.name] {
				break
			}
			if !bytes.ContainsAny(pat, "[*?") {
				if equalFold(pat, p.name) {
					seen[p.name] = true
					out = append(out, [2]string{string(pat), p.get(r.e)})
				}
			} else if glob.Match(lower(nil, pat), []byte(p.name)) {
				seen[p.name] = true
				out = append(out, [2]string{p.name, p.get(r.e)})
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

// configSet applies every pair or none, with Redis 7's checks in its
// order: unknown names, immutable settings and repeats first (the first
// found is reported), then each value.
func configSet(r *Request) error {
	if len(r.Args)%2 != 0 {
		return errSyntax
	}
	params := r.e.configParams()
	find := func(name []byte) *configParam {
		for i := range params {
			if equalFold(name, params[i].name) {
				return &params[i]
			}
		}
		return nil
	}
	failed := func(name, why string) error {
		return replyError("ERR CONFIG SET failed (possibly related to argument '" + name + "') - " + why)
	}
	var chosen []*configParam
	for i := 2; i < len(r.Args); i += 2 {
		p := find(r.Args[i])
		if p == nil {
			return replyError("ERR Unknown option or number of arguments for CONFIG SET - '" + string(r.Args[i]) + "'")
		}
		if p.parse == nil {
			return failed(p.name, "can't set immutable config")
		}
		for _, q := range chosen {
			if q == p {
				return failed(p.name, "duplicate parameter")
			}
		}
		chosen = append(chosen, p)
	}
	applies := make([]func(), len(chosen))
	for i, p := range chosen {
		apply, err := p.parse(r.e, string(r.Args[3+2*i]))
		if err != nil {
			return failed(p.name, err.Error())
		}
		applies[i] = apply
	}
	for _, apply := range applies {
		apply()
	}
	r.w.OK()
	return nil
}
