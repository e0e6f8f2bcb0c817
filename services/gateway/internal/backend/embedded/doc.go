// Package embedded is the single-process backend: Redis values in a local Pebble
// store.
//
// Layout inside the one Pebble keyspace (the first byte is the family):
//
//	'd' key                  -> value: type(1) | expires_at ms (8, big-endian) | payload
//	'x' expires_at(8) key    -> ""     expiry index, ordered by time, for the sweeper
//	's' name                 -> int64  counters (keys, expires) kept by a merge operator
//
// Atomicity: an Update latches the keys it names (striped mutexes, taken in a fixed
// order so multi-key commands cannot deadlock), reads through Pebble, and commits all
// its writes, index changes and counter deltas in one Pebble batch. Durability
// follows the sync policy: with SyncAlways a batch is fsynced before Update returns,
// and concurrent writers share fsyncs through Pebble's group commit.
package embedded
