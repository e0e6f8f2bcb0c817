package pdclient

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/api/pdpb"
)

// memberPD is a PD member: it serves while it leads and otherwise answers
// as a real follower does, UNAVAILABLE naming the leader in the trailer.
type memberPD struct {
	pdpb.UnimplementedPDServer
	mu     sync.Mutex
	leader string // "" while it leads itself
	calls  atomic.Int64
	next   atomic.Uint64
	// hold, if set, makes Tso keep the next request unanswered (it is
	// closed once one arrived: the batch is in flight).
	hold chan struct{}
	// mute makes Tso take requests and never answer them, as a hung member
	// does; delay makes it answer each one that late.
	mute  atomic.Bool
	delay atomic.Int64 // time.Duration
	// streams counts the Tso streams opened; cancelled those that ended
	// because the client cancelled them while a request went unanswered.
	streams, cancelled atomic.Int64
}

// notLeaderMsg is in the message of a follower's refusal, as in
// services/pd/internal/grpcsvc.NotLeader.
const notLeaderMsg = "this member is not the leader"

func (m *memberPD) refuse(ctx context.Context) error {
	m.calls.Add(1)
	m.mu.Lock()
	leader := m.leader
	m.mu.Unlock()
	if leader == "" {
		return nil
	}
	if leader != "none" {
		_ = grpc.SetTrailer(ctx, metadata.Pairs(leaderKey, leader))
	}
	return status.Errorf(codes.Unavailable, "pd: %s; the leader is at %s", notLeaderMsg, leader)
}

func (m *memberPD) setLeader(l string) { m.mu.Lock(); m.leader = l; m.mu.Unlock() }

func (m *memberPD) GetClusterInfo(ctx context.Context, _ *pdpb.GetClusterInfoRequest) (*pdpb.GetClusterInfoResponse, error) {
	if err := m.refuse(ctx); err != nil {
		return nil, err
	}
	return &pdpb.GetClusterInfoResponse{Header: &pdpb.ResponseHeader{}, ClusterId: 7}, nil
}

func (m *memberPD) Tso(stream pdpb.PD_TsoServer) error {
	m.streams.Add(1)
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		if err := m.refuse(stream.Context()); err != nil {
			return err
		}
		if m.mute.Load() {
			<-stream.Context().Done()
			m.cancelled.Add(1)
			return nil
		}
		if d := time.Duration(m.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		m.mu.Lock()
		hold := m.hold
		m.hold = nil
		m.mu.Unlock()
		if hold != nil {
			close(hold)
			<-stream.Context().Done() // never answered: the member dies first
			return nil
		}
		first := m.next.Add(uint64(req.GetCount())) - uint64(req.GetCount()) + 1
		if err := stream.Send(&pdpb.TsoResponse{Header: &pdpb.ResponseHeader{}, First: first, Count: req.GetCount()}); err != nil {
			return nil
		}
	}
}

func startMember(t *testing.T, m *memberPD) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	pdpb.RegisterPDServer(s, m)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String(), s.Stop
}

func TestParseMembers(t *testing.T) {
	got, err := ParseMembers(" a:1, b:2,,a:1 ")
	if err != nil || len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("ParseMembers = %v, %v", got, err)
	}
	for _, bad := range []string{"", " , ", "a:1,nope", "a"} {
		if _, err := ParseMembers(bad); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("ParseMembers(%q) = %v, want ErrInvalidOptions", bad, err)
		}
	}
}

// TestMemberConnFollowsLeader: calls start at a follower and go to the
// leader it names; when the leader dies and another member leads, calls
// and the TSO stream move there, and timestamps keep coming.
func TestMemberConnFollowsLeader(t *testing.T) {
	a, b, c := &memberPD{}, &memberPD{}, &memberPD{}
	addrA, _ := startMember(t, a)
	addrB, stopB := startMember(t, b)
	addrC, _ := startMember(t, c)
	a.setLeader(addrB)
	c.setLeader(addrB)

	mc, err := Dial(addrA + "," + addrB + "," + addrC)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	cl, err := New(mc, Options{MaxBackoff: 20 * time.Millisecond, MaxRetries: 50})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cl.GetTS(ctx); err != nil {
		t.Fatal(err)
	}
	if mc.Leader() != addrB {
		t.Fatalf("following %s, want the leader %s", mc.Leader(), addrB)
	}
	if a.calls.Load() > 1 || c.calls.Load() != 0 {
		t.Fatalf("followers asked %d and %d times", a.calls.Load(), c.calls.Load())
	}

	// B dies; while the group elects, A knows no leader; then C leads.
	c.next.Store(1 << 40) // the new leader's timestamps are higher
	a.setLeader("none")
	c.setLeader("none")
	stopB()
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.setLeader(addrC)
		c.setLeader("")
	}()
	var last uint64
	deadline := time.Now().Add(10 * time.Second)
	for mc.Leader() != addrC || last < 1<<40 {
		if time.Now().After(deadline) {
			t.Fatalf("did not move to the new leader: following %s, last ts %d", mc.Leader(), last)
		}
		ts, err := cl.GetTS(ctx)
		if err != nil {
			t.Fatalf("GetTS across the leader change: %v", err)
		}
		last = ts
	}
	// Unary calls follow too.
	if _, err := invoke(ctx, cl, pdpb.PD_GetClusterInfo_FullMethodName, cl.pd.GetClusterInfo, &pdpb.GetClusterInfoRequest{}); err != nil {
		t.Fatalf("GetClusterInfo after the change: %v", err)
	}
}

// TestMemberConnPassesOverForeignLeaderAddress: members name the leader by
// an address of their own scope (a container name) that is not in the
// client's list; the client tries the members in turn and finds it.
func TestMemberConnPassesOverForeignLeaderAddress(t *testing.T) {
	a, b := &memberPD{}, &memberPD{}
	addrA, _ := startMember(t, a)
	addrB, _ := startMember(t, b)
	a.setLeader("nokv-pd-2:2379")
	mc, err := Dial(addrA + "," + addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	cl, err := New(mc, Options{MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := invoke(ctx, cl, pdpb.PD_GetClusterInfo_FullMethodName, cl.pd.GetClusterInfo, &pdpb.GetClusterInfoRequest{}); err != nil {
		t.Fatalf("GetClusterInfo: %v", err)
	}
	if mc.Leader() != addrB || len(mc.Members()) != 2 {
		t.Fatalf("following %s among %v, want %s among the two configured", mc.Leader(), mc.Members(), addrB)
	}
}

// TestTSOBatchInFlightWhenLeaderDies: the leader receives a batch and dies
// before answering it; the batch is sent again to the new leader, and every
// caller waiting in it gets a timestamp above everything handed out before.
func TestTSOBatchInFlightWhenLeaderDies(t *testing.T) {
	a, b, c := &memberPD{}, &memberPD{}, &memberPD{}
	addrA, _ := startMember(t, a)
	addrB, stopB := startMember(t, b)
	addrC, _ := startMember(t, c)
	a.setLeader(addrB)
	c.setLeader(addrB)
	mc, err := Dial(addrA + "," + addrB + "," + addrC)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	tc, err := NewTSOClient(pdpb.NewPDClient(mc), TSOOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var before uint64
	for range 100 {
		if before, err = tc.GetTS(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// The next batch reaches B, which never answers it.
	inFlight := make(chan struct{})
	b.mu.Lock()
	b.hold = inFlight
	b.mu.Unlock()
	c.next.Store(before + 1000) // C resumes above B's window
	const callers = 16
	type result struct {
		ts  uint64
		err error
	}
	results := make(chan result, callers)
	for range callers {
		go func() {
			ts, err := tc.GetTS(ctx)
			results <- result{ts, err}
		}()
	}
	<-inFlight
	// B dies with the batch in flight; the group elects C meanwhile.
	a.setLeader("none")
	c.setLeader("none")
	stopB()
	time.Sleep(200 * time.Millisecond)
	a.setLeader(addrC)
	c.setLeader("")

	seen := map[uint64]bool{}
	for range callers {
		r := <-results
		if r.err != nil {
			t.Fatalf("a caller of the batch in flight when the leader died: %v", r.err)
		}
		if r.ts <= before || seen[r.ts] {
			t.Fatalf("timestamp %d after the failover: not above %d handed out before, or repeated", r.ts, before)
		}
		seen[r.ts] = true
	}
	if mc.Leader() != addrC {
		t.Fatalf("following %s, want the new leader %s", mc.Leader(), addrC)
	}
}
