// Package keys defines how a store lays out everything it keeps in its one
// Pebble instance.
//
// Two keyspaces share the engine, told apart by their first byte:
//
//	0x01 0x01                                   StoreIdent
//	0x01 0x02 region_id 0x01 index              raft log entry (raftpb.Entry)
//	0x01 0x02 region_id 0x02                    raft hard state (raftpb.HardState)
//	0x01 0x02 region_id 0x03                    RaftApplyState
//	0x01 0x03 region_id 0x01                    RegionLocalState
//	0x01 0x04                                   GC safe point the data was collected at
//
//	'L' enc(key)                                lock column family
//	'W' enc(key) ^commit_ts                     write column family
//	'D' enc(key) ^start_ts                      default column family (values)
//
// region_id, index and timestamps are 8-byte big-endian. enc is the
// memcomparable group encoding (as in TiKV and MySQL's key encoding): it
// preserves the order of raw keys and no encoded key is a prefix of another,
// so a timestamp suffix never makes versions of "a" interleave with "a\x00".
// Timestamps are stored bit-inverted so that the versions of one key sort
// newest first and a seek to enc(key)+^ts lands on the newest version at or
// below ts.
//
// A region [start, end) in raw keys covers, in each column family, exactly
// the engine keys in [cf enc(start), cf enc(end)) (with an empty end meaning
// the end of the column family): see [DataRange].
package keys
