package command

import (
	"errors"
	"fmt"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
	"github.com/nokv/nokv/services/gateway/internal/rdb"
)

func init() {
	const g = "generic"
	register(
		&Command{Name: "dump", Arity: 2, Flags: flagReadonly, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Returns a serialized representation of the value stored at a key.", Complexity: "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).", Handler: cmdDump},
		&Command{Name: "restore", Arity: -4, Flags: flagWrite | flagDenyOOM, FirstKey: 1, LastKey: 1, Step: 1, Group: g, Since: "2.6.0", Summary: "Creates a key from the serialized representation of a value.", Complexity: "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", Handler: cmdRestore},
	)
}

const (
	errBusyKey      replyError = "BUSYKEY Target key name already exists."
	errInvalidTTL   replyError = "ERR Invalid TTL value, must be >= 0"
	errInvalidIdle  replyError = "ERR Invalid IDLETIME value, must be >= 0"
	errInvalidFreq  replyError = "ERR Invalid FREQ value, must be >= 0 and <= 255"
	errBadPayload   replyError = "ERR Bad data format"
	errPayloadCheck replyError = "ERR DUMP payload version or checksum are wrong"
)

// >> DUMP key
// Reply: the value in Redis's serialization format (RDB type, RDB-encoded
// value, RDB version 10, CRC-64), byte-identical to redis-server 7.0's, or
// null if the key does not exist.
func cmdDump(r *Request) error {
	v, ok, err := r.get(r.Args[1])
	if err != nil {
		return err
	}
	r.hit(ok)
	if !ok {
		r.w.Null()
		return nil
	}
	switch {
	case v.Type == backend.TypeHash:
		// Read in one transaction: the record and the fields it counts.
		var fields, vals [][]byte
		key := r.Args[1]
		err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			h, err := r.openHash(tx, key)
			if err != nil {
				return err
			}
			fields, vals, err = hashFields(h, true)
			return err
		})
		if errors.Is(err, errWrongType) {
			return cmdDump(r)
		}
		if err != nil {
			return err
		}
		if len(fields) == 0 { // deleted between the two reads
			r.w.Null()
			return nil
		}
		r.w.Bulk(rdb.DumpHash(fields, vals))
		return nil
	case v.Type == backend.TypeSet:
		var members [][]byte
		key := r.Args[1]
		err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			s, err := r.openSet(tx, key)
			if err != nil {
				return err
			}
			members, err = s.members()
			return err
		})
		if errors.Is(err, errWrongType) {
			return cmdDump(r)
		}
		if err != nil {
			return err
		}
		if len(members) == 0 {
			r.w.Null()
			return nil
		}
		r.w.Bulk(rdb.DumpSet(members))
		return nil
	case v.Type == backend.TypeList:
		var elems [][]byte
		key := r.Args[1]
		err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			l, err := r.openList(tx, key)
			if err != nil {
				return err
			}
			elems, err = l.listRange(0, l.llen())
			return err
		})
		if errors.Is(err, errWrongType) {
			return cmdDump(r)
		}
		if err != nil {
			return err
		}
		if len(elems) == 0 {
			r.w.Null()
			return nil
		}
		r.w.Bulk(rdb.DumpList(elems))
		return nil
	case v.Type == backend.TypeZSet:
		var es []zentry
		key := r.Args[1]
		err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
			z, err := r.openZSet(tx, key)
			if err != nil {
				return err
			}
			es, err = z.zall()
			return err
		})
		if errors.Is(err, errWrongType) {
			return cmdDump(r)
		}
		if err != nil {
			return err
		}
		if len(es) == 0 {
			r.w.Null()
			return nil
		}
		members, scores := make([][]byte, len(es)), make([]float64, len(es))
		for i, e := range es {
			members[i], scores[i] = e.m, e.s
		}
		r.w.Bulk(rdb.DumpZSet(members, scores))
		return nil
	case v.Type.IsCollection():
		return fmt.Errorf("%w: DUMP of a %s is not supported yet", backend.ErrNotSupported, v.Type)
	}
	r.w.Bulk(rdb.DumpString(v.Data))
	return nil
}

// >> RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
// Reply: OK. ttl is milliseconds from now (an absolute Unix time in ms with
// ABSTTL), 0 for none; a deadline already past creates nothing (and with
// REPLACE deletes the key), as in Redis. IDLETIME and FREQ are checked
// and, as the gateway keeps no access clock, otherwise ignored.
func cmdRestore(r *Request) error {
	args := r.Args
	var replace, absTTL bool
	idle, freq := int64(-1), int64(-1)
	for j := 4; j < len(args); j++ {
		a, more := args[j], len(args)-j-1
		switch {
		case equalFold(a, "replace"):
			replace = true
		case equalFold(a, "absttl"):
			absTTL = true
		case equalFold(a, "idletime") && more >= 1 && freq == -1:
			n, err := intArg(args[j+1])
			if err != nil {
				return err
			}
			if n < 0 {
				return errInvalidIdle
			}
			idle = n
			j++
		case equalFold(a, "freq") && more >= 1 && idle == -1:
			n, err := intArg(args[j+1])
			if err != nil {
				return err
			}
			if n < 0 || n > 255 {
				return errInvalidFreq
			}
			freq = n
			j++
		default:
			return errSyntax
		}
	}
	// Redis refuses an existing key (without REPLACE) before it judges the
	// TTL and the payload: their verdict waits for the transaction, but the
	// payload is decoded once, outside it (the raft backend may run a
	// transaction more than once).
	ttl, verdict := intArg(args[2])
	if verdict == nil && ttl < 0 {
		verdict = errInvalidTTL
	}
	var val []byte
	var hashFields, hashVals [][]byte
	var setMembers, listElems, zsetMembers [][]byte
	var zsetScores []float64
	isHash, isSet, isList, isZSet := rdb.IsHash(args[3]), rdb.IsSet(args[3]), rdb.IsList(args[3]), rdb.IsZSet(args[3])
	if verdict == nil {
		switch {
		case isZSet:
			zsetMembers, zsetScores, verdict = rdb.DecodeZSet(args[3], r.restoreLimit, restoreScore)
		case isHash:
			hashFields, hashVals, verdict = rdb.DecodeHash(args[3], r.restoreLimit)
		case isSet:
			setMembers, verdict = rdb.DecodeSet(args[3], r.restoreLimit)
		case isList:
			listElems, verdict = rdb.DecodeList(args[3], r.restoreLimit)
		default:
			val, verdict = rdb.Decode(args[3], r.restoreLimit)
		}
		verdict = restoreError(verdict)
	}
	key := args[1]
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		_, exists, err := tx.Head(key)
		if err != nil {
			return err
		}
		if exists && !replace {
			return errBusyKey
		}
		if verdict != nil {
			return verdict
		}
		at := ttl
		if ttl != 0 && !absTTL {
			// Redis adds the time in 64-bit arithmetic that wraps: a TTL
			// near 2^63 lands in the past, and the key is not created.
			at = int64(uint64(ttl) + uint64(tx.Now()))
		}
		if ttl != 0 && at <= tx.Now() {
			if exists {
				tx.Delete(key)
			}
			return nil
		}
		if isZSet {
			z, err := r.newColl(tx, key, backend.TypeZSet)
			if err != nil {
				return err
			}
			es := make([]zentry, len(zsetMembers))
			for i, m := range zsetMembers {
				es[i] = zentry{m, zsetScores[i]}
			}
			// A listpack (or ziplist) payload stays one unless it has
			// too many members (rdbLoadObject): its members' length is
			// not judged.
			compact := args[3][0] == rdb.TypeZSetListpack || args[3][0] == rdb.TypeZSetZiplist
			if err := z.zfill(es, compact); err != nil {
				return err
			}
			z.expiresAt = at
			z.save()
			r.signalKeyAsReady(key)
			return nil
		}
		if isList {
			l, err := r.newColl(tx, key, backend.TypeList)
			if err != nil {
				return err
			}
			if err := l.push(false, listElems); err != nil {
				return err
			}
			l.expiresAt = at
			l.save()
			r.signalKeyAsReady(key)
			return nil
		}
		if isSet {
			s, err := r.newColl(tx, key, backend.TypeSet)
			if err != nil {
				return err
			}
			for _, m := range setMembers {
				if _, err := s.addMember(m); err != nil {
					return err
				}
			}
			s.expiresAt = at
			s.save()
			return nil
		}
		if isHash {
			h, err := r.newColl(tx, key, backend.TypeHash)
			if err != nil {
				return err
			}
			if err := h.create(); err != nil {
				return err
			}
			// As rdbLoadObject: a hash payload converts past either
			// threshold, a listpack (or ziplist) one only past the
			// entries threshold.
			compact := args[3][0] == rdb.TypeHashListpack || args[3][0] == rdb.TypeHashZiplist
			maxValue := h.lim.hashMaxValue()
			for i, f := range hashFields {
				h.put(keyspace.KindHashField, f, hashVals[i])
				h.meta.Big = h.meta.Big || (!compact && (int64(len(f)) > maxValue || int64(len(hashVals[i])) > maxValue))
			}
			h.meta.Count = uint64(len(hashFields))
			h.meta.Big = h.meta.Big || h.meta.Count > h.lim.hashMaxEntries()
			h.expiresAt = at
			h.save()
			return nil
		}
		tx.Set(key, backend.Value{Type: backend.TypeString, Data: val, ExpiresAt: at})
		return nil
	})
	if err != nil {
		return err
	}
	r.w.OK()
	return nil
}

// restoreLimit refuses a restored string the gateway could not store, before
// the decoder allocates it: over proto-max-bulk-len, or over the backend's
// value limit (raft).
func (r *Request) restoreLimit(n uint64) error {
	if n > uint64(r.e.opts.MaxBulkLen) {
		return errTooBig
	}
	if c, ok := r.e.be.(backend.ValueSizeChecker); ok {
		return c.CheckValueSize(int64(n))
	}
	return nil
}

// restoreScore reads a score a payload holds as text, as Redis's strtod
// reads it (the whole entry must parse).
func restoreScore(b []byte) (float64, bool) {
	f, n, _ := strtod(b)
	return f, n == len(b) && n > 0
}

// restoreError maps the decoder's errors to Redis's replies.
func restoreError(err error) error {
	var ute *rdb.UnsupportedTypeError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rdb.ErrChecksum):
		return errPayloadCheck
	case errors.Is(err, rdb.ErrBadFormat):
		return errBadPayload
	case errors.As(err, &ute):
		return replyError("ERR " + ute.Error())
	}
	return err
}
