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
// batched: one goroutine owns the stream, takes every request waiting at that
// moment, asks PD for that many timestamps in one TsoRequest and hands the
// consecutive block out in request order. Only one batch is in flight at a
// time; requests arriving meanwhile form the next batch, so the batch grows
// with the load and the stream round trip is amortised over many callers.
//
// Failures: when the stream breaks, the requests of the batch in flight fail
// with an error matching [ErrUnavailable] (and wrapping the gRPC error); they
// may have consumed timestamps on PD, which is harmless, and the caller may
// retry. The client reconnects with capped exponential backoff; requests made
// while it is disconnected wait for the new stream, bounded by their context,
// so give them a deadline. A response carrying a PD error fails its batch with
// a [*PDError]. After [TSOClient.Close] every call fails with [ErrClosed].
package pdclient
