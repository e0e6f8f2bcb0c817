package command

import (
	"math"
	"math/bits"
	"strconv"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// MEMORY USAGE of a collection: what Redis 7.0 (jemalloc, x86-64)
// answers for the same contents, computed as its objectComputeSize does
// for the encoding OBJECT ENCODING reports. A listpack (small hashes and
// sorted sets) and an intset are one allocation whose size follows from
// the elements: the figure is Redis's to the byte (an intset's width is
// judged from the members it holds now; Redis keeps a width once reached).
// The other encodings Redis itself estimates from samples (SAMPLES n, 5 by
// default, 0 for all): the first n elements of its dict's iteration order,
// here the first n in byte order (a sorted set's in score order, as
// Redis's skiplist), so the figure is Redis's formula over other samples;
// a skiplist node's random level is taken as 1, a dict's slots as the
// power of two Redis would have grown it to. A list is a quicklist of
// listpacks, laid out as RPUSH would fill them under the current
// list-max-listpack-size (8 KiB nodes by default). Redis fixes a list's
// fill when the list is created and compresses inner nodes under
// list-compress-depth; the figure here assumes the current fill and no
// compression.

// Sizes of Redis 7.0's structures on x86-64.
const (
	memRobj          = 16
	memDictEntry     = 24
	memDict          = 56    // struct dict
	memQuicklist     = 40    // struct quicklist
	memQuicklistNode = 40    // struct quicklistNode
	memZset          = 16    // struct zset: dict and skiplist pointers
	memZskiplist     = 32    // struct zskiplist
	memZslHeader     = 640   // the header node's 32 levels (24 + 32*16), in its size class
	memZslNode       = 48    // a node of one level (24 + 16), in its size class
	listpackHeader   = 6     // total bytes and element count
	quicklistSafety  = 8192  // SIZE_SAFETY_LIMIT of quicklist.c
	quicklistOverEst = 8     // SIZE_ESTIMATE_OVERHEAD of _quicklistNodeAllowInsert
	quicklistFillMax = 32767 // FILL_MAX (16 bits of fill on 64-bit)
)

// quicklistSizeLevels are quicklist.c's optimization_level: the node size
// a negative fill -1..-5 allows.
var quicklistSizeLevels = [...]int{4096, 8192, 16384, 32768, 65536}

// quicklistFill is list-max-listpack-size as quicklistSetFill clamps it.
func quicklistFill(v int64) int {
	return int(max(-5, min(v, quicklistFillMax)))
}

// quicklistAllowInsert is _quicklistNodeAllowInsert: whether an element of
// n bytes joins a node of sz bytes holding count elements under fill.
// Elements of 1 GiB or more, which Redis keeps in plain nodes, are beyond
// what the gateway stores (proto-max-bulk-len).
func quicklistAllowInsert(sz, count, n, fill int) bool {
	newSz := sz + n + quicklistOverEst
	if fill < 0 {
		if newSz <= quicklistSizeLevels[-fill-1] {
			return true
		}
	}
	return newSz <= quicklistSafety && count < fill
}

// memoryUsageColl answers MEMORY USAGE for the collection at key, of type
// typ, sampling up to samples elements where Redis samples (0: all).
func (r *Request) memoryUsageColl(key []byte, typ backend.Type, samples int64) (int64, bool, error) {
	var size int
	var found bool
	err := r.updateSub([][]byte{key}, func(tx backend.Txn) error {
		c, err := r.openColl(tx, key, typ)
		if err != nil {
			return err
		}
		found = c.found
		if !found {
			return nil
		}
		size, err = collectionSize(c, typ, samples)
		return err
	})
	if err != nil || !found {
		return 0, found, err
	}
	// The key's sds and its dictEntry in the keyspace, as for a string.
	return int64(keyUsage(key) + size), true, nil
}

// collectionSize is objectComputeSize's figure for c's value.
func collectionSize(c *coll, typ backend.Type, samples int64) (int, error) {
	n := int(c.meta.Count)
	limit := 0 // elements to read: all for an exact figure
	if c.meta.Big && samples > 0 {
		limit = int(min(samples, math.MaxInt32))
	}
	switch typ {
	case backend.TypeHash:
		if !c.meta.Big {
			lp := listpackHeader + 1
			err := c.scan(keyspace.KindHashField, nil, 0, func(f, v []byte) bool {
				lp += listpackEntrySize(f) + listpackEntrySize(v)
				return true
			})
			return memRobj + jemallocSize(lp), err
		}
		var ele, seen int
		err := c.scan(keyspace.KindHashField, nil, limit, func(f, v []byte) bool {
			ele += sdsAllocSize(len(f)) + sdsAllocSize(len(v)) + memDictEntry
			seen++
			return true
		})
		return memRobj + memDict + 8*dictSlots(n) + sampled(ele, seen, n), err
	case backend.TypeSet:
		if !c.meta.Big {
			width := 2
			err := c.scan(keyspace.KindSetMember, nil, 0, func(m, _ []byte) bool {
				v, _ := strconv.ParseInt(string(m), 10, 64)
				switch {
				case v < math.MinInt32 || v > math.MaxInt32:
					width = 8
				case (v < math.MinInt16 || v > math.MaxInt16) && width < 4:
					width = 4
				}
				return true
			})
			return memRobj + jemallocSize(8+n*width), err
		}
		var ele, seen int
		err := c.scan(keyspace.KindSetMember, nil, limit, func(m, _ []byte) bool {
			ele += memDictEntry + sdsAllocSize(len(m))
			seen++
			return true
		})
		return memRobj + memDict + 8*dictSlots(n) + sampled(ele, seen, n), err
	case backend.TypeZSet:
		if !c.meta.Big {
			lp := listpackHeader + 1
			err := c.scan(keyspace.KindZSetScore, nil, 0, func(elem, val []byte) bool {
				m, s := decodeIndex(elem, val)
				lp += listpackEntrySize(m) + listpackEntrySize([]byte(listpackScore(s)))
				return true
			})
			return memRobj + jemallocSize(lp), err
		}
		var ele, seen int
		err := c.scan(keyspace.KindZSetScore, nil, limit, func(elem, val []byte) bool {
			m, _ := decodeIndex(elem, val)
			ele += sdsAllocSize(len(m)) + memDictEntry + memZslNode
			seen++
			return true
		})
		return memRobj + memZset + memZskiplist + memDict + 8*dictSlots(n) + memZslHeader + sampled(ele, seen, n), err
	case backend.TypeList:
		// Fill nodes as RPUSH does. Redis multiplies the mean size of the
		// first SAMPLES nodes by the node count; a list longer than its
		// sampled nodes is read only that far, its node count estimated
		// from their elements per node, so that a long list costs
		// O(SAMPLES) nodes' reads as in Redis.
		var nodes, ele, inNodes, elems, inNode int
		lp := 0
		fill := quicklistFill(c.lim.listFill.Load())
		flush := func() {
			nodes++
			inNodes = elems
			ele += memQuicklistNode + jemallocSize(lp)
		}
		err := c.scan(keyspace.KindListIndex, nil, 0, func(_, e []byte) bool {
			if lp > 0 && !quicklistAllowInsert(lp, inNode, len(e), fill) {
				flush()
				lp, inNode = 0, 0
				if samples > 0 && int64(nodes) >= samples {
					return false
				}
			}
			if lp == 0 {
				lp = listpackHeader + 1
			}
			lp += listpackEntrySize(e)
			elems++
			inNode++
			return true
		})
		total := nodes
		if elems == n {
			if lp > 0 {
				flush()
			}
			total = nodes
		} else if inNodes > 0 {
			total = (n*nodes + inNodes - 1) / inNodes
		}
		return memRobj + memQuicklist + sampled(ele, nodes, total), err
	}
	return 0, nil
}

// sampled is Redis's (double)elesize/samples*count, truncated when added
// to the size_t total.
func sampled(ele, seen, count int) int {
	if seen == 0 {
		return 0
	}
	return int(float64(ele) / float64(seen) * float64(count))
}

// dictSlots is the table size Redis's dict has grown to for n entries: the
// smallest power of two at least n, and at least 4.
func dictSlots(n int) int {
	if n <= 4 {
		return 4
	}
	return 1 << bits.Len(uint(n-1))
}

// sdsAllocSize is sdsZmallocSize of an sds copy of n bytes (sdsdup:
// sdshdr5 below 32 bytes, no spare room).
func sdsAllocSize(n int) int {
	hdr := sdsHeader(n)
	if n > 0 && n < 32 {
		hdr = 1
	}
	return jemallocSize(hdr + n + 1)
}

// listpackEntrySize is the bytes one element takes in a listpack: an
// integer in its narrowest encoding (Redis stores a string that is an
// int64's canonical form as the integer), else the string with a 1, 2 or
// 5 byte header; then the entry's length backwards, in 1 to 5 bytes.
func listpackEntrySize(e []byte) int {
	var enc int
	if isLongString(e) {
		v, _ := strconv.ParseInt(string(e), 10, 64)
		switch {
		case v >= 0 && v <= 127:
			enc = 1
		case v >= -4096 && v <= 4095:
			enc = 2
		case v >= math.MinInt16 && v <= math.MaxInt16:
			enc = 3
		case v >= -(1<<23) && v < 1<<23:
			enc = 4
		case v >= math.MinInt32 && v <= math.MaxInt32:
			enc = 5
		default:
			enc = 9
		}
	} else {
		switch n := len(e); {
		case n < 64:
			enc = 1 + n
		case n < 4096:
			enc = 2 + n
		default:
			enc = 5 + n
		}
	}
	switch {
	case enc <= 127:
		return enc + 1
	case enc < 16383:
		return enc + 2
	case enc < 2097151:
		return enc + 3
	case enc < 268435455:
		return enc + 4
	}
	return enc + 5
}
