package pdclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/nokv/nokv/pkg/config"
)

// leaderKey is the gRPC trailer key in which a PD member that does not lead
// names the leader's address (services/pd/internal/grpcsvc.LeaderKey).
const leaderKey = "nokv-pd-leader"

// MemberConn is a connection to a PD group: it sends every call to the
// member it believes leads and follows the group's leadership. A member that
// does not lead answers UNAVAILABLE naming the leader, and MemberConn
// retries the call there at once; a member that cannot be reached makes it
// try the next one, and so does a TSO stream cancelled because the member
// left it unanswered (TSOOptions.StallTimeout). After every member was
// tried once the call fails with the last UNAVAILABLE error, which Client
// retries with backoff; a stream (the TSO stream) ends with it and
// TSOClient opens a new one, on the leader. With one address MemberConn is
// a plain connection. Safe for concurrent use.
type MemberConn struct {
	opts []grpc.DialOption

	mu      sync.Mutex
	addrs   []string // the members, as configured
	conns   map[string]*grpc.ClientConn
	current string // the member believed to lead
	closed  bool
}

var _ grpc.ClientConnInterface = (*MemberConn)(nil)

// ParseMembers splits a PD address list: host:port entries separated by
// commas (the form pd.addr takes with pd.members, see
// pkg/config.Cluster.PDAddr). Blanks around entries are ignored.
func ParseMembers(list string) ([]string, error) {
	var addrs []string
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := config.CheckAddr(a); err != nil {
			return nil, fmt.Errorf("%w: PD address list %q: %w", ErrInvalidOptions, list, err)
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: empty PD address list", ErrInvalidOptions)
	}
	return addrs, nil
}

// Dial returns a MemberConn to the PD members in list (comma-separated
// host:port). Without options the connections are insecure, as everywhere
// in NoKV. Nothing is dialled before the first call.
func Dial(list string, opts ...grpc.DialOption) (*MemberConn, error) {
	addrs, err := ParseMembers(list)
	if err != nil {
		return nil, err
	}
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	m := &MemberConn{opts: opts, conns: map[string]*grpc.ClientConn{}, current: addrs[0]}
	for _, a := range addrs {
		if _, err := m.conn(a); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// Members returns the member addresses MemberConn was given.
func (m *MemberConn) Members() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.addrs)
}

// Leader returns the member calls go to now.
func (m *MemberConn) Leader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// conn returns the connection to addr, creating it (and adding addr to the
// members) if needed; only Dial adds members.
func (m *MemberConn) conn(addr string) (*grpc.ClientConn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, status.Error(codes.Canceled, "pdclient: member connection closed")
	}
	if cc, ok := m.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, m.opts...)
	if err != nil {
		return nil, fmt.Errorf("pdclient: dial PD member %s: %w", addr, err)
	}
	m.conns[addr] = cc
	m.addrs = append(m.addrs, addr)
	return cc, nil
}

// failed records that addr answered UNAVAILABLE with trailer: calls move to
// the leader the trailer names if it is one of the members, or else to the
// next member after addr. A leader named by an address that is not in the
// list is passed over: members name each other by the address of their own
// scope (a container name), which a client in another scope cannot dial,
// and trying the members in turn finds the leader as well.
func (m *MemberConn) failed(addr string, trailer metadata.MD) {
	hint := ""
	if v := trailer.Get(leaderKey); len(v) > 0 && v[0] != addr {
		hint = v[0]
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.addrs, hint) {
		hint = ""
	}
	if m.current != addr {
		return // another call moved on already
	}
	if hint != "" {
		m.current = hint
		return
	}
	i := slices.Index(m.addrs, addr)
	m.current = m.addrs[(i+1)%len(m.addrs)]
}

// Invoke implements grpc.ClientConnInterface.
func (m *MemberConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	var err error
	for range len(m.Members()) + 1 {
		addr := m.Leader()
		cc, cerr := m.conn(addr)
		if cerr != nil {
			return cerr
		}
		var trailer metadata.MD
		err = cc.Invoke(ctx, method, args, reply, append(opts, grpc.Trailer(&trailer))...)
		if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
			return err
		}
		m.failed(addr, trailer)
	}
	return err
}

// errStreamStalled is the cause TSOClient cancels a stream's context with
// when the member at the other end left a request unanswered for the stall
// timeout (TSOOptions.StallTimeout). MemberConn takes it, like UNAVAILABLE,
// for a member that failed: the next stream goes to the next member. A
// stream cancelled for any other reason (TSOClient.Close, a caller's
// context) moves nothing: the member did nothing wrong.
var errStreamStalled = errors.New("pdclient: PD member left the stream unanswered")

// stalled reports whether ctx was cancelled because its member stalled.
func stalled(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errStreamStalled) }

// NewStream implements grpc.ClientConnInterface: the stream goes to the
// member believed to lead; when it ends UNAVAILABLE the next stream goes to
// the leader it named or the next member, and so it does when the caller
// cancelled it for a stall (errStreamStalled as ctx's cause).
func (m *MemberConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	addr := m.Leader()
	cc, err := m.conn(addr)
	if err != nil {
		return nil, err
	}
	cs, err := cc.NewStream(ctx, desc, method, opts...)
	if err != nil {
		if status.Code(err) == codes.Unavailable || stalled(ctx) {
			m.failed(addr, nil)
		}
		return nil, err
	}
	return &memberStream{ClientStream: cs, m: m, addr: addr, ctx: ctx}, nil
}

type memberStream struct {
	grpc.ClientStream
	m    *MemberConn
	addr string
	ctx  context.Context // as given to NewStream, for its cancellation cause
	once sync.Once
}

func (s *memberStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	switch {
	case err == nil:
	case stalled(s.ctx):
		// The member never answered: no trailer names a leader.
		s.once.Do(func() { s.m.failed(s.addr, nil) })
	case status.Code(err) == codes.Unavailable:
		s.once.Do(func() { s.m.failed(s.addr, s.ClientStream.Trailer()) })
	}
	return err
}

func (s *memberStream) SendMsg(msg any) error {
	err := s.ClientStream.SendMsg(msg)
	switch {
	case err == nil:
	case stalled(s.ctx):
		s.once.Do(func() { s.m.failed(s.addr, nil) })
	case !errors.Is(err, context.Canceled) && status.Code(err) == codes.Unavailable:
		s.once.Do(func() { s.m.failed(s.addr, nil) })
	}
	return err
}

// Close closes every member connection.
func (m *MemberConn) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	for _, cc := range m.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}
