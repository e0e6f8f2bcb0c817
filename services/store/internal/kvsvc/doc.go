// Package kvsvc serves the store's gRPC API: the Percolator transactional
// KV RPCs, the raft transport streams and the admin RPCs.
//
// A write request is computed on the region's leader and replicated as
// plain engine modifications: check the route (region, leader, epoch, key
// range), take the keys' latches, wait until the leader has applied every
// write of earlier terms, compute the modifications with package mvcc
// against the applied state, propose them, and answer once they apply. The
// latches are held until then, so the next request on the same keys reads
// a state that includes this one. A write also holds its region's guard
// shared, which KvDeleteRange takes exclusively: a range deletion is never
// between another write's compute and its apply.
//
// Sizes are bounded by api/limits: a command larger than a raft entry may be
// is refused (RegionError.raft_entry_too_large); scans and batch gets stop
// at a response budget and say where to continue; GC and lock resolution cut
// their own writes into commands of limits.WriteBatchBytes.
//
// A read confirms leadership with a raft ReadIndex round and waits until the
// applied state covers it before reading the engine: reads are
// linearizable.
//
// One-phase commit picks its commit timestamp on the store, above every
// read timestamp the store has served (maxTS) and above the client's
// proposal. Reads register their timestamp before they look for in-flight
// one-phase commits on their keys and wait for those; a one-phase commit
// registers itself before it reads maxTS. Either the read waits for the
// commit to apply, or the commit lands above the read's timestamp: a
// snapshot read never sees a value appear under it. maxTS is raised from
// PD's TSO whenever this store starts leading a region, which covers reads
// served by earlier leaders.
//
// GC (RunGC) collects versions below PD's GC safe point, which advances
// only past resolved locks: the store leading the region that holds the
// empty key drives it, resolving every lock at or below a candidate safe
// point in every region (kvclient.ResolveLocksForGC) before it stores the
// candidate in PD; see advanceSafePoint for why that is enough.
package kvsvc
