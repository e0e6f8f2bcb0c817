package command

import (
	"encoding/binary"
	"expvar"
	"sync"
)

// rangeCache keeps the elements of recent LRANGE replies, by the list's
// database, key, element version, record stamp, start and count. The
// record's Stamp is redrawn at random by every write of the collection
// (keyspace.Meta; coll.save) and a new incarnation gets a new version, so
// an entry can only match the state it was read from: a hit needs no
// invalidation, and a write simply makes its entries unreachable (they age
// out). The metadata record is still read for every LRANGE (type, expiry,
// bounds), in the command's transaction as before; only the range scan
// (Pebble's iterator, ~60% of an LRANGE_100's CPU, docs/benchmarks.md
// "Collection reads") is spared when the list did not change since.
//
// Bounded by rangeCacheEntries entries of at most rangeCacheMaxBytes bytes
// each; a full cache drops an arbitrary entry.
type rangeCache struct {
	mu      sync.Mutex
	entries map[string][][]byte
}

const (
	rangeCacheEntries  = 256
	rangeCacheMaxBytes = 64 << 10
)

var (
	rangeCacheVars   = expvar.NewMap("nokv_lrange_cache")
	rangeCacheHits   = new(expvar.Int)
	rangeCacheMisses = new(expvar.Int)
)

func init() {
	rangeCacheVars.Set("hits", rangeCacheHits)
	rangeCacheVars.Set("misses", rangeCacheMisses)
}

// rangeCacheKey is the entry key of n elements from position start of
// list c.
func rangeCacheKey(c *coll, start, n int64) []byte {
	k := make([]byte, 0, 44+len(c.key))
	k = binary.BigEndian.AppendUint32(k, c.db)
	k = binary.BigEndian.AppendUint64(k, c.meta.Version)
	k = binary.BigEndian.AppendUint64(k, c.meta.Stamp)
	k = binary.BigEndian.AppendUint64(k, uint64(c.meta.Head))
	k = binary.BigEndian.AppendUint64(k, uint64(start))
	k = binary.BigEndian.AppendUint64(k, uint64(n))
	return append(k, c.key...)
}

func (rc *rangeCache) get(key []byte) ([][]byte, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	v, ok := rc.entries[string(key)]
	if ok {
		rangeCacheHits.Add(1)
	} else {
		rangeCacheMisses.Add(1)
	}
	return v, ok
}

// put stores elems (not copied: the caller hands them over and nobody
// writes them after) if they are small enough.
func (rc *rangeCache) put(key []byte, elems [][]byte) {
	size := 0
	for _, e := range elems {
		size += len(e) + 24
	}
	if size > rangeCacheMaxBytes {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.entries == nil {
		rc.entries = make(map[string][][]byte)
	}
	if len(rc.entries) >= rangeCacheEntries {
		for k := range rc.entries {
			delete(rc.entries, k)
			break
		}
	}
	rc.entries[string(key)] = elems
}
