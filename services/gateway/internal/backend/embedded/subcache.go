package embedded

import (
	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// Collection elements in the key cache.
//
// HSET, ZADD and SADD read the element they write (is it new? what was its
// score?). The sub-key filter (filter.go) answers the reads of new elements;
// a read of an element that exists is a Pebble point read, a memtable
// skiplist descent whose dependent cache misses grow with what the memtable
// holds: a third of a server HSET's CPU once the hash's fields are all
// there (docs/benchmarks.md, "Collection elements in the key cache"). So the
// event loop's group puts the elements its batch wrote into the key cache
// once the batch is applied, and GetSub looks there before Pebble.
//
// Only the kinds read by point are cached (hash fields, set members,
// sorted-set members: filterKind), under the sub-key itself, whose first
// byte has the top bit set: no whole key's stored key looks like one. The
// cache keeps its rule (cache.go): it holds only committed states, put by
// the holder of the collection (the group, under writeMu exclusive).
//   - SetSub and DeleteSub drop the element's entry before the write reaches
//     a batch, and nothing puts it back before that batch is applied (only
//     a group's commit puts elements, after its Apply; writeMu excludes
//     every other writer meanwhile). So a hit is the committed state with
//     no write of the element pending in the reader's batch, and GetSub may
//     answer from it in place of the batch-merged read.
//   - DeleteSubRange (no command uses it; versions are reclaimed by the
//     backend) clears the cache and keeps its batch's elements out.
//   - A range deletion the backend adds (reclaiming a dead version) needs
//     nothing: a version is never reused (NewVersion), so no reader asks
//     for the dead version's elements again.
//   - SWAPDB and FLUSH* clear the cache (exclusive).

// cacheElements puts the point-read elements b wrote into the cache, in
// b's order, so the last write of an element wins. b has been applied.
func (s *Store) cacheElements(b *pebble.Batch) {
	r := b.Reader()
	for {
		kind, key, val, ok, err := r.Next()
		if !ok || err != nil {
			return
		}
		if len(key) < 2 || key[0] != familyData || !keyspace.IsSubKey(key[1:]) {
			continue
		}
		sub := key[1:]
		if _, _, ok := filterSplit(sub); !ok {
			continue
		}
		switch kind {
		case pebble.InternalKeyKindSet:
			s.cache.put(sub, stored{v: backend.Value{Data: val}, found: true})
		case pebble.InternalKeyKindDelete, pebble.InternalKeyKindSingleDelete, pebble.InternalKeyKindDeleteSized:
			s.cache.put(sub, stored{})
		default:
			// Not written by SetSub or DeleteSub: keep no entry.
			s.cache.invalidate(sub)
		}
	}
}
