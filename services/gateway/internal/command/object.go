package command

import (
	"fmt"
	"math"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

func init() {
	const g = "generic"
	ro := func(name, since, summary string) *Command {
		return &Command{Name: name, Arity: 3, Flags: flagReadonly, FirstKey: 2, LastKey: 2, Step: 1, Group: g, Since: since, Summary: summary, Complexity: "O(1)"}
	}
	objectSubs := []*Command{
		ro("object|freq", "4.0.0", "Returns the logarithmic access frequency counter of a Redis object."),
		{Name: "object|help", Arity: 2, Flags: flagLoading | flagStale, Group: g, Since: "6.2.0", Summary: "Returns helpful text about the different subcommands.", Complexity: "O(1)"},
		ro("object|idletime", "2.2.3", "Returns the time since the last access to a Redis object."),
		ro("object|encoding", "2.2.3", "Returns the internal encoding of a Redis object."),
		ro("object|refcount", "2.2.3", "Returns the reference count of a value of a key."),
	}
	register(
		&Command{Name: "object", Arity: -2, Group: g, Since: "2.2.3", Summary: "A container for object introspection commands.", Complexity: "Depends on subcommand.", Handler: cmdObject, Subcommands: objectSubs},
	)
}

// Redis's encodings of a string (object.c): a canonical 64-bit integer of
// up to 20 characters is held as a number, a string of up to 44 bytes in
// one allocation with its header, anything longer in its own buffer.
const (
	intEncodingSize = 20
	embstrSizeLimit = 44
	// sharedIntegers: Redis shares one object for each of 0..9999 among
	// every key holding it, with a refcount of INT_MAX (OBJ_SHARED_REFCOUNT).
	sharedIntegers = 10000
	sharedRefcount = math.MaxInt32
)

const errFreqNotKept replyError = "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."

var objectHelp = []string{
	"OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"ENCODING <key>",
	"    Return the kind of internal representation used in order to store the value",
	"    associated with a <key>.",
	"FREQ <key>",
	"    Return the access frequency index of the <key>. The returned integer is",
	"    proportional to the logarithm of the recent access frequency of the key.",
	"IDLETIME <key>",
	"    Return the idle time of the <key>, that is the approximated number of",
	"    seconds elapsed since the last access to the key.",
	"REFCOUNT <key>",
	"    Return the number of references of the value associated with the specified",
	"    <key>.",
	"HELP",
	"    Prints this help.",
}

// >> OBJECT ENCODING | REFCOUNT | IDLETIME | FREQ key, OBJECT HELP
//
// The gateway does not keep Redis's object representation, so ENCODING and
// REFCOUNT answer what Redis answers for a string written by SET (or
// RESTORE, MSET, INCR...): the encoding and sharing follow from the bytes.
// No access clock is kept: IDLETIME is 0, and FREQ is refused as in Redis
// without an LFU policy. Missing keys are null.
func cmdObject(r *Request) error {
	sub := r.Args[1]
	var name string
	switch {
	case equalFold(sub, "help"):
		name = "object|help"
	case equalFold(sub, "encoding"):
		name = "object|encoding"
	case equalFold(sub, "refcount"):
		name = "object|refcount"
	case equalFold(sub, "idletime"):
		name = "object|idletime"
	case equalFold(sub, "freq"):
		name = "object|freq"
	default:
		return errUnknownSubcommand(sub, "OBJECT")
	}
	if name == "object|help" {
		if len(r.Args) != 2 {
			return errWrongArgs(name)
		}
		r.w.Array(len(objectHelp))
		for _, line := range objectHelp {
			r.w.Simple(line)
		}
		return nil
	}
	if len(r.Args) != 3 {
		return errWrongArgs(name)
	}
	key := r.Args[2]
	h, ok, err := r.head(key)
	if err != nil {
		return err
	}
	r.hit(ok)
	if !ok {
		r.w.Null()
		return nil
	}
	switch name {
	case "object|idletime":
		r.w.Int(0)
		return nil
	case "object|freq":
		return errFreqNotKept
	}
	if h.Type.IsCollection() {
		v, ok, err := r.get(key)
		if err != nil {
			return err
		}
		if !ok { // deleted between the two reads
			r.w.Null()
			return nil
		}
		enc, err := collectionEncoding(v)
		if err != nil {
			return err
		}
		if name == "object|encoding" {
			r.w.BulkString(enc)
		} else {
			r.w.Int(1)
		}
		return nil
	}
	// Only a value short enough to be an integer needs its bytes read.
	var data []byte
	if h.Len <= intEncodingSize {
		v, ok, err := r.get(key)
		if err != nil {
			return err
		}
		if !ok { // deleted between the two reads
			r.w.Null()
			return nil
		}
		h, data = backend.Head{Type: v.Type, ExpiresAt: v.ExpiresAt, Len: int64(len(v.Data))}, v.Data
	}
	if h.Type != backend.TypeString {
		return errWrongType
	}
	enc, shared := stringEncoding(h.Len, data)
	if name == "object|encoding" {
		r.w.BulkString(enc)
	} else if shared {
		r.w.Int(sharedRefcount)
	} else {
		r.w.Int(1)
	}
	return nil
}

// stringEncoding is the encoding Redis's tryObjectEncoding gives a string
// of n bytes (data holds them when n <= 20), and whether Redis shares the
// object (an integer from 0 to 9999).
func stringEncoding(n int64, data []byte) (enc string, shared bool) {
	if n <= intEncodingSize {
		if v, ok := parseInt(data); ok {
			return "int", v >= 0 && v < sharedIntegers
		}
	}
	if n <= embstrSizeLimit {
		return "embstr", false
	}
	return "raw", false
}

// collectionEncoding is the encoding Redis 7.0 reports for a collection of
// the same contents: it never converts back to the compact one, so the
// metadata records (keyspace.Meta.Big) whether a write crossed the limits.
func collectionEncoding(v backend.Value) (string, error) {
	m, err := keyspace.DecodeMeta(v.Data)
	if err != nil {
		return "", err
	}
	switch v.Type {
	case backend.TypeHash:
		if m.Big {
			return "hashtable", nil
		}
		return "listpack", nil
	case backend.TypeList:
		// Redis 7.0 stores every list as a quicklist (7.2 added a
		// listpack encoding for small ones).
		return "quicklist", nil
	case backend.TypeSet:
		if m.Big {
			return "hashtable", nil
		}
		return "intset", nil
	case backend.TypeZSet:
		if m.Big {
			return "skiplist", nil
		}
		return "listpack", nil
	}
	return "", fmt.Errorf("%w: OBJECT of a %s", backend.ErrNotSupported, v.Type)
}
