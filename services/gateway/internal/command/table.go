package command

import "sync/atomic"

// Flag is a command property, reported by COMMAND INFO.
type Flag uint32

// Command flags; names as Redis reports them.
const (
	flagWrite Flag = 1 << iota
	flagReadonly
	flagDenyOOM
	flagFast
	flagNoAuth
	flagLoading
	flagStale
	flagNoScript
)

var flagNames = []struct {
	f    Flag
	name string
}{
	{flagWrite, "write"}, {flagReadonly, "readonly"}, {flagDenyOOM, "denyoom"},
	{flagFast, "fast"}, {flagNoAuth, "no_auth"}, {flagLoading, "loading"},
	{flagStale, "stale"}, {flagNoScript, "noscript"},
}

// Command is one entry of the command table.
type Command struct {
	Name string
	// Arity as Redis defines it: n means exactly n arguments including the name,
	// -n means at least n.
	Arity int
	Flags Flag
	// FirstKey, LastKey and Step locate the key arguments (LastKey -1: to the end).
	FirstKey, LastKey, Step int
	Group                   string
	Since                   string
	Summary                 string
	Complexity              string
	Handler                 func(*Request) error
	// Subcommands of container commands (CLIENT, COMMAND, CONFIG), for COMMAND INFO.
	Subcommands []*Command
	// Long marks a command whose work grows with the keyspace (KEYS): a
	// server running commands on one thread runs it on a goroutine of its
	// own, so that it cannot stall every other client (see RunsLong).
	Long bool
	// keyspaceWide marks a command over the whole keyspace (KEYS, SCAN,
	// FLUSHALL, ...), which EXEC runs outside its transaction of named keys.
	keyspaceWide bool
	// noMulti marks a command refused inside MULTI (Redis's no_multi flag):
	// queueing it fails the transaction.
	noMulti bool
	// subKeys marks a command that may read or write collections'
	// sub-keys: EXEC tells the backend when its queue holds one
	// (WriteOptions.SubKeys).
	subKeys bool
	// keyFunc locates the keys of a command whose keys FirstKey, LastKey
	// and Step cannot describe (SINTERCARD's numkeys).
	keyFunc func(args [][]byte) [][]byte

	// Calls counts executions, for INFO commandstats and metrics; Usec
	// their total duration in microseconds; Rejected the calls refused
	// before running (arity, authentication, ...) and Failed those that
	// ran and answered an error, as Redis counts them.
	Calls, Usec, Rejected, Failed atomic.Int64
	// admin marks Redis's admin commands (CONFIG, CLIENT LIST, ...), which
	// MONITOR does not show; set from the Redis metadata at init.
	admin bool
	// ID is the command's position in Commands(), assigned at registration, so
	// that per-command state can live in a slice instead of a map.
	ID int
}

func (c *Command) arityOK(n int) bool {
	if c.Arity >= 0 {
		return n == c.Arity
	}
	return n >= -c.Arity
}

// table maps lowercase names to commands; filled by register in init functions.
var table = map[string]*Command{}

// ordered lists the commands in registration order, for COMMAND and metrics.
var ordered []*Command

func register(cmds ...*Command) {
	for _, c := range cmds {
		if _, dup := table[c.Name]; dup {
			panic("command: duplicate registration of " + c.Name)
		}
		table[c.Name] = c
		c.ID = len(ordered)
		ordered = append(ordered, c)
	}
}

// Commands returns the command table in registration order.
func Commands() []*Command { return ordered }

// Lookup returns the command called name (lowercase), or nil.
func Lookup(name string) *Command { return table[name] }
