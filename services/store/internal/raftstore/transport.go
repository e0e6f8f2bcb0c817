package raftstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/proto"

	"github.com/nokv/nokv/api/limits"
	"github.com/nokv/nokv/api/raftserverpb"
	"github.com/nokv/nokv/api/storepb"
)

// Transport moves raft messages to other stores: one queue and one sender
// goroutine per destination store, each holding a long-lived gRPC stream
// and sending whatever has queued up as one batch. A slow or dead store
// only fills its own queue; messages past that are dropped (raft
// retransmits) and reported unreachable so raft backs off.
type Transport struct {
	s     *Store
	mu    sync.Mutex
	conns map[uint64]*storeConn
	stopc chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

const (
	sendQueueLen = 4096
	maxBatchMsgs = 256
	// maxBatchBytes bounds a batch by the messages' encoded size
	// (limits.RaftTransportBatchBytes, twice the largest entry); a single
	// larger message goes alone. The receiver takes messages up to
	// limits.GRPCMaxMessageSize.
	maxBatchBytes   = limits.RaftTransportBatchBytes
	maxDialBackoff  = 2 * time.Second
	resolveTimeout  = 3 * time.Second
	snapSendTimeout = 10 * time.Minute
	// snapRetryDelay is how long a failed snapshot send waits before it is
	// reported to raft. Raft sends a new snapshot at the follower's next
	// heartbeat response after a failure; reported at once, a receiver
	// that refuses (all its snapshot slots busy) or a link that breaks
	// would be hit by a new stream every heartbeat, each reading and
	// sending data from the start, on both stores' CPU and disk, just
	// when they are busiest. Until the report the follower gets
	// heartbeats but no appends, which it could not use anyway.
	snapRetryDelay = time.Second
)

type storeConn struct {
	t       *Transport
	storeID uint64
	queue   chan *raftserverpb.RaftMessage

	mu sync.Mutex
	cc *grpc.ClientConn
}

func newTransport(s *Store) *Transport {
	return &Transport{s: s, conns: map[uint64]*storeConn{}, stopc: make(chan struct{})}
}

func (t *Transport) conn(storeID uint64) *storeConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.conns[storeID]
	if !ok {
		select {
		case <-t.stopc:
			return nil
		default:
		}
		c = &storeConn{t: t, storeID: storeID, queue: make(chan *raftserverpb.RaftMessage, sendQueueLen)}
		t.conns[storeID] = c
		t.wg.Add(1)
		go c.run()
	}
	return c
}

func (t *Transport) dropped(rm *raftserverpb.RaftMessage) bool {
	return t.s.cfg.Knobs.DropMessage != nil && t.s.cfg.Knobs.DropMessage(rm)
}

// send queues a message without blocking.
func (t *Transport) send(rm *raftserverpb.RaftMessage) {
	if t.dropped(rm) {
		t.s.stats.MessagesDropped.Add(1)
		return
	}
	c := t.conn(rm.GetToPeer().GetStoreId())
	if c == nil {
		return
	}
	select {
	case c.queue <- rm:
	default:
		t.s.stats.MessagesDropped.Add(1)
		t.reportUnreachable([]*raftserverpb.RaftMessage{rm})
	}
}

// reportUnreachable tells the sending peers their messages did not go out.
func (t *Transport) reportUnreachable(msgs []*raftserverpb.RaftMessage) {
	if len(msgs) == 0 {
		return
	}
	type target struct{ region, peer uint64 }
	seen := map[target]bool{}
	for _, m := range msgs {
		seen[target{m.GetRegionId(), m.GetToPeer().GetId()}] = true
	}
	t.s.post(func() {
		for tg := range seen {
			if p := t.s.getPeer(tg.region); p != nil {
				t.s.wake(p)
				p.rn.ReportUnreachable(tg.peer)
			}
		}
	})
}

// storeIDs returns the stores this transport has sent to.
func (t *Transport) storeIDs() []uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]uint64, 0, len(t.conns))
	for id := range t.conns {
		ids = append(ids, id)
	}
	return ids
}

func (t *Transport) close() {
	t.once.Do(func() { close(t.stopc) })
	t.wg.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.conns {
		c.mu.Lock()
		if c.cc != nil {
			c.cc.Close()
		}
		c.mu.Unlock()
	}
}

// client returns a connection to the store, resolving its address via PD.
func (c *storeConn) client(ctx context.Context) (storepb.StoreClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		return storepb.NewStoreClient(c.cc), nil
	}
	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	st, err := c.t.s.pd.GetStore(rctx, c.storeID)
	if err != nil {
		return nil, err
	}
	cc, err := grpc.NewClient(st.GetAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Find half-open connections (a peer that vanished) in seconds,
		// not at the TCP timeout.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 3 * time.Second, PermitWithoutStream: true}),
		grpc.WithChainStreamInterceptor(c.t.s.clusterIDStream),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(limits.GRPCMaxMessageSize), grpc.MaxCallRecvMsgSize(limits.GRPCMaxMessageSize)))
	if err != nil {
		return nil, err
	}
	c.cc = cc
	return storepb.NewStoreClient(cc), nil
}

// reset forgets the connection and the cached address after a failure: the
// store may have moved.
func (c *storeConn) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cc != nil {
		c.cc.Close()
		c.cc = nil
	}
	c.t.s.pd.InvalidateStore(c.storeID)
}

func (c *storeConn) run() {
	defer c.t.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.t.stopc
		cancel()
	}()
	const minBackoff = 50 * time.Millisecond
	backoff := minBackoff
	for {
		sent := false
		err := c.stream(ctx, &sent)
		if sent {
			// The link worked: a later break is a new failure, not more of
			// the same one.
			backoff = minBackoff
		}
		if ctx.Err() != nil {
			return
		}
		c.t.s.log.Debug("raft stream to store broke", "to", c.storeID, "err", err)
		// The followers here of regions led there need not wait for the
		// store's silence to tell.
		id := c.storeID
		c.t.s.post(func() { c.t.s.onStoreDown(id, time.Now(), true) })
		c.reset()
		// Drop what queued up while the link was down: raft resends.
		var stale []*raftserverpb.RaftMessage
	drain:
		for {
			select {
			case m := <-c.queue:
				stale = append(stale, m)
			default:
				break drain
			}
		}
		c.t.reportUnreachable(stale)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return
		}
		backoff = min(backoff*2, maxDialBackoff)
	}
}

// stream sends batches on one stream until it fails.
func (c *storeConn) stream(ctx context.Context, sent *bool) error {
	var first *raftserverpb.RaftMessage
	select {
	case first = <-c.queue:
	case <-ctx.Done():
		return ctx.Err()
	}
	cl, err := c.client(ctx)
	if err != nil {
		c.t.reportUnreachable([]*raftserverpb.RaftMessage{first})
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := cl.Raft(sctx)
	if err != nil {
		c.t.reportUnreachable([]*raftserverpb.RaftMessage{first})
		return err
	}
	batch := &raftserverpb.BatchRaftMessage{}
	var carry *raftserverpb.RaftMessage
	for {
		batch.Msgs = append(batch.Msgs[:0], first)
		// Whole messages count: region boundaries (keys) travel in each.
		size := proto.Size(first)
	more:
		for len(batch.Msgs) < maxBatchMsgs && size < maxBatchBytes {
			select {
			case m := <-c.queue:
				n := proto.Size(m)
				if size+n > maxBatchBytes {
					carry = m
					break more
				}
				batch.Msgs = append(batch.Msgs, m)
				size += n
			default:
				break more
			}
		}
		if err := st.Send(batch); err != nil {
			c.t.s.stats.MessagesDropped.Add(int64(len(batch.Msgs)))
			c.t.reportUnreachable(batch.Msgs)
			return err
		}
		c.t.s.stats.MessagesSent.Add(int64(len(batch.Msgs)))
		*sent = true
		if carry != nil {
			first, carry = carry, nil
			continue
		}
		select {
		case first = <-c.queue:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendSnapshot streams a generated snapshot to the follower and reports
// the outcome to raft.
func (t *Transport) sendSnapshot(rm *raftserverpb.RaftMessage, snap *raftpb.Snapshot) {
	id := snapID{rm.GetRegionId(), snap.Metadata.Index, snap.Metadata.Term}
	report := func(ok bool) {
		status := raft.SnapshotFinish
		if !ok {
			status = raft.SnapshotFailure
		}
		t.s.post(func() {
			if p := t.s.getPeer(rm.GetRegionId()); p != nil {
				t.s.wake(p)
				p.rn.ReportSnapshot(rm.GetToPeer().GetId(), status)
			}
		})
	}
	if t.dropped(rm) {
		report(false)
		return
	}
	c := t.conn(rm.GetToPeer().GetStoreId())
	if c == nil {
		return
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		g, ok := t.s.snaps.acquire(id)
		if !ok {
			report(false)
			return
		}
		defer t.s.snaps.release(id, g)
		ctx, cancel := context.WithTimeout(context.Background(), snapSendTimeout)
		defer cancel()
		go func() {
			select {
			case <-t.stopc:
				cancel()
			case <-ctx.Done():
			}
		}()
		err := t.streamSnapshot(ctx, c, rm, g)
		if err != nil {
			t.s.stats.SnapshotSendFailures.Add(1)
			t.s.log.Warn("send snapshot", "region", rm.GetRegionId(), "to_store", rm.GetToPeer().GetStoreId(), "err", err)
			select {
			case <-time.After(snapRetryDelay):
			case <-t.stopc:
			}
		} else {
			t.s.stats.SnapshotsSent.Add(1)
			t.s.log.Info("sent snapshot", "region", rm.GetRegionId(), "to_store", rm.GetToPeer().GetStoreId(), "index", id.index)
		}
		report(err == nil)
	}()
}

func (t *Transport) streamSnapshot(ctx context.Context, c *storeConn, rm *raftserverpb.RaftMessage, g *generatedSnap) error {
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	st, err := cl.Snapshot(ctx)
	if err != nil {
		return err
	}
	// Send blocks while the receiver's flow-control window is full, so at
	// most a chunk or two of the scan is in memory at a time.
	first := true
	sum := newSnapDigest()
	err = scanSnapshot(g, t.s.cfg.SnapshotChunkSize, func(kvs []*raftserverpb.SnapshotKV) error {
		chunk := &raftserverpb.SnapshotChunk{Kvs: kvs}
		if first {
			chunk.Message, first = rm, false
		}
		for _, kv := range kvs {
			sum.add(kv.GetKey(), kv.GetValue())
		}
		return st.Send(chunk)
	})
	if err == nil {
		err = st.Send(&raftserverpb.SnapshotChunk{Digest: sum.proto()})
	}
	if errors.Is(err, io.EOF) {
		// The receiver ended the stream early: Send only says that it is
		// over, the stream's status says why (busy, refused).
		if _, err = st.CloseAndRecv(); err == nil || errors.Is(err, io.EOF) {
			err = errors.New("the receiver ended the stream early")
		}
		return fmt.Errorf("receiver refused the snapshot: %w", err)
	}
	if err != nil {
		return err
	}
	if _, err := st.CloseAndRecv(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// maxInboundMsgs bounds raft messages received but not yet stepped: if the
// loop falls behind (a stalled disk), more are dropped rather than queued
// without limit; raft retransmits what matters.
const maxInboundMsgs = 200_000

// HandleRaftBatch steps messages received from another store.
func (s *Store) HandleRaftBatch(batch *raftserverpb.BatchRaftMessage) {
	msgs := batch.GetMsgs()
	if len(msgs) > 0 {
		s.liveness.heard(msgs[0].GetFromPeer().GetStoreId(), time.Now())
		if len(msgs) == 1 && msgs[0].GetExtra().GetType() == raftserverpb.ExtraMessageType_STORE_HEARTBEAT {
			return // nothing for the loop
		}
	}
	n := int64(len(msgs))
	if s.inbound.Add(n) > maxInboundMsgs {
		s.inbound.Add(-n)
		s.stats.MessagesDropped.Add(n)
		return
	}
	s.post(func() {
		s.inbound.Add(-n)
		for _, m := range msgs {
			s.onRaftMessage(m, nil)
		}
	})
}

// ReceiveSnapshot reads one snapshot stream (recv returns io.EOF at its
// end) into SST files on disk, never holding more than a chunk of it in
// memory, then steps it into its peer and waits until the loop has taken
// it. A stream that breaks or fails its checks leaves no files behind and
// returns an error wrapping ErrBadSnapshot or the stream's own.
func (s *Store) ReceiveSnapshot(recv func() (*raftserverpb.SnapshotChunk, error)) error {
	if s.cfg.SnapshotDir == "" {
		return fmt.Errorf("%w: this store has no snapshot directory", ErrBadSnapshot)
	}
	if hook := s.cfg.Knobs.SnapshotChunk; hook != nil {
		inner := recv
		var n int
		var region uint64
		recv = func() (*raftserverpb.SnapshotChunk, error) {
			c, err := inner()
			if err != nil {
				return c, err
			}
			n++
			if n == 1 {
				region = c.GetMessage().GetRegionId()
			}
			if err := hook(region, n); err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	msg, in, err := receiveSnapshot(s.cfg.SnapshotDir, s.db.FormatMajorVersion().MaxTableFormat(), recv)
	if err != nil {
		return err
	}
	s.stats.SnapshotsReceived.Add(1)
	done := make(chan struct{})
	s.post(func() {
		defer close(done)
		// The files are the peer's now, or removed.
		s.onRaftMessage(msg, in)
	})
	select {
	case <-done:
		return nil
	case <-s.stopc:
		// If the loop never runs the task, the next Open removes the files.
		return ErrStopped
	case <-s.fatalc:
		return ErrStopped
	}
}
