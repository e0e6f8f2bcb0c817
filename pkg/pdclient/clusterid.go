package pdclient

import (
	"context"
	"strconv"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// clusterIDKey is the gRPC metadata key of the cluster id (see the PD
// service in api/proto/pdpb.proto).
const clusterIDKey = "nokv-cluster-id"

// idConn attaches the cluster id the client expects to every request, and
// learns PD's from the first unary answer while it has none.
type idConn struct {
	cc grpc.ClientConnInterface
	id *atomic.Uint64
}

func (c idConn) withID(ctx context.Context) context.Context {
	if id := c.id.Load(); id != 0 {
		return metadata.AppendToOutgoingContext(ctx, clusterIDKey, strconv.FormatUint(id, 10))
	}
	return ctx
}

// Invoke implements grpc.ClientConnInterface.
func (c idConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	if c.id.Load() != 0 {
		return c.cc.Invoke(c.withID(ctx), method, args, reply, opts...)
	}
	var md metadata.MD
	err := c.cc.Invoke(ctx, method, args, reply, append(opts, grpc.Header(&md))...)
	if vals := md.Get(clusterIDKey); len(vals) > 0 {
		if id, perr := strconv.ParseUint(vals[0], 10, 64); perr == nil && id != 0 {
			c.id.CompareAndSwap(0, id)
		}
	}
	return err
}

// NewStream implements grpc.ClientConnInterface.
func (c idConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(c.withID(ctx), desc, method, opts...)
}
