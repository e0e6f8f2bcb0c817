// Package schedule decides, on each region heartbeat, whether PD should ask
// the region's leader to do something: repair a replica lost with a dead
// store, split a region grown too large, or move a leader off a store that
// holds more than its share.
//
// A [Scheduler] is driven by region heartbeats: [Scheduler.Dispatch] returns
// at most one operation per region at a time and remembers it until a later
// heartbeat shows its effect (the new leader, the added, promoted or removed
// peer, a newer version after a split), the region's epoch moves on without
// it (the store ignores an operation computed against an older epoch), or it
// times out. Only then is the next operation for that region computed. An
// operation is sent once; if the response is lost, the region gets a new one
// after the timeout.
//
// Rules, in priority order:
//
//  1. Replica repair. A peer on a store that has been DOWN for
//     ReplaceDownAfter (or is a tombstone), or one the leader reports down
//     while its store is UP, is replaced in three steps: ADD_LEARNER on an UP
//     store without a peer of the region; once the learner is not pending,
//     one joint change (ChangePeerV2: PROMOTE_LEARNER of it and DEMOTE_VOTER
//     of the dead voter), which the store's leader leaves by itself; then
//     REMOVE_PEER of the demoted learner. The region never has more voters
//     than before. The leader is never the dead peer, so it is never
//     demoted. A caught-up learner is promoted alone only when the region
//     has fewer voters than MaxReplicas.
//  2. Split. A region whose approximate size exceeds RegionMaxSize is split
//     at a key the store picks.
//  3. Leader balance. If the leader's store holds more leaders than the
//     least-loaded UP store with a healthy voter of the region, by more than
//     the tolerance, the leader is transferred there. Leader counts come from
//     store heartbeats, corrected for the transfers PD ordered since.
//
// The scheduler reads stores through the small [Cluster] interface, which
// the cluster package satisfies, and takes time as an argument, so tests
// drive it with a fake clock.
package schedule
