// Package id is PD's allocator of cluster-unique ids (stores, regions, peers).
//
// [Allocator.Alloc] hands out blocks [first, first+count) and never hands out
// an id twice, also across restarts and crashes (kill -9). It does not sync
// per call: it reserves ids ahead with one synced write of a high-water mark
// (storage.KeyIDHighWater, "ids below it may have been handed out"), at least
// [Step] ids at a time, and serves later calls from the reservation. A
// restart continues at the mark, so a crash loses at most the unused rest of
// one reservation.
//
// Ids start above a floor given at construction: PD passes the largest id in
// the cluster file, so ids used by the bootstrap topology are never reissued.
// Id 0 is never handed out.
package id
