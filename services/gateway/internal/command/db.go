package command

import (
	"bytes"
	"math"
	"unsafe"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Logical databases. A client's commands address the database it selected
// (SELECT, 0 at connect); every key crosses into the backend as a stored
// key, the database's prefix and the Redis key (package keyspace), so the
// backends keep databases apart without knowing about clients, and state
// kept by stored key (the watch registry, EXEC's key sets) is per database,
// as Redis's watched keys are (db, key) pairs.

// DefaultDatabases is Redis's default for the databases setting.
const DefaultDatabases = 16

func init() {
	register(
		&Command{Name: "move", Arity: 3, Flags: flagWrite | flagFast, FirstKey: 1, LastKey: 1, Step: 1, Group: "generic", Since: "1.0.0", Summary: "Moves a key to another database.", Complexity: "O(1)", Handler: cmdMove},
		&Command{Name: "copy", Arity: -3, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 2, Step: 1, Group: "generic", Since: "6.2.0", Summary: "Copies the value of a key to a new key.", Complexity: "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", Handler: cmdCopy},
		&Command{Name: "swapdb", Arity: 3, Flags: flagWrite | flagFast, Group: "server", Since: "4.0.0", Summary: "Swaps two Redis databases.", Complexity: "O(N) where N is the count of clients watching or blocking on keys from both databases.", Handler: cmdSwapDB, keyspaceWide: true},
	)
}

const errSameObject replyError = "ERR source and destination objects are the same"

// DB returns the database c has selected.
func (c *Client) DB() int { return int(c.db) }

// dbArg reads a database index as Redis's getIntFromObjectOrReply does (a C
// int), then checks it against the databases setting; msg, if not empty,
// replaces both parse errors (SWAPDB's "invalid first DB index").
func (e *Executor) dbArg(b []byte, msg replyError) (uint32, error) {
	n, err := parseDBIndex(b, msg)
	if err != nil {
		return 0, err
	}
	return e.checkDB(n)
}

// parseDBIndex is dbArg's parse alone: SWAPDB parses both indexes before
// it checks either.
func parseDBIndex(b []byte, msg replyError) (int64, error) {
	n, err := intArg(b)
	if err != nil {
		if msg != "" {
			return 0, msg
		}
		return 0, err
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		if msg != "" {
			return 0, msg
		}
		return 0, errIntRange
	}
	return n, nil
}

func (e *Executor) checkDB(n int64) (uint32, error) {
	if n < 0 || n >= int64(e.opts.Databases) {
		return 0, errDBIndex
	}
	return uint32(n), nil
}

// storedKeys returns keys in database db as stored keys, in one new
// allocation (a backend keeps the keys a write names until it commits).
func storedKeys(db uint32, keys [][]byte) [][]byte {
	n := 0
	for _, k := range keys {
		n += keyspace.PrefixLen + len(k)
	}
	buf := make([]byte, 0, n)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		start := len(buf)
		buf = keyspace.AppendKey(buf, db, k)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// storedKey is r's key in its client's database, in scratch space valid
// until the next call: for reads, which no backend retains.
func (r *Request) storedKey(key []byte) []byte {
	r.c.keyScratch = keyspace.AppendKey(r.c.keyScratch[:0], r.c.db, key)
	return r.c.keyScratch
}

// dbTxn is a command's Txn: it takes Redis keys of the client's database
// and hands the backend's Txn stored keys. The keys the command named were
// encoded once, before it ran; they are recognised by identity.
type dbTxn struct {
	backend.Txn
	db       uint32
	raw, enc [][]byte
}

func (t *dbTxn) key(k []byte) []byte {
	if len(t.raw) <= 8 {
		for i, r := range t.raw {
			if len(r) == len(k) && (len(k) == 0 || unsafe.SliceData(r) == unsafe.SliceData(k)) {
				return t.enc[i]
			}
		}
	}
	return keyspace.Key(t.db, k)
}

func (t *dbTxn) Get(key []byte) (backend.Value, bool, error) { return t.Txn.Get(t.key(key)) }
func (t *dbTxn) Head(key []byte) (backend.Head, bool, error) { return t.Txn.Head(t.key(key)) }
func (t *dbTxn) Set(key []byte, v backend.Value)             { t.Txn.Set(t.key(key), v) }
func (t *dbTxn) Delete(key []byte)                           { t.Txn.Delete(t.key(key)) }

// stored returns the stored-key Txn under a command's Txn (MOVE and COPY
// address two databases).
func stored(tx backend.Txn) backend.Txn {
	if t, ok := tx.(*dbTxn); ok {
		return t.Txn
	}
	return tx
}

// >> SELECT index
func cmdSelect(r *Request) error {
	db, err := r.e.dbArg(r.Args[1], "")
	if err != nil {
		return err
	}
	r.c.setDB(db)
	r.w.OK()
	return nil
}

func (c *Client) setDB(db uint32) {
	c.mu.Lock()
	c.db = db
	c.mu.Unlock()
}

// >> MOVE key db
// Reply: 1 if moved, 0 if the key is missing or exists in db. The value
// keeps its expiry.
func cmdMove(r *Request) error {
	dst, err := r.e.dbArg(r.Args[2], "")
	if err != nil {
		return err
	}
	src := r.c.db
	if dst == src {
		return errSameObject
	}
	key := r.Args[1]
	from, to := keyspace.Key(src, key), keyspace.Key(dst, key)
	var moved bool
	r.subKeys = true
	defer func() { r.subKeys = false }()
	err = r.updateStored([][]byte{from, to}, func(tx backend.Txn) error {
		moved = false
		v, ok, err := tx.Get(from)
		if err != nil || !ok {
			return err
		}
		if _, exists, err := tx.Head(to); err != nil || exists {
			return err
		}
		if v.Type.IsCollection() {
			if v, err = copyColl(tx, v, from, to); err != nil {
				return err
			}
			r.signalStoredKeyAsReady(to)
		}
		tx.Set(to, v)
		tx.Delete(from)
		moved = true
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(moved))
	return nil
}

// copyArgs parses COPY's options: the destination database (cur unless
// given) and REPLACE.
func (e *Executor) copyArgs(args [][]byte, cur uint32) (dst uint32, replace bool, err error) {
	dst = cur
	for i := 3; i < len(args); i++ {
		switch a := args[i]; {
		case equalFold(a, "replace"):
			replace = true
		case equalFold(a, "db") && i+1 < len(args):
			if dst, err = e.dbArg(args[i+1], ""); err != nil {
				return 0, false, err
			}
			i++
		default:
			return 0, false, errSyntax
		}
	}
	return dst, replace, nil
}

// >> COPY source destination [DB destination-db] [REPLACE]
// Reply: 1 if copied, 0 if the source is missing or the destination exists
// (without REPLACE). The copy keeps the source's expiry.
func cmdCopy(r *Request) error {
	dst, replace, err := r.e.copyArgs(r.Args, r.c.db)
	if err != nil {
		return err
	}
	src := r.c.db
	if src == dst && bytes.Equal(r.Args[1], r.Args[2]) {
		return errSameObject
	}
	from, to := keyspace.Key(src, r.Args[1]), keyspace.Key(dst, r.Args[2])
	var copied bool
	r.subKeys = true
	defer func() { r.subKeys = false }()
	err = r.updateStored([][]byte{from, to}, func(tx backend.Txn) error {
		copied = false
		v, ok, err := tx.Get(from)
		if err != nil || !ok {
			return err
		}
		if !replace {
			if _, exists, err := tx.Head(to); err != nil || exists {
				return err
			}
		}
		if v.Type.IsCollection() {
			if v, err = copyColl(tx, v, from, to); err != nil {
				return err
			}
			r.signalStoredKeyAsReady(to)
		}
		tx.Set(to, v) // values are never modified in place: the copy shares the bytes
		copied = true
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(copied))
	return nil
}

// >> SWAPDB index1 index2
// Clients watching a key of either database that exists in either become
// dirty, as Redis's touchAllWatchedKeysInDb decides.
func cmdSwapDB(r *Request) error {
	na, err := parseDBIndex(r.Args[1], "ERR invalid first DB index")
	if err != nil {
		return err
	}
	nb, err := parseDBIndex(r.Args[2], "ERR invalid second DB index")
	if err != nil {
		return err
	}
	a, err := r.e.checkDB(na)
	if err != nil {
		return err
	}
	b, err := r.e.checkDB(nb)
	if err != nil {
		return err
	}
	if a == b {
		r.w.OK()
		return nil
	}
	// A watched key of a or b is touched if it exists in a or b, before or
	// (equivalently) after the swap.
	var touch [][]byte
	for _, k := range r.e.watches.watchedKeys() {
		db := keyspace.DB(k)
		if db != a && db != b {
			continue
		}
		other := a
		if db == a {
			other = b
		}
		_, found, err := r.e.be.Heads(r.ctx, [][]byte{k, keyspace.Key(other, keyspace.UserKey(k))})
		if err != nil {
			return err
		}
		if found[0] || found[1] {
			touch = append(touch, k)
		}
	}
	err = r.e.be.SwapDB(r.ctx, a, b)
	if err != nil {
		return err
	}
	for _, k := range touch {
		r.e.watches.touch(k)
	}
	// As Redis 7.0: clients blocked on keys of either database look again.
	r.e.blocking.signalDBs(a, b)
	r.w.OK()
	return nil
}

// queueKeys returns the stored keys the queued commands name, each in the
// database it will run in: a queued SELECT changes it for those after it.
// MOVE and COPY also name their destination in its database.
func (c *Client) queueKeys(e *Executor, queue [][][]byte) [][]byte {
	var keys [][]byte
	db := c.db
	for _, args := range queue {
		cmd := c.lookup(args[0])
		if cmd == nil || !cmd.arityOK(len(args)) {
			continue
		}
		switch cmd.Name {
		case "select":
			if n, err := e.dbArg(args[1], ""); err == nil {
				db = n
			}
			continue
		case "move":
			if n, err := e.dbArg(args[2], ""); err == nil {
				keys = append(keys, keyspace.Key(n, args[1]))
			}
		case "copy":
			if n, _, err := e.copyArgs(args, db); err == nil {
				keys = append(keys, keyspace.Key(n, args[2]))
			}
		}
		keys = append(keys, storedKeys(db, cmd.keysOf(args))...)
	}
	return keys
}
