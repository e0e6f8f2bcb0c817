// Package api holds NoKV's protobuf definitions (proto/) and the Go code generated
// from them (metapb, pdpb, kvrpcpb, raftserverpb, storepb), and the size limits
// clients and stores agree on (limits). Regenerate with scripts/genproto.sh; the
// generated files are committed so a build needs no protoc.
package api
