// Package pdclient is NoKV's client of the placement driver (PD).
//
// The caller owns the gRPC connection: it dials PD (grpc.NewClient), hands
// it to [New] (or pdpb.NewPDClient(conn) to [NewTSOClient]), and closes the
// connection after closing the clients built on it.
//
// [Client] is the whole API: routing, stores, ids, timestamps, heartbeats,
// splits and the GC safe point. It embeds a [TSOClient] for timestamps and a
// [RegionCache] for routes.
//
// # Routing
//
// [Client.GetRegion] answers from the region cache and asks PD only on a
// miss, caching the answer; GetRegionByID and ScanRegions always ask PD and
// cache what they get. The cache holds non-overlapping key ranges ordered by
// start key: a region inserted replaces every cached region it overlaps and
// older versions of itself, and an insert older than what the cache holds is
// refused. PD's answers can be stale by the time they are used, so callers
// that learn better from a store keep the cache honest through
// [Client.Cache]: InvalidateRegion or InvalidateKey on an epoch or
// region-not-found error, UpdateLeader on a "not leader" hint. Entries also
// expire after Options.RegionCacheTTL, so a route nobody invalidated is
// refreshed eventually. Stores are cached the same way (GetStore,
// InvalidateStore).
//
// # Retries and errors
//
// Unary calls are retried on availability errors only: gRPC Unavailable (PD
// down or restarting), ResourceExhausted, and DeadlineExceeded of one attempt
// when Options.AttemptTimeout is set. They wait a jittered, capped,
// exponential backoff between attempts and give up after Options.MaxRetries
// retries with an error matching [ErrUnavailable] that wraps the last gRPC
// error. The caller's context bounds the whole call, backoff included.
// Retried calls may have reached PD already; every call is safe to repeat
// (AllocID and AskSplit may leave ids unused, which is harmless). Other gRPC
// errors are returned as they are. A business error in a response header is
// never retried: it comes back as a [*PDError], which matches the sentinel
// of its type with errors.Is ([ErrRegionNotFound], [ErrStaleEpoch],
// [ErrStoreNotFound], [ErrStoreTombstone], [ErrInvalidArgument]). After
// [Client.Close], calls fail with [ErrClosed], including those waiting in a
// backoff or an attempt.
//
// # Timestamps
//
// [TSOClient] gets transaction timestamps from PD's bidirectional Tso stream.
// Concurrent callers of [TSOClient.GetTS] and [TSOClient.GetTSAsync] are
// batched: each call takes a slot in the open batch, and one goroutine, which
// owns the stream, sends one TsoRequest per batch for as many timestamps as
// the batch has slots and hands the consecutive block out in slot (request)
// order. Only one batch is in flight at a time; callers arriving meanwhile
// fill the next one, so the batch grows with the load and the stream round
// trip is amortised over many callers. A caller that gives up still leaves a
// slot in its batch (an unused timestamp is harmless); a batch whose callers
// all gave up before it was sent is not sent.
//
// Failures: when the stream breaks (PD restarted, a PD group's leader died,
// or a member answered that it does not lead), whatever PD sent for the
// batch in flight reached no caller, so the batch is sent again on the next
// stream, which [MemberConn] opens on the leader. Its timestamps come from a
// request sent after the break, so they are above everything handed out
// before it (a new leader resumes above the old one's persisted window): a
// failover costs callers a pause, not an error. The timestamps PD may have
// issued for the lost answer stay unused, which is harmless.
//
// A member may also keep the stream open and never answer (a disk stall
// under its etcd, a hung process, a proxy holding the connection): without
// a bound every caller of every gateway and store would wait with it while
// another member leads. So the batch in flight, and the opening of a
// stream, get at most [TSOOptions].StallTimeout (default 3 s, above PD's
// slowest legitimate answer; see [DefaultTSOStallTimeout]); then the stream
// is cancelled with a cause that [MemberConn] takes for a failed member,
// so the next stream goes to the next member, and the batch is sent again
// there like after a break. A stream ended by [TSOClient.Close] or left by
// callers whose context ended moves nothing. A member that answers slowly
// but within the timeout keeps the stream.
//
// A batch is sent again for up to 15 s after the first break or stall; then
// it fails with an error matching [ErrUnavailable] (wrapping the gRPC
// error). The client
// reconnects with capped exponential backoff; requests made while it is
// disconnected wait for the new stream, bounded by their context, so give
// them a deadline. A response carrying a PD error fails its batch with
// a [*PDError]. After [TSOClient.Close] every call fails with [ErrClosed].
package pdclient
