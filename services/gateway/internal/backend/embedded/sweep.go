package embedded

import (
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// sweepBatch bounds how many expired keys one sweep round deletes while holding the
// store, so a mass expiry cannot stall commands for long.
const sweepBatch = 512

func (s *Store) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for {
			n, err := s.SweepExpired()
			if err != nil {
				s.log.Error("sweep expired keys", "err", err)
				break
			}
			if n < sweepBatch {
				break
			}
			select {
			case <-s.stop:
				return
			default:
			}
		}
	}
}

// SweepExpired deletes up to sweepBatch keys whose expiry has passed and returns how
// many it deleted. It walks the expiry index, so its cost is proportional to the
// keys that expired, not to the size of the store.
func (s *Store) SweepExpired() (int, error) {
	s.writeMu.RLock()
	defer s.writeMu.RUnlock()
	if !s.enter() {
		return 0, nil
	}
	defer s.leave()
	now := s.now()
	upper := appendExpiryKey(nil, now+1, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{familyExpiry}, UpperBound: upper})
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	type due struct {
		at  int64
		key []byte
	}
	var batch []due
	for it.First(); it.Valid() && len(batch) < sweepBatch; it.Next() {
		at, key, err := decodeExpiryKey(it.Key())
		if err != nil {
			it.Close()
			return 0, err
		}
		batch = append(batch, due{at, append([]byte(nil), key...)})
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	keys := make([][]byte, len(batch))
	for i, d := range batch {
		keys[i] = d.key
	}
	// Latch the keys so a SET that revives one concurrently is not deleted; the
	// batch commits before the latches go, so no reader sees a half-swept state.
	slots := s.latches.Acquire(keys, nil)
	defer s.latches.Release(slots)
	b := s.db.NewBatch()
	defer b.Close()
	deleted := 0
	var deltas counterDeltas
	for _, d := range batch {
		v, ok, err := getStored(s.db, nil, d.key)
		if err != nil {
			return 0, fmt.Errorf("sweep key %q: %w", d.key, err)
		}
		if ok && v.ExpiresAt == d.at && v.Expired(now) {
			if ver, coll, err := collectionVersion(v); err != nil {
				s.log.Error("sweep: reclaim collection elements", "key", d.key, "err", err)
			} else if err := appendReclaim(b, s.db, d.key, ver, coll, backend.Value{}, false); err != nil {
				return 0, fmt.Errorf("sweep key %q: %w", d.key, err)
			}
			s.cache.invalidate(d.key)
			_ = b.Delete(appendDataKey(nil, d.key), nil)
			deltas.add(d.key, -1, -1)
			deleted++
		}
		// The index entry goes whether or not it was current: a stale one is junk.
		_ = b.Delete(appendExpiryKey(nil, d.at, d.key), nil)
	}
	deltas.appendTo(b)
	// Losing a sweep in a crash is harmless (the keys are expired either way), so
	// it does not pay for an fsync.
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	s.expiredKeys.Add(int64(deleted))
	return deleted, nil
}
