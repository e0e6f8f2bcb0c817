// Package pdclient is NoKV's client of the placement driver (PD).
//
// The caller owns the gRPC connection: it dials PD (grpc.NewClient) and hands
// pdpb.NewPDClient(conn) to the constructors here, and closes the connection
// after closing the clients built on it.
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
// Failures: when the stream breaks, the requests of the batch in flight fail
// with an error matching [ErrUnavailable] (and wrapping the gRPC error); they
// may have consumed timestamps on PD, which is harmless, and the caller may
// retry. The client reconnects with capped exponential backoff; requests made
// while it is disconnected wait for the new stream, bounded by their context,
// so give them a deadline. A response carrying a PD error fails its batch with
// a [*PDError]. After [TSOClient.Close] every call fails with [ErrClosed].
package pdclient
