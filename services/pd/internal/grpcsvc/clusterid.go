package grpcsvc

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
)

// ClusterIDKey is the gRPC metadata key of the cluster id: requests carry
// the id the caller expects, PD's responses the id PD has.
const ClusterIDKey = "nokv-cluster-id"

// ClusterIDCheck refuses requests that name another cluster. A request
// without the key is served (a client that has not learned the id yet, or
// from before cluster ids): stores always send theirs.
type ClusterIDCheck struct {
	// ID returns PD's cluster id.
	ID func() uint64
}

// check returns the FAILED_PRECONDITION status of a mismatch, or nil.
func (c ClusterIDCheck) check(ctx context.Context, method string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(ClusterIDKey)
	if len(vals) == 0 {
		return nil
	}
	mine := c.ID()
	if mine == 0 {
		// A follower of a group not bootstrapped yet: it serves nothing
		// anyway, and answers NotLeader rather than a mismatch.
		return nil
	}
	theirs, err := strconv.ParseUint(vals[0], 10, 64)
	if err == nil && theirs == mine {
		return nil
	}
	msg := fmt.Sprintf("cluster id mismatch: the request to %s expects cluster %s, this PD serves cluster %d "+
		"(a PD started on an empty workdir bootstrapped a new cluster, or the caller belongs to another cluster)", method, vals[0], mine)
	st, derr := status.New(codes.FailedPrecondition, msg).WithDetails(&pdpb.Error{Type: pdpb.ErrorType_CLUSTER_ID_MISMATCH, Message: msg})
	if derr != nil {
		return status.Error(codes.FailedPrecondition, msg)
	}
	return st.Err()
}

func (c ClusterIDCheck) announce(ctx context.Context) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(ClusterIDKey, strconv.FormatUint(c.ID(), 10)))
}

// Unary checks the caller's cluster id and announces PD's in the response
// header.
func (c ClusterIDCheck) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	c.announce(ctx)
	if err := c.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

// Stream checks the caller's cluster id when a stream opens.
func (c ClusterIDCheck) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := c.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	_ = ss.SetHeader(metadata.Pairs(ClusterIDKey, strconv.FormatUint(c.ID(), 10)))
	return h(srv, ss)
}
