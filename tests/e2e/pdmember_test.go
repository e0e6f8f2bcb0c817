package e2e_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nokv/nokv/pkg/pdclient"
	"github.com/nokv/nokv/tests/internal/procs"
)

// pdMember is a row of `nokv-config pd member list --format json`.
type pdMember struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peer_urls"`
	Started  bool     `json:"started"`
	PDLeader bool     `json:"pd_leader"`
}

// nokvConfig runs nokv-config with args and returns its output.
func (c *procCluster) nokvConfig(args ...string) (string, error) {
	out, err := exec.Command(filepath.Join(c.bin, "nokv-config"), args...).CombinedOutput()
	return string(out), err
}

// members lists the PD group through nokv-config, asking the given members.
func (c *procCluster) members(t *testing.T, addrs string) []pdMember {
	t.Helper()
	var ms []pdMember
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := c.nokvConfig("pd", "member", "list", "--pd-addr", addrs, "--format", "json")
		if err == nil {
			if err := json.Unmarshal([]byte(out), &ms); err != nil {
				t.Fatalf("pd member list: %v\n%s", err, out)
			}
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("pd member list: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitMembers waits until the group lists exactly the started members
// names, one of them the PD leader.
func (c *procCluster) waitMembers(t *testing.T, addrs string, names ...string) []pdMember {
	t.Helper()
	slices.Sort(names)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ms := c.members(t, addrs)
		var got []string
		leaders := 0
		for _, m := range ms {
			if m.Started {
				got = append(got, m.Name)
			} else {
				got = append(got, "(not started)")
			}
			if m.PDLeader {
				leaders++
			}
		}
		slices.Sort(got)
		if slices.Equal(got, names) && leaders == 1 {
			return ms
		}
		if time.Now().After(deadline) {
			t.Fatalf("members %v (%d PD leaders), want %v with one leader", got, leaders, names)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// memberOp runs `pd member add|remove` until etcd accepts it: it refuses
// to add a voter until the members it counts on have been connected for
// its health interval (5 s).
func (c *procCluster) memberOp(t *testing.T, addrs string, op, arg string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := c.nokvConfig("pd", "member", op, "--pd-addr", addrs, arg)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("pd member %s %s: %v\n%s", op, arg, err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestPDGroupMembershipWithNokvConfig changes a running PD group of real
// processes with nokv-config alone: a fourth member is added and started
// with --join, a follower is removed, and a dead follower whose disk was
// wiped is replaced (removed, added again, started with --join). One
// client takes timestamps through everything and they only increase; the
// stores keep taking writes.
func TestPDGroupMembershipWithNokvConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts eight processes")
	}
	c := startProcClusterPD(t, 3)
	r := newRouter(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := r.put(ctx, "warmup", "1"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("cluster never took a write: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// pd-4's addresses, and a cluster file that lists it (the others keep
	// theirs: clients skip a member they do not know).
	addr4, peer4 := c.reserve("pd-4"), c.reserve("pd-4-peer")
	var file map[string]any
	data, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	pd := file["pd"].(map[string]any)
	entries := map[string]any{"pd-4": map[string]any{"name": "pd-4", "addr": addr4, "peer_url": "http://" + peer4}}
	for _, m := range pd["members"].([]any) {
		entries[m.(map[string]any)["name"].(string)] = m
	}
	// writeFile writes a cluster file whose pd.members are names: a member
	// joining with --join must list exactly the group's members after its
	// addition (etcd compares them with the running group).
	writeFile := func(path string, names ...string) {
		t.Helper()
		var ms []any
		for _, n := range names {
			ms = append(ms, entries[n])
		}
		pd["members"] = ms
		data, err := json.MarshalIndent(file, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file4 := filepath.Join(c.dir, "cluster-4.json")
	writeFile(file4, "pd-1", "pd-2", "pd-3", "pd-4")
	all := c.pdAddr + "," + addr4

	mc, err := pdclient.Dial(all)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	tsoPD, err := pdclient.New(mc, pdclient.Options{MaxRetries: 50, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tsoPD.Close()
	watch := &tsoWatch{}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); watch.run(loadCtx, tsoPD) }()
	defer wg.Wait()
	defer stopLoad()

	c.waitMembers(t, c.pdAddr, "pd-1", "pd-2", "pd-3")

	// 1. Add a fourth member.
	out := c.memberOp(t, c.pdAddr, "add", "http://"+peer4)
	t.Logf("pd member add:\n%s", out)
	c.waitMembers(t, all, "pd-1", "pd-2", "pd-3", "(not started)")
	c.pdNames, c.pdAddrs = append(c.pdNames, "pd-4"), append(c.pdAddrs, addr4)
	c.release("pd-4-peer")
	c.start("pd-4", filepath.Join(c.bin, "nokv-pd"), "--config", file4, "--name", "pd-4", "--join",
		"--store-down-after", "3s", "--election-timeout", "500ms", "--leader-lease", "2s")
	ms := c.waitMembers(t, all, "pd-1", "pd-2", "pd-3", "pd-4")

	// 2. Remove a follower.
	lead := ""
	for _, m := range ms {
		if m.PDLeader {
			lead = m.Name
		}
	}
	var followers []string
	for _, n := range []string{"pd-1", "pd-2", "pd-3"} {
		if n != lead {
			followers = append(followers, n)
		}
	}
	gone, wiped := followers[0], followers[1]
	out = c.memberOp(t, all, "remove", gone)
	t.Logf("pd member remove %s:\n%s", gone, out)
	// The removed member stops by itself, saying why.
	if code, log := c.waitExit(gone, 30*time.Second); code == 0 || !strings.Contains(log, "removed from the PD group") {
		t.Fatalf("removed member %s exited with %d:\n%s", gone, code, procs.Tail(log, 2000))
	}
	rest := []string{lead, wiped, "pd-4"}
	c.waitMembers(t, all, rest...)

	// 3. A follower dies and loses its disk: it is replaced, not restarted
	// as it was.
	c.kill9(wiped)
	if err := os.RemoveAll(filepath.Join(c.dir, "pd", wiped)); err != nil {
		t.Fatal(err)
	}
	c.memberOp(t, all, "remove", wiped)
	c.waitMembers(t, all, lead, "pd-4")
	c.memberOp(t, all, "add", entries[wiped].(map[string]any)["peer_url"].(string))
	rejoin := filepath.Join(c.dir, "cluster-rejoin.json")
	writeFile(rejoin, lead, "pd-4", wiped)
	c.start(wiped, filepath.Join(c.bin, "nokv-pd"), "--config", rejoin, "--name", wiped, "--join",
		"--store-down-after", "3s", "--election-timeout", "500ms", "--leader-lease", "2s")
	c.waitMembers(t, all, lead, "pd-4", wiped)
	t.Logf("%s lost its disk and was replaced", wiped)

	// The replaced member must be part of a working majority: stop pd-4.
	c.kill9("pd-4")
	since := time.Now()
	for {
		_, _, n0, _ := watch.snapshot()
		time.Sleep(500 * time.Millisecond)
		if _, _, n1, _ := watch.snapshot(); n1 > n0 {
			break
		}
		if time.Since(since) > 30*time.Second {
			t.Fatal("no timestamp with the replaced member and the leader as the majority")
		}
	}
	if err := r.put(ctx, "after-membership", "1"); err != nil {
		t.Fatalf("write after the membership changes: %v", err)
	}
	stopLoad()
	wg.Wait()
	last, gap, n, ferr := watch.snapshot()
	if ferr != nil {
		t.Fatal(ferr)
	}
	if n == 0 || last == 0 {
		t.Fatal("no timestamp watched")
	}
	t.Logf("%d timestamps through the membership changes, all increasing (longest gap %v)", n, gap)
}
