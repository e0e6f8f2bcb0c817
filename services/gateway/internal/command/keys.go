package command

import (
	"bytes"
	"math"
	"strconv"
	"sync"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/glob"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
	"github.com/nokv/nokv/services/gateway/internal/resp"
)

func init() {
	const (
		g  = "generic"
		rf = flagReadonly | flagFast
		wf = flagWrite | flagFast
	)
	register(
		&Command{Name: "del", Arity: -2, Flags: flagWrite, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Deletes one or more keys.", Complexity: "O(N) where N is the number of keys that will be removed.", Handler: cmdDel},
		&Command{Name: "unlink", Arity: -2, Flags: wf, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "4.0.0", Summary: "Asynchronously deletes one or more keys.", Complexity: "O(1) for each key removed regardless of its size.", Handler: cmdDel},
		&Command{Name: "exists", Arity: -2, Flags: rf, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "1.0.0", Summary: "Determines whether one or more keys exist.", Complexity: "O(N) where N is the number of keys to check.", Handler: cmdExists},
		&Command{Name: "touch", Arity: -2, Flags: rf, FirstKey: 1, LastKey: -1, Step: 1, Group: g, Since: "3.2.1", Summary: "Returns the number of existing keys out of those specified after updating the time they were last accessed.", Complexity: "O(N) where N is the number of keys that will be touched.", Handler: cmdExists},
		&Command{Name: "type", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Determines the type of value stored at a key.", Complexity: "O(1)", Handler: cmdType},
		&Command{Name: "expire", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Sets the expiration time of a key in seconds.", Complexity: "O(1)", Handler: expireCmd(1000, false)},
		&Command{Name: "pexpire", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Sets the expiration time of a key in milliseconds.", Complexity: "O(1)", Handler: expireCmd(1, false)},
		&Command{Name: "expireat", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.2.0", Summary: "Sets the expiration time of a key to a Unix timestamp.", Complexity: "O(1)", Handler: expireCmd(1000, true)},
		&Command{Name: "pexpireat", Arity: -3, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.", Complexity: "O(1)", Handler: expireCmd(1, true)},
		&Command{Name: "ttl", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "1.0.0", Summary: "Returns the expiration time in seconds of a key.", Complexity: "O(1)", Handler: ttlCmd(false, false)},
		&Command{Name: "pttl", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Returns the expiration time in milliseconds of a key.", Complexity: "O(1)", Handler: ttlCmd(true, false)},
		&Command{Name: "expiretime", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "7.0.0", Summary: "Returns the expiration time of a key as a Unix timestamp.", Complexity: "O(1)", Handler: ttlCmd(false, true)},
		&Command{Name: "pexpiretime", Arity: 2, Flags: rf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "7.0.0", Summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.", Complexity: "O(1)", Handler: ttlCmd(true, true)},
		&Command{Name: "persist", Arity: 2, Flags: wf, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.2.0", Summary: "Removes the expiration time of a key.", Complexity: "O(1)", Handler: cmdPersist},
		&Command{Name: "rename", Arity: 3, Flags: flagWrite, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "1.0.0", Summary: "Renames a key and overwrites the destination.", Complexity: "O(1)", Handler: cmdRename},
		&Command{Name: "renamenx", Arity: 3, Flags: wf, FirstKey: 1, LastKey: 2, Step: 1, Group: g, Since: "1.0.0", Summary: "Renames a key only when the target key name doesn't exist.", Complexity: "O(1)", Handler: cmdRenameNX},
		&Command{Name: "keys", Arity: 2, Flags: flagReadonly, Group: g, Since: "1.0.0", Summary: "Returns all key names that match a pattern.", Complexity: "O(N) with N being the number of keys in the database", Handler: cmdKeys, Long: true},
		&Command{Name: "scan", Arity: -2, Flags: flagReadonly, Group: g, Since: "2.8.0", Summary: "Iterates over the key names in the database.", Complexity: "O(1) for every call. O(N) for a complete iteration.", Handler: cmdScan},
		&Command{Name: "dbsize", Arity: 1, Flags: rf, Group: "server", Since: "1.0.0", Summary: "Returns the number of keys in the database.", Complexity: "O(1)", Handler: cmdDBSize},
		&Command{Name: "flushdb", Arity: -1, Flags: flagWrite, Group: "server", Since: "1.0.0", Summary: "Remove all keys from the current database.", Complexity: "O(N) where N is the number of keys in the selected database", Handler: cmdFlush},
		&Command{Name: "flushall", Arity: -1, Flags: flagWrite, Group: "server", Since: "1.0.0", Summary: "Removes all keys from all databases.", Complexity: "O(N) where N is the total number of keys in all databases", Handler: cmdFlush},
		&Command{Name: "randomkey", Arity: 1, Flags: flagReadonly, Group: g, Since: "1.0.0", Summary: "Returns a random key name from the database.", Complexity: "O(1)", Handler: cmdRandomKey},
	)
}

func (e *Executor) nowMs() int64 { return e.opts.Now().UnixMilli() }

// >> DEL key [key ...] (and UNLINK)
// Reply: the number of keys removed. All deletions commit in one batch.
func cmdDel(r *Request) error {
	keys := r.Args[1:]
	var n int64
	err := r.update(keys, func(tx backend.Txn) error {
		n = 0
		for _, k := range keys {
			_, ok, err := tx.Head(k)
			if err != nil {
				return err
			}
			if ok {
				tx.Delete(k)
				n++
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(n)
	return nil
}

// >> EXISTS key [key ...] (and TOUCH)
// Reply: how many of the keys exist, counting repeats.
func cmdExists(r *Request) error {
	_, found, err := r.heads(r.Args[1:])
	if err != nil {
		return err
	}
	var n int64
	for _, ok := range found {
		n += b2i(ok)
	}
	r.w.Int(n)
	return nil
}

// >> TYPE key
func cmdType(r *Request) error {
	h, ok, err := r.head(r.Args[1])
	if err != nil {
		return err
	}
	if !ok {
		r.w.Simple("none")
		return nil
	}
	r.w.Simple(h.Type.String())
	return nil
}

// head reads one key's head: its type, expiry and length, not its data.
func (r *Request) head(key []byte) (backend.Head, bool, error) {
	heads, found, err := r.heads(r.c.oneKey(key))
	if err != nil {
		return backend.Head{}, false, err
	}
	return heads[0], found[0], nil
}

// expireCmd builds EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT.
//
// >> EXPIRE key seconds [NX | XX | GT | LT]
// Reply: 1 if the expiry was set (or the key deleted because the time is already
// past), 0 if the key does not exist or a condition failed.
func expireCmd(unitMs int64, abs bool) func(*Request) error {
	return func(r *Request) error {
		name := r.cmd.Name
		var nx, xx, gt, lt bool
		for _, a := range r.Args[3:] {
			switch {
			case equalFold(a, "nx"):
				nx = true
			case equalFold(a, "xx"):
				xx = true
			case equalFold(a, "gt"):
				gt = true
			case equalFold(a, "lt"):
				lt = true
			default:
				return replyError("ERR Unsupported option " + string(a))
			}
		}
		if nx && (xx || gt || lt) {
			return replyError("ERR NX and XX, GT or LT options at the same time are not compatible")
		}
		if gt && lt {
			return replyError("ERR GT and LT options at the same time are not compatible")
		}
		// Redis judges the options before the time.
		n, err := intArg(r.Args[2])
		if err != nil {
			return err
		}
		if unitMs == 1000 {
			if n > math.MaxInt64/1000 || n < math.MinInt64/1000 {
				return errInvalidExpire(name)
			}
			n *= 1000
		}
		key := r.Args[1]
		var done bool
		err = r.update([][]byte{key}, func(tx backend.Txn) error {
			done = false
			at := n
			if !abs {
				// Counted from the transaction's clock: on the raft backend
				// that is the cluster's timestamp oracle, which every reader
				// judges expiry by.
				now := tx.Now()
				if at > math.MaxInt64-now {
					return errInvalidExpire(name)
				}
				at += now
			}
			v, ok, err := tx.Get(key)
			if err != nil || !ok {
				return err
			}
			cur := v.ExpiresAt // 0: none, which GT and LT treat as infinite
			switch {
			case nx && cur != 0, xx && cur == 0:
				return nil
			case gt && (cur == 0 || at <= cur), lt && cur != 0 && at >= cur:
				return nil
			}
			if at <= tx.Now() {
				tx.Delete(key)
			} else {
				v.ExpiresAt = at
				tx.Set(key, v)
			}
			done = true
			return nil
		})
		if err != nil {
			return err
		}
		r.w.Int(b2i(done))
		return nil
	}
}

// ttlCmd builds TTL, PTTL, EXPIRETIME and PEXPIRETIME.
// Reply: -2 if the key does not exist, -1 if it has no expiry, else the remaining
// time (TTL rounds to the nearest second, as Redis does) or the absolute deadline.
func ttlCmd(ms, absolute bool) func(*Request) error {
	return func(r *Request) error {
		v, ok, err := r.head(r.Args[1])
		if err != nil {
			return err
		}
		switch {
		case !ok:
			r.w.Int(-2)
		case v.ExpiresAt == 0:
			r.w.Int(-1)
		case absolute && ms:
			r.w.Int(v.ExpiresAt)
		case absolute:
			// Redis rounds the deadline to the nearest second, as TTL does,
			// and a deadline within 500ms of MaxInt64 rounds up past it.
			r.w.Int(roundToSeconds(v.ExpiresAt))
		default:
			left := max(v.ExpiresAt-r.e.nowMs(), 0)
			if !ms {
				left = roundToSeconds(left)
			}
			r.w.Int(left)
		}
		return nil
	}
}

// roundToSeconds rounds a non-negative count of milliseconds to the nearest
// second, without overflowing near MaxInt64.
func roundToSeconds(ms int64) int64 { return int64((uint64(ms) + 500) / 1000) }

// >> PERSIST key
// Reply: 1 if an expiry was removed, else 0.
func cmdPersist(r *Request) error {
	key := r.Args[1]
	var done bool
	err := r.update([][]byte{key}, func(tx backend.Txn) error {
		v, ok, err := tx.Get(key)
		done = ok && v.ExpiresAt != 0
		if err != nil || !done {
			return err
		}
		v.ExpiresAt = 0
		tx.Set(key, v)
		return nil
	})
	if err != nil {
		return err
	}
	r.w.Int(b2i(done))
	return nil
}

// rename moves src to dst with its expiry; with nx it refuses an existing dst.
func (r *Request) rename(nx bool) (bool, error) {
	src, dst := r.Args[1], r.Args[2]
	var done bool
	err := r.updateSub([][]byte{src, dst}, func(tx backend.Txn) error {
		done = false
		v, ok, err := tx.Get(src)
		if err != nil {
			return err
		}
		if !ok {
			return errNoSuchKey
		}
		if bytes.Equal(src, dst) {
			done = !nx
			return nil
		}
		if nx {
			if _, exists, err := tx.Get(dst); err != nil || exists {
				return err
			}
		}
		if v.Type.IsCollection() {
			// The elements are named after their key: they move with it.
			if v, err = copyColl(tx, v, keyspace.Key(r.c.db, src), keyspace.Key(r.c.db, dst)); err != nil {
				return err
			}
			r.signalKeyAsReady(dst)
		}
		tx.Delete(src)
		tx.Set(dst, v)
		done = true
		return nil
	})
	return done, err
}

// >> RENAME key newkey
func cmdRename(r *Request) error {
	if _, err := r.rename(false); err != nil {
		return err
	}
	r.w.OK()
	return nil
}

// >> RENAMENX key newkey
// Reply: 1 if renamed, 0 if newkey exists.
func cmdRenameNX(r *Request) error {
	done, err := r.rename(true)
	if err != nil {
		return err
	}
	r.w.Int(b2i(done))
	return nil
}

// >> KEYS pattern
// The keys are encoded as they are found, into a buffer bounded by the
// client's output limit: a keyspace too large to answer closes the client
// (as in Redis with that limit) instead of piling up every key first.
func cmdKeys(r *Request) error {
	pattern := r.Args[1]
	all := len(pattern) == 1 && pattern[0] == '*'
	body := resp.Writer{Proto: r.w.Proto, Mem: r.w.Mem}
	defer body.Release() // what the client's account counted of it
	if r.w.Limit > 0 {
		body.Limit = max(r.w.Limit-r.w.Len(), 1)
	}
	n := 0
	prefix := keyspace.AppendKey(nil, r.c.db, glob.LiteralPrefix(pattern))
	_, err := r.e.be.Scan(r.ctx, backend.ScanOptions{Prefix: prefix, KeysOnly: true}, func(ki backend.KeyInfo) bool {
		key := keyspace.UserKey(ki.Key)
		if all || glob.Match(pattern, key) {
			body.Bulk(key)
			n++
		}
		return !body.Overflowed()
	})
	if err != nil {
		return err
	}
	if body.Overflowed() {
		r.w.Overflow()
		return nil
	}
	r.w.AdoptArray(&body, n)
	return nil
}

// parseCursor reads a SCAN cursor as Redis does, with C's strtoul: an optional
// sign (a negative number wraps around), decimal digits, nothing after them;
// the empty string is 0.
func parseCursor(b []byte) (uint64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg = b[0] == '-'
		if b = b[1:]; len(b) == 0 {
			return 0, false // a sign alone converts nothing
		}
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' || n > (math.MaxUint64-uint64(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// maxScanCount caps SCAN's COUNT: the keys one call visits, expired ones
// included, so that a client asking for 2^63 cannot stall the others.
const maxScanCount = 100_000

// >> SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
// Reply: [next cursor, [keys...]]. Keys are visited in key order; COUNT bounds
// how many keys one call examines. See cursorTable for what a cursor is.
func cmdScan(r *Request) error {
	cursor, ok := parseCursor(r.Args[1])
	if !ok {
		return errInvalidCursor
	}
	var err error
	var pattern, typ []byte
	count := int64(10)
	for i := 2; i < len(r.Args); i++ {
		a := r.Args[i]
		if i+1 >= len(r.Args) {
			return errSyntax
		}
		switch {
		case equalFold(a, "match"):
			pattern = r.Args[i+1]
		case equalFold(a, "count"):
			if count, err = intArg(r.Args[i+1]); err != nil {
				return err
			}
			if count < 1 {
				return errSyntax
			}
			// One call's work stays bounded whatever the client asks: SCAN
			// may return fewer keys than COUNT.
			count = min(count, maxScanCount)
		case equalFold(a, "type"):
			typ = r.Args[i+1]
		default:
			return errSyntax
		}
		i++
	}
	// A cursor holds a position among Redis keys, as in Redis: it resumes
	// there in whichever database the client has selected.
	var start []byte
	if cursor != 0 {
		start = keyspace.Key(r.c.db, r.e.scanCursors.lookup(cursor))
	}
	var prefix []byte
	if pattern != nil {
		prefix = glob.LiteralPrefix(pattern)
	}
	prefix = keyspace.AppendKey(nil, r.c.db, prefix)
	var keys [][]byte
	next, err := r.e.be.Scan(r.ctx, backend.ScanOptions{Prefix: prefix, Start: start, Limit: int(count), KeysOnly: typ == nil}, func(ki backend.KeyInfo) bool {
		key := keyspace.UserKey(ki.Key)
		if pattern != nil && !glob.Match(pattern, key) {
			return true
		}
		if typ != nil && !equalFold(typ, ki.Value.Type.String()) {
			return true
		}
		keys = append(keys, bytes.Clone(key))
		return true
	})
	if err != nil {
		return err
	}
	var nextCursor uint64
	if next != nil {
		nextCursor = r.e.scanCursors.store(keyspace.UserKey(next))
	}
	r.w.Array(2)
	r.w.BulkString(strconv.FormatUint(nextCursor, 10))
	r.w.Array(len(keys))
	for _, k := range keys {
		r.w.Bulk(k)
	}
	return nil
}

// A SCAN cursor names the key the next call resumes from. Clients (go-redis,
// redis-py) treat a cursor as an unsigned 64-bit integer, so a key cannot
// travel in it whole; a cursor carries the key's first bytes and an id into a
// table of exact resume keys:
//
//	bits 63..24  up to 5 leading bytes of the resume key
//	bits 23..21  how many of them (0..5)
//	bits 20..0   the id of the table slot holding the whole key (never 0)
//
// A cursor the table still holds resumes exactly. One it no longer holds
// (evicted by newer scans, issued before a restart, or made up by the
// client, up to 2^64-1) resumes at its leading bytes, a point at or before
// the exact key: SCAN may then return some keys again, which Redis's SCAN
// contract allows, but it never skips one. So no cursor is ever refused and
// no other client's scans can make one lose keys.
const (
	cursorPrefixBytes = 5
	cursorIDBits      = 21
	cursorTableSlots  = 1 << 16
	// cursorTableBytes bounds the key bytes the table holds: past it the
	// oldest entries go first (and their cursors resume at their prefix).
	cursorTableBytes = 64 << 20
)

// cursorTable holds the exact resume keys of recent cursors.
type cursorTable struct {
	mu     sync.Mutex
	nextID uint64
	bytes  int // key bytes held
	ring   [cursorTableSlots]struct {
		cursor uint64
		key    []byte
	}
}

func newCursorTable() *cursorTable { return &cursorTable{nextID: 1} }

// store returns a cursor that resumes at key.
func (t *cursorTable) store(key []byte) uint64 {
	n := min(len(key), cursorPrefixBytes)
	var cursor uint64
	for i := 0; i < n; i++ {
		cursor |= uint64(key[i]) << (56 - 8*i)
	}
	cursor |= uint64(n) << cursorIDBits
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.nextID
	if t.nextID++; t.nextID == 1<<cursorIDBits {
		t.nextID = 1
	}
	cursor |= id
	slot := &t.ring[id%cursorTableSlots]
	t.bytes += len(key) - len(slot.key)
	slot.cursor, slot.key = cursor, bytes.Clone(key)
	// Over budget (a scan over huge keys): drop the oldest entries.
	for old := id + 1; t.bytes > cursorTableBytes; old++ {
		victim := &t.ring[old%cursorTableSlots]
		t.bytes -= len(victim.key)
		victim.cursor, victim.key = 0, nil
	}
	return cursor
}

// lookup returns the key cursor resumes from: exact if the table still holds
// it, else the cursor's leading bytes.
func (t *cursorTable) lookup(cursor uint64) []byte {
	id := cursor & (1<<cursorIDBits - 1)
	t.mu.Lock()
	slot := &t.ring[id%cursorTableSlots]
	if id != 0 && slot.cursor == cursor {
		key := slot.key
		t.mu.Unlock()
		return key
	}
	t.mu.Unlock()
	n := min(int(cursor>>cursorIDBits&7), cursorPrefixBytes)
	key := make([]byte, n)
	for i := range key {
		key[i] = byte(cursor >> (56 - 8*i))
	}
	return key
}

// >> DBSIZE
// Reply: the number of keys of the selected database, counting expired
// keys the sweeper has not yet removed, as Redis does.
func cmdDBSize(r *Request) error {
	st, err := r.e.be.Stats(r.ctx, r.c.db)
	if err != nil {
		return err
	}
	r.w.Int(st.Keys)
	return nil
}

// >> FLUSHDB [ASYNC | SYNC] (and FLUSHALL)
// FLUSHDB empties the selected database, FLUSHALL every database.
func cmdFlush(r *Request) error {
	if len(r.Args) > 2 {
		return errSyntax
	}
	if len(r.Args) == 2 && !equalFold(r.Args[1], "async") && !equalFold(r.Args[1], "sync") {
		return errSyntax
	}
	all := r.cmd.Name == "flushall"
	// The flush modifies the watched keys of the flushed databases that
	// exist (Redis's touchAllWatchedKeysInDb).
	var watched, live [][]byte
	for _, k := range r.e.watches.watchedKeys() {
		if all || keyspace.DB(k) == r.c.db {
			watched = append(watched, k)
		}
	}
	if len(watched) > 0 {
		_, found, err := r.e.be.Heads(r.ctx, watched)
		if err != nil {
			return err
		}
		for i, ok := range found {
			if ok {
				live = append(live, watched[i])
			}
		}
	}
	var err error
	if all {
		err = r.e.be.FlushAll(r.ctx)
	} else {
		err = r.e.be.FlushDB(r.ctx, r.c.db)
	}
	for _, k := range live {
		r.e.watches.touch(k)
	}
	if err != nil {
		return err
	}
	r.w.OK()
	return nil
}

// >> RANDOMKEY
func cmdRandomKey(r *Request) error {
	k, ok, err := r.e.be.RandomKey(r.ctx, keyspace.Prefix(r.c.db))
	if err != nil {
		return err
	}
	if ok {
		k = keyspace.UserKey(k)
	}
	r.bulkOrNull(k, ok)
	return nil
}
