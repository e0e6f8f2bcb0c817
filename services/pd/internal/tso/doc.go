// Package tso is PD's timestamp oracle: it issues the cluster's transaction
// timestamps, which must be strictly increasing and never repeated, also
// across restarts and crashes (kill -9).
//
// A timestamp is physical<<18 | logical: physical is Unix milliseconds and
// logical counts up to 1<<18 timestamps within one millisecond ([Compose],
// [Physical], [Logical]). [Oracle.Get] hands out a block of consecutive
// logicals of one physical millisecond, which is what PD's Tso stream answers
// one request with.
//
// # Persistence
//
// Like tikv/pd, the oracle does not fsync per request. It persists a
// high-water mark (storage.KeyTSOHighWater, Unix ms) a window ahead of the
// physical time it issues, and never issues a timestamp whose physical part
// reaches the persisted mark. On start it loads the mark m and continues at
// physical max(now, m+1ms), so nothing issued before a crash is issued again
// even if the wall clock went backwards meanwhile. The mark is pushed forward
// by a background goroutine once the physical time gets within half a window
// of it, so the synced write is off the request path; a request that catches
// up with the mark anyway (clock jump, logical overflow) extends it inline.
//
// # Time
//
// The physical part follows the wall clock but never goes backwards: if the
// clock steps back, the oracle keeps issuing at its last physical time. When
// the 1<<18 logicals of a millisecond are used up, the oracle moves on to the
// next millisecond instead of waiting for the clock, so it can run ahead of the
// wall clock under extreme load; the window mark covers that as well.
//
// # Concurrency
//
// Get is lock-free on the fast path (one compare-and-swap on the packed
// next timestamp); only persisting the mark takes a mutex.
package tso
