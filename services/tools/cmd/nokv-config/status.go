package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/pkg/config"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nokv/nokv/pkg/pdclient"
)

// pdMemberStatus is one PD member as status found it.
type pdMemberStatus struct {
	Addr string `json:"addr"`
	// Role is leader, follower or unreachable.
	Role string `json:"role"`
	// Leader is the leader a follower names; Error why a member did not
	// answer.
	Leader string `json:"leader,omitempty"`
	Error  string `json:"error,omitempty"`
}

// pdMembers asks each member directly whether it leads: the leader
// answers, a follower refuses naming the leader (nokv-pd-leader trailer).
func pdMembers(ctx context.Context, addrs []string) []pdMemberStatus {
	out := make([]pdMemberStatus, len(addrs))
	for i, a := range addrs {
		out[i] = pdMemberStatus{Addr: a, Role: "unreachable"}
		cc, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		var trailer metadata.MD
		_, err = pdpb.NewPDClient(cc).GetClusterInfo(ctx, &pdpb.GetClusterInfoRequest{}, grpc.Trailer(&trailer))
		cc.Close()
		switch {
		case err == nil:
			out[i].Role = "leader"
		case strings.Contains(grpcstatus.Convert(err).Message(), "not the leader"):
			out[i].Role = "follower"
			if v := trailer.Get("nokv-pd-leader"); len(v) > 0 {
				out[i].Leader = v[0]
			}
		default:
			out[i].Error = grpcstatus.Convert(err).Message()
		}
	}
	return out
}

// status is what `nokv-config status` reports, as PD sees the cluster.
type status struct {
	PD string `json:"pd"`
	// PDMembers are the members of a PD group and their roles (only when
	// PD's address lists several).
	PDMembers []pdMemberStatus `json:"pd_members,omitempty"`
	// TSO is a fresh timestamp: physical milliseconds << 18 | logical.
	TSO     uint64 `json:"tso"`
	TSOTime string `json:"tso_time"`
	// GCSafePoint is a timestamp; versions older than it may be collected.
	GCSafePoint     uint64         `json:"gc_safe_point"`
	GCSafePointTime string         `json:"gc_safe_point_time,omitempty"`
	Stores          []storeStatus  `json:"stores"`
	Regions         []regionStatus `json:"regions"`
	// Ready: every store holding a peer of a region is UP and has sent a
	// heartbeat since PD started, and every region has a leader.
	Ready    bool     `json:"ready"`
	Problems []string `json:"problems,omitempty"`
}

type storeStatus struct {
	ID      uint64 `json:"id"`
	Address string `json:"address"`
	// State is PD's: UP, DOWN (silent for store_down_after) or TOMBSTONE.
	State         string `json:"state"`
	LastHeartbeat string `json:"last_heartbeat,omitempty"`
	// Reported says whether the store has sent a heartbeat since PD
	// started; the counts and sizes below come from its last one.
	Reported  bool   `json:"reported"`
	Regions   uint32 `json:"regions"`
	Leaders   uint32 `json:"leaders"`
	Capacity  uint64 `json:"capacity"`
	UsedSize  uint64 `json:"used_size"`
	Available uint64 `json:"available"`

	lastHeartbeat time.Time
}

type peerJSON struct {
	StoreID uint64 `json:"store_id"`
	PeerID  uint64 `json:"peer_id"`
	Role    string `json:"role,omitempty"`
}

type regionStatus struct {
	ID       uint64       `json:"id"`
	StartKey config.Key   `json:"start_key"`
	EndKey   config.Key   `json:"end_key"`
	Epoch    config.Epoch `json:"epoch"`
	// Leader is the leader PD last heard of; absent if none.
	Leader          *peerJSON  `json:"leader,omitempty"`
	Peers           []peerJSON `json:"peers"`
	DownPeers       []peerJSON `json:"down_peers,omitempty"`
	PendingPeers    []peerJSON `json:"pending_peers,omitempty"`
	ApproximateSize uint64     `json:"approximate_size"`
	ApproximateKeys uint64     `json:"approximate_keys"`
}

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", "[--pd-addr ADDR | --config FILE [--scope host|docker]] [--format table|json] [--wait DURATION]")
	pdAddr := fs.String("pd-addr", "", "PD `address` (default: pd.addr of --config if given, else 127.0.0.1:2379)")
	path := fs.String("config", "", "cluster `file` to take PD's address from")
	scope := scopeFlag(fs)
	format := formatFlag(fs, "table", "json")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on each round of requests to PD")
	wait := fs.Duration("wait", 0, "wait up to this `duration` until the cluster is ready (every store up, every region led); exit 1 if it is not")
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	addr := *pdAddr
	if addr == "" {
		addr = "127.0.0.1:2379"
		if *path != "" {
			c, ok := load("status", *path, stderr)
			if !ok {
				return 1
			}
			addr = c.PDAddr(*scope)
		}
	}
	// A PD group's address lists its members; calls follow the leader.
	conn, err := pdclient.Dial(addr)
	if err != nil {
		fmt.Fprintf(stderr, "%s status: PD at %s: %v\n", name, addr, err)
		return 1
	}
	defer conn.Close()
	pd := pdpb.NewPDClient(conn)

	deadline := time.Now().Add(*wait)
	var st *status
	for {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		st, err = fetchStatus(ctx, pd, addr, *wait > 0)
		cancel()
		if *wait <= 0 || (err == nil && st.Ready) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s status: PD at %s: %v\n", name, addr, err)
		return 1
	}
	if members := conn.Members(); len(members) > 1 {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		st.PDMembers = pdMembers(ctx, members)
		cancel()
	}
	if format.v == "json" {
		if code := writeJSON(stdout, st); code != 0 {
			return code
		}
	} else if code := st.writeTable(stdout, stderr); code != 0 {
		return code
	}
	if *wait > 0 && !st.Ready {
		fmt.Fprintf(stderr, "%s status: not ready after %v: %s\n", name, *wait, strings.Join(st.Problems, "; "))
		return 1
	}
	return 0
}

// fetchStatus asks PD for everything status shows. With waitForPD it waits
// for PD to accept connections (within ctx) instead of failing at once.
func fetchStatus(ctx context.Context, pd pdpb.PDClient, addr string, waitForPD bool) (*status, error) {
	opts := []grpc.CallOption{grpc.WaitForReady(waitForPD)}
	st := &status{PD: addr}

	stores, err := pd.GetAllStores(ctx, &pdpb.GetAllStoresRequest{}, opts...)
	if err := check("GetAllStores", stores.GetHeader(), err); err != nil {
		return nil, err
	}
	stats := make(map[uint64]*pdpb.StoreStats)
	for _, s := range stores.GetStats() {
		stats[s.GetStoreId()] = s
	}
	for _, s := range stores.GetStores() {
		ss := storeStatus{ID: s.GetId(), Address: s.GetAddress(), State: s.GetState().String()}
		if ms := s.GetLastHeartbeatMs(); ms > 0 {
			ss.lastHeartbeat = time.UnixMilli(ms).UTC()
			ss.LastHeartbeat = ss.lastHeartbeat.Format(time.RFC3339Nano)
		}
		if h := stats[s.GetId()]; h != nil {
			ss.Reported = true
			ss.Regions, ss.Leaders = h.GetRegionCount(), h.GetLeaderCount()
			ss.Capacity, ss.UsedSize, ss.Available = h.GetCapacity(), h.GetUsedSize(), h.GetAvailable()
		}
		st.Stores = append(st.Stores, ss)
	}

	regions, err := pd.ScanRegions(ctx, &pdpb.ScanRegionsRequest{}, opts...)
	if err := check("ScanRegions", regions.GetHeader(), err); err != nil {
		return nil, err
	}
	for _, r := range regions.GetRegions() {
		m := r.GetRegion()
		rs := regionStatus{
			ID: m.GetId(), StartKey: m.GetStartKey(), EndKey: m.GetEndKey(),
			Epoch:           config.Epoch{Version: m.GetRegionEpoch().GetVersion(), ConfVersion: m.GetRegionEpoch().GetConfVer()},
			Peers:           peers(m.GetPeers()),
			PendingPeers:    peers(r.GetPendingPeers()),
			ApproximateSize: r.GetApproximateSize(),
			ApproximateKeys: r.GetApproximateKeys(),
		}
		if rs.StartKey == nil {
			rs.StartKey = config.Key{}
		}
		if rs.EndKey == nil {
			rs.EndKey = config.Key{}
		}
		for _, d := range r.GetDownPeers() {
			rs.DownPeers = append(rs.DownPeers, peerOf(d.GetPeer()))
		}
		if l := r.GetLeader(); l != nil {
			p := peerOf(l)
			rs.Leader = &p
		} else {
			st.Problems = append(st.Problems, fmt.Sprintf("region %d has no leader", rs.ID))
		}
		st.Regions = append(st.Regions, rs)
	}

	// A store matters while it holds a peer of some region: one that is DOWN
	// after its regions moved elsewhere (a replaced store) is shown, not
	// counted against readiness.
	holds := make(map[uint64]int)
	for _, r := range st.Regions {
		for _, p := range r.Peers {
			holds[p.StoreID]++
		}
	}
	var storeProblems []string
	for _, ss := range st.Stores {
		switch {
		case ss.State == metapb.StoreState_TOMBSTONE.String():
		case holds[ss.ID] == 0 && ss.State != metapb.StoreState_UP.String():
		case ss.State != metapb.StoreState_UP.String():
			storeProblems = append(storeProblems, fmt.Sprintf("store %d is %s", ss.ID, ss.State))
		case !ss.Reported:
			storeProblems = append(storeProblems, fmt.Sprintf("store %d has sent no heartbeat since PD started", ss.ID))
		}
	}
	st.Problems = append(storeProblems, st.Problems...)

	gc, err := pd.GetGCSafePoint(ctx, &pdpb.GetGCSafePointRequest{}, opts...)
	if err := check("GetGCSafePoint", gc.GetHeader(), err); err != nil {
		return nil, err
	}
	st.GCSafePoint = gc.GetSafePoint()
	if st.GCSafePoint > 0 {
		st.GCSafePointTime = tsTime(st.GCSafePoint)
	}

	if st.TSO, err = timestamp(ctx, pd, opts); err != nil {
		return nil, err
	}
	st.TSOTime = tsTime(st.TSO)
	if st.Stores == nil {
		st.Stores = []storeStatus{}
	}
	if st.Regions == nil {
		st.Regions = []regionStatus{}
	}
	st.Ready = len(st.Problems) == 0
	return st, nil
}

func check(rpc string, h *pdpb.ResponseHeader, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", rpc, err)
	}
	if e := h.GetError(); e != nil {
		return fmt.Errorf("%s: %s: %s", rpc, e.GetType(), e.GetMessage())
	}
	return nil
}

func timestamp(ctx context.Context, pd pdpb.PDClient, opts []grpc.CallOption) (uint64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pd.Tso(ctx, opts...)
	if err != nil {
		return 0, fmt.Errorf("Tso: %w", err)
	}
	if err := stream.Send(&pdpb.TsoRequest{Count: 1}); err != nil {
		return 0, fmt.Errorf("Tso: %w", err)
	}
	resp, err := stream.Recv()
	if err := check("Tso", resp.GetHeader(), err); err != nil {
		return 0, err
	}
	_ = stream.CloseSend()
	return resp.GetFirst(), nil
}

// tsTime shows a timestamp's physical part (milliseconds << 18) as UTC time.
func tsTime(ts uint64) string {
	return time.UnixMilli(int64(ts >> 18)).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func peerOf(p *metapb.Peer) peerJSON {
	role := "voter"
	switch p.GetRole() {
	case metapb.PeerRole_LEARNER:
		role = "learner"
	case metapb.PeerRole_INCOMING_VOTER:
		role = "incoming-voter" // joint configuration
	case metapb.PeerRole_DEMOTING_VOTER:
		role = "demoting-voter"
	}
	return peerJSON{StoreID: p.GetStoreId(), PeerID: p.GetId(), Role: role}
}

func peers(ps []*metapb.Peer) []peerJSON {
	if len(ps) == 0 {
		return nil
	}
	out := make([]peerJSON, len(ps))
	for i, p := range ps {
		out[i] = peerOf(p)
	}
	return out
}

func (st *status) writeTable(stdout, stderr io.Writer) int {
	gc := "0 (none yet)"
	if st.GCSafePoint > 0 {
		gc = fmt.Sprintf("%d (%s)", st.GCSafePoint, st.GCSafePointTime)
	}
	fmt.Fprintf(stdout, "PD %s   TSO %d (%s)   GC safe point %s\n\n", st.PD, st.TSO, st.TSOTime, gc)
	if len(st.PDMembers) > 0 {
		var parts []string
		for _, m := range st.PDMembers {
			p := m.Addr + " " + m.Role
			if m.Error != "" {
				p += " (" + m.Error + ")"
			}
			parts = append(parts, p)
		}
		fmt.Fprintf(stdout, "PD members: %s\n\n", strings.Join(parts, ", "))
	}

	now := time.UnixMilli(int64(st.TSO >> 18))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STORE\tSTATE\tADDRESS\tREGIONS\tLEADERS\tUSED\tAVAILABLE\tCAPACITY\tLAST HEARTBEAT")
	for _, s := range st.Stores {
		hb := "never"
		if !s.lastHeartbeat.IsZero() {
			hb = now.Sub(s.lastHeartbeat).Round(100*time.Millisecond).String() + " ago"
		}
		if !s.Reported {
			fmt.Fprintf(tw, "%d\t%s\t%s\t-\t-\t-\t-\t-\t%s\n", s.ID, s.State, s.Address, hb)
			continue
		}
		// A store that reports no capacity (NoKV's do not yet) shows "-".
		avail, capacity := "-", "-"
		if s.Capacity > 0 {
			avail, capacity = bytesString(s.Available), bytesString(s.Capacity)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.State, s.Address, s.Regions, s.Leaders,
			bytesString(s.UsedSize), avail, capacity, hb)
	}
	if code := flush(tw, stderr); code != 0 {
		return code
	}
	fmt.Fprintln(stdout)

	tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tSTART\tEND\tEPOCH (ver/conf)\tLEADER (store:peer)\tPEERS (store:peer)\tSIZE\tKEYS")
	for _, r := range st.Regions {
		leader := "none"
		if r.Leader != nil {
			leader = fmt.Sprintf("%d:%d", r.Leader.StoreID, r.Leader.PeerID)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%s\t%s\t%s\t%d\n", r.ID, startKey(r.StartKey), endKey(r.EndKey),
			r.Epoch.Version, r.Epoch.ConfVersion, leader, r.peerList(), bytesString(r.ApproximateSize), r.ApproximateKeys)
	}
	if code := flush(tw, stderr); code != 0 {
		return code
	}
	fmt.Fprintln(stdout)
	if st.Ready {
		fmt.Fprintln(stdout, "ready: every store holding regions is up and every region has a leader")
	} else {
		fmt.Fprintf(stdout, "not ready: %s\n", strings.Join(st.Problems, "; "))
	}
	return 0
}

// peerList shows the peers as store:peer, learners marked (learner), down
// peers (down) and pending ones (pending).
func (r regionStatus) peerList() string {
	parts := make([]string, len(r.Peers))
	for i, p := range r.Peers {
		s := fmt.Sprintf("%d:%d", p.StoreID, p.PeerID)
		if p.Role != "voter" && p.Role != "" {
			s += "(" + p.Role + ")"
		}
		match := func(q peerJSON) bool { return q.PeerID == p.PeerID }
		if slices.ContainsFunc(r.DownPeers, match) {
			s += "(down)"
		}
		if slices.ContainsFunc(r.PendingPeers, match) {
			s += "(pending)"
		}
		parts[i] = s
	}
	return strings.Join(parts, ",")
}

func bytesString(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
