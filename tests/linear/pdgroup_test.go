package linear

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/nokv/nokv/api/pdpb"
	"github.com/nokv/nokv/tests/cluster"
)

// The PD group under faults: three nokv-pd members, each behind a proxy
// for its etcd peer URL and one for its gRPC address, so the test can cut
// the leader off from the other members or from the stores and gateways.
// Besides the Redis workload (checked with porcupine as in the other
// scenarios), an auditor asks every member directly, all the time, for
// timestamps and ids, and checks every answer any member ever gave.

// grant is one answer of PD: [first, first+count), received between call
// and ret (nanoseconds since the audit started).
type grant struct {
	member    string
	first     uint64
	count     uint64
	call, ret int64
}

// pdAudit asks each member directly (bypassing the proxies, so an isolated
// member is asked too) for timestamps and ids.
type pdAudit struct {
	start time.Time
	stop  atomic.Bool
	wg    sync.WaitGroup

	mu  sync.Mutex
	ts  []grant
	ids []grant
}

func (a *pdAudit) now() int64 { return int64(time.Since(a.start)) }

func startPDAudit(t *testing.T, c *procCluster) *pdAudit {
	a := &pdAudit{start: time.Now()}
	for _, name := range c.pdNames {
		cc, err := grpc.NewClient(c.pdListen[name], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		pd := pdpb.NewPDClient(cc)
		a.wg.Add(2)
		go func() { defer a.wg.Done(); a.tsoLoop(name, pd) }()
		go func() { defer a.wg.Done(); a.idLoop(name, pd) }()
		t.Cleanup(func() { a.halt(); cc.Close() })
	}
	return a
}

func (a *pdAudit) halt() {
	a.stop.Store(true)
	a.wg.Wait()
}

// tsoLoop keeps a TSO stream open to one member and asks for 1–3
// timestamps at a time; an answer that does not come within 3 s ends the
// stream (its outcome is unknown and not recorded).
func (a *pdAudit) tsoLoop(member string, pd pdpb.PDClient) {
	rng := rand.New(rand.NewPCG(uint64(len(member)), uint64(time.Now().UnixNano())))
	for !a.stop.Load() {
		ctx, cancel := context.WithCancel(context.Background())
		stream, err := pd.Tso(ctx)
		for err == nil && !a.stop.Load() {
			n := uint32(1 + rng.IntN(3))
			call := a.now()
			timer := time.AfterFunc(3*time.Second, cancel)
			if err = stream.Send(&pdpb.TsoRequest{Count: n}); err != nil {
				break
			}
			var resp *pdpb.TsoResponse
			resp, err = stream.Recv()
			timer.Stop()
			ret := a.now()
			if err != nil {
				break
			}
			if resp.GetHeader().GetError() != nil || resp.GetCount() != n {
				continue
			}
			a.mu.Lock()
			a.ts = append(a.ts, grant{member: member, first: resp.GetFirst(), count: uint64(n), call: call, ret: ret})
			a.mu.Unlock()
			time.Sleep(time.Millisecond)
		}
		cancel()
		time.Sleep(20 * time.Millisecond)
	}
}

// idLoop allocates 1–3 ids from one member every 20 ms.
func (a *pdAudit) idLoop(member string, pd pdpb.PDClient) {
	rng := rand.New(rand.NewPCG(uint64(len(member))+7, uint64(time.Now().UnixNano())))
	for !a.stop.Load() {
		n := uint32(1 + rng.IntN(3))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		call := a.now()
		resp, err := pd.AllocID(ctx, &pdpb.AllocIDRequest{Count: n})
		ret := a.now()
		cancel()
		if err == nil && resp.GetHeader().GetError() == nil && resp.GetCount() == n {
			a.mu.Lock()
			a.ids = append(a.ids, grant{member: member, first: resp.GetFirstId(), count: uint64(n), call: call, ret: ret})
			a.mu.Unlock()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check verifies every answer so far: no two grants overlap (a timestamp or
// an id handed out twice), and grants are in real-time order: one received
// before another was asked for is entirely below it. Two leaders serving
// at once would break the second even where they do not repeat a value.
func (a *pdAudit) check(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	ts, ids := slices.Clone(a.ts), slices.Clone(a.ids)
	a.mu.Unlock()
	for _, k := range []struct {
		what string
		gs   []grant
	}{{"timestamp", ts}, {"id", ids}} {
		if err := checkGrants(k.gs); err != nil {
			t.Errorf("%s grants: %v", k.what, err)
		}
		by := map[string]int{}
		for _, g := range k.gs {
			by[g.member]++
		}
		t.Logf("audit: %d %s grants checked (by member: %v)", len(k.gs), k.what, by)
	}
}

func checkGrants(gs []grant) error {
	if len(gs) == 0 {
		return fmt.Errorf("no grant at all")
	}
	byFirst := slices.Clone(gs)
	slices.SortFunc(byFirst, func(x, y grant) int { return cmp.Compare(x.first, y.first) })
	for i := 1; i < len(byFirst); i++ {
		p, g := byFirst[i-1], byFirst[i]
		if g.first < p.first+p.count {
			return fmt.Errorf("[%d, +%d) from %s overlaps [%d, +%d) from %s", g.first, g.count, g.member, p.first, p.count, p.member)
		}
	}
	byCall := slices.Clone(gs)
	slices.SortFunc(byCall, func(x, y grant) int { return cmp.Compare(x.call, y.call) })
	byRet := slices.Clone(gs)
	slices.SortFunc(byRet, func(x, y grant) int { return cmp.Compare(x.ret, y.ret) })
	// Sweep: before each grant's call, every grant returned earlier is
	// folded into the highest value handed out so far.
	var high uint64
	var highFrom grant
	j := 0
	for _, g := range byCall {
		for j < len(byRet) && byRet[j].ret < g.call {
			if end := byRet[j].first + byRet[j].count - 1; end > high {
				high, highFrom = end, byRet[j]
			}
			j++
		}
		if g.first <= high {
			return fmt.Errorf("%d from %s (asked at %v) is not above %d, received from %s at %v before it was asked for",
				g.first, g.member, time.Duration(g.call), high, highFrom.member, time.Duration(highFrom.ret))
		}
	}
	return nil
}

// TestAuditCatchesTwoLeaders: the checker rejects a timestamp below one
// already received, and a repeated id, and accepts concurrent grants.
func TestAuditCatchesTwoLeaders(t *testing.T) {
	ok := []grant{{first: 10, count: 2, call: 0, ret: 5}, {first: 8, count: 2, call: 1, ret: 6}, {first: 20, count: 1, call: 7, ret: 8}}
	if err := checkGrants(ok); err != nil {
		t.Fatalf("concurrent grants refused: %v", err)
	}
	stale := append(slices.Clone(ok), grant{member: "old", first: 15, count: 1, call: 9, ret: 10})
	if err := checkGrants(stale); err == nil || !strings.Contains(err.Error(), "not above 20") {
		t.Fatalf("a grant below one received earlier: %v", err)
	}
	dup := append(slices.Clone(ok), grant{member: "old", first: 11, count: 1, call: 2, ret: 3})
	if err := checkGrants(dup); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("an id handed out twice: %v", err)
	}
}

// pdServes reports whether member name serves (is the leader), asked
// directly; otherwise the leader it names (trailer nokv-pd-leader).
func (c *procCluster) pdServes(name string) (bool, string) {
	cc, err := grpc.NewClient(c.pdListen[name], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false, ""
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var trailer metadata.MD
	_, err = pdpb.NewPDClient(cc).GetClusterInfo(ctx, &pdpb.GetClusterInfoRequest{}, grpc.Trailer(&trailer))
	if err == nil {
		return true, ""
	}
	if v := trailer.Get("nokv-pd-leader"); len(v) > 0 {
		return false, v[0]
	}
	return false, ""
}

// pdLeaders returns the members that serve right now.
func (c *procCluster) pdLeaders() []string {
	var out []string
	for _, name := range c.pdNames {
		if ok, _ := c.pdServes(name); ok {
			out = append(out, name)
		}
	}
	return out
}

// waitPDLeader waits until exactly one member serves, other than skip, and
// returns it.
func (c *procCluster) waitPDLeader(skip string) string {
	c.t.Helper()
	var lead string
	cluster.Eventually(c.t, 30*time.Second, func() error {
		ls := c.pdLeaders()
		ls = slices.DeleteFunc(ls, func(n string) bool { return n == skip })
		if len(ls) != 1 {
			return fmt.Errorf("members serving (besides %q): %v", skip, ls)
		}
		lead = ls[0]
		return nil
	})
	return lead
}

// waitPDFollower waits until member name answers as a follower naming the
// member that leads right now: it rejoined the group and caught up with the
// election. That is usually leader, the member that led when the fault was
// healed, but under load (the 2 s lease renewed on a busy machine) the
// leadership may move again meanwhile; following the new leader is right.
func (c *procCluster) waitPDFollower(name, leader string) {
	c.t.Helper()
	var now string
	cluster.Eventually(c.t, 30*time.Second, func() error {
		serves, names := c.pdServes(name)
		if serves {
			return fmt.Errorf("%s serves (want it to follow)", name)
		}
		leads := c.pdLeaders()
		if len(leads) != 1 {
			return fmt.Errorf("%s names leader %q; members serving: %v", name, names, leads)
		}
		now = leads[0]
		if names != c.pdProxies[now].addr() {
			return fmt.Errorf("%s: names leader %q (want %s at %s)", name, names, now, c.pdProxies[now].addr())
		}
		return nil
	})
	if now != "" && now != leader {
		c.t.Logf("PD leadership moved from %s to %s while %s rejoined", leader, now, name)
	}
}

// isolatePD cuts member name off from the other members, both ways.
func (c *procCluster) isolatePD(name string) {
	for _, other := range c.pdNames {
		if other == name {
			continue
		}
		c.peerProxies[name].cut(other)
		c.peerProxies[other].cut(name)
	}
}

// cutPDFromClients cuts member name's gRPC address off from the stores and
// gateways (the members and the test still reach it).
func (c *procCluster) cutPDFromClients(name string) {
	for id := uint64(1); id <= 3; id++ {
		c.pdProxies[name].cut(storeName(id))
	}
	for i := range c.gwAddrs {
		c.pdProxies[name].cut(gatewayName(i))
	}
}

func (c *procCluster) healPD() {
	for _, name := range c.pdNames {
		c.pdProxies[name].heal()
		c.peerProxies[name].heal()
	}
}

// pdNemeses are the faults of the PD group. Each checks, while it lasts and
// after, what the group must do; the auditor checks the grants.
var pdNemeses = []nemesis{
	{
		// The leader keeps its clients but loses the other members: once
		// its lease lapses it must refuse, and the majority elects a new
		// leader. Healed, it rejoins as a follower.
		name: "partition-pd-leader-from-members", hold: 4 * time.Second, available: true,
		inject: func(t *testing.T, c *procCluster, w *workload, cycle int) fault {
			old := c.waitPDLeader("")
			at := time.Now()
			c.isolatePD(old)
			t.Logf("PD leader %s cut off from the other members", old)
			lead := c.waitPDLeader(old)
			t.Logf("%s leads %v after the cut", lead, time.Since(at).Round(time.Millisecond))
			if serves, _ := c.pdServes(old); serves {
				t.Errorf("isolated member %s still serves while %s leads", old, lead)
			}
			return fault{heal: func() {
				c.healPD()
				c.waitPDFollower(old, lead)
				t.Logf("%s rejoined as a follower of %s", old, lead)
			}}
		},
	},
	{
		// The leader keeps the other members but loses the stores and
		// gateways. It stays the leader (followers do not forward), so
		// they stall until the cut heals; nothing may go wrong meanwhile.
		name: "partition-pd-leader-from-clients", hold: 4 * time.Second,
		inject: func(t *testing.T, c *procCluster, w *workload, cycle int) fault {
			lead := c.waitPDLeader("")
			c.cutPDFromClients(lead)
			t.Logf("PD leader %s cut off from the stores and gateways", lead)
			return fault{heal: func() {
				c.healPD()
				if now := c.waitPDLeader(""); now != lead {
					t.Errorf("leader changed from %s to %s though it kept its members", lead, now)
				}
			}}
		},
	},
	{
		name: "kill-pd-leader", hold: 4 * time.Second, available: true,
		inject: func(t *testing.T, c *procCluster, w *workload, cycle int) fault {
			old := c.waitPDLeader("")
			c.kill9(old)
			lead := c.waitPDLeader(old)
			t.Logf("kill -9 PD leader %s: %s leads", old, lead)
			return fault{heal: func() {
				c.startPDMember(old)
				c.waitPDFollower(old, lead)
			}}
		},
	},
	{
		// The leader hangs (SIGSTOP) with its connections open: requests
		// to it stall rather than fail. Its lease lapses and the others
		// elect a new leader; the stores' and gateways' pdclients give up
		// on a TSO request stalled past TSOOptions.StallTimeout (3 s) and
		// find the new leader, so writes go on being acknowledged.
		// Resumed, the old leader must not hand out anything under its
		// lapsed lease (the auditor checks) and rejoins as a follower.
		name: "stop-pd-leader", hold: 8 * time.Second, available: true,
		inject: func(t *testing.T, c *procCluster, w *workload, cycle int) fault {
			old := c.waitPDLeader("")
			at := time.Now()
			c.pause(old)
			t.Logf("SIGSTOP PD leader %s", old)
			lead := c.waitPDLeader(old)
			t.Logf("%s leads %v after the stop", lead, time.Since(at).Round(time.Millisecond))
			return fault{heal: func() {
				c.resume(old)
				t.Logf("SIGCONT %s after %v", old, time.Since(at).Round(time.Millisecond))
				c.waitPDFollower(old, lead)
				t.Logf("%s rejoined as a follower of %s", old, lead)
			}}
		},
	},
	{
		name: "restart-all-pd", hold: time.Second,
		inject: func(t *testing.T, c *procCluster, w *workload, cycle int) fault {
			for _, name := range c.pdNames {
				c.kill9(name)
			}
			t.Logf("kill -9 every PD member")
			return fault{heal: func() {
				c.startPD()
				t.Logf("all members restarted: %s leads", c.waitPDLeader(""))
			}}
		},
	},
}

// TestPDGroupUnderPartitions runs the Redis workload on three PD members,
// three stores and two gateways (real processes) while the PD leader is cut
// off from the other members, then from the stores and gateways, killed,
// stopped (SIGSTOP) and resumed, and every member killed and restarted. Each round's history is checked
// with porcupine, and every timestamp and id any member handed out to the
// auditor is checked for repeats and real-time order (see pdAudit.check).
func TestPDGroupUnderPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	c := startProcCluster(t, procOptions{pdMembers: 3})
	a := startPDAudit(t, c)
	for _, n := range pdNemeses {
		t.Run(n.name, func(t *testing.T) {
			runScenario(t, c, n)
			a.check(t)
		})
	}
	a.halt()
	a.check(t)
}
