// Package grpcsvc is PD's gRPC surface: it implements pdpb.PDServer on top of the
// cluster catalog, the scheduler, the id allocator and the timestamp oracle, and
// holds the one table that turns their errors into pdpb.ErrorType values
// (errors.go). Business outcomes travel in the response header; a gRPC status
// error means PD itself could not serve (shutting down, storage failure).
package grpcsvc
