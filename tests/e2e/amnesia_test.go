package e2e_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/nokv/nokv/api/metapb"
	"github.com/nokv/nokv/api/storepb"
	"github.com/nokv/nokv/tests/cluster"
)

// waitExit waits for a process that is expected to stop on its own and
// returns its exit code and log.
func (c *procCluster) waitExit(name string, timeout time.Duration) (int, string) {
	c.t.Helper()
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if !p.Wait(timeout) {
		p.Kill()
		c.t.Fatalf("%s still running after %v\n%s", name, timeout, p.Log)
	}
	return p.ExitCode(), p.Log.String()
}

// TestWipedStoreProcessIsRefusedAndReplaced: with the real binaries, a
// store whose workdir was wiped and that is started with its usual command
// line exits non-zero with the refusal; the operator removes it with
// nokv-config and starts a node with nokv-store --join, which PD fills by
// snapshot; every acknowledged write is readable, also with another
// original store down.
func TestWipedStoreProcessIsRefusedAndReplaced(t *testing.T) {
	c := startProcCluster(t)
	configBin := filepath.Join(t.TempDir(), "nokv-config")
	if out, err := exec.Command("go", "build", "-o", configBin, "../../services/tools/cmd/nokv-config").CombinedOutput(); err != nil {
		t.Fatalf("build nokv-config: %v\n%s", err, out)
	}
	r := newRouter(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	want := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("%c-key-%02d", 'a'+i%26, i), fmt.Sprintf("v%d", i)
		cluster.Eventually(t, 30*time.Second, func() error { return r.put(ctx, k, v) })
		want[k] = v
	}

	c.kill9("store-1")
	if err := os.RemoveAll(filepath.Join(c.dir, "store-1")); err != nil {
		t.Fatal(err)
	}
	c.startStore(1)
	code, log := c.waitExit("store-1", 60*time.Second)
	if code == 0 || !strings.Contains(log, "store 1 was already started with data") || !strings.Contains(log, "nokv-config store remove 1") {
		t.Fatalf("wiped store 1 exited with %d; log:\n%s", code, log)
	}

	var out []byte
	cluster.Eventually(t, 30*time.Second, func() error {
		var err error
		out, err = exec.Command(configBin, "store", "remove", "--pd-addr", c.pdAddr, "1").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if !strings.Contains(string(out), "store 1 removed") {
		t.Fatalf("nokv-config store remove: %s", out)
	}

	addr := c.reserve("store-join")
	c.start("store-join", filepath.Join(c.bin, "nokv-store"), "--join", "--pd-addr", c.pdAddr, "--addr", addr,
		"--workdir", filepath.Join(c.dir, "store-join"), "--raft-tick-interval", "50ms", "--heartbeat-interval", "500ms")
	t.Cleanup(func() { c.stop("store-join") })

	var newID uint64
	cluster.Eventually(t, 30*time.Second, func() error {
		stores, err := r.pd.GetAllStores(ctx)
		if err != nil {
			return err
		}
		for _, st := range stores {
			if st.GetAddress() == addr {
				newID = st.GetId()
				return nil
			}
		}
		return errors.New("the joining store is not registered yet")
	})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	r.stores[newID] = storepb.NewStoreClient(cc)
	delete(r.stores, 1)

	for _, region := range []uint64{1, 2} {
		cluster.Eventually(t, 90*time.Second, func() error {
			reg, _, err := r.pd.GetRegionByID(ctx, region)
			if err != nil {
				return err
			}
			var voters []uint64
			for _, p := range reg.GetPeers() {
				if p.GetRole() == metapb.PeerRole_VOTER {
					voters = append(voters, p.GetStoreId())
				}
			}
			slices.Sort(voters)
			if !slices.Equal(voters, []uint64{2, 3, newID}) {
				return fmt.Errorf("region %d voters on stores %v, want [2 3 %d]", region, voters, newID)
			}
			return nil
		})
	}
	check := func() {
		t.Helper()
		for k, v := range want {
			var got string
			var found bool
			cluster.Eventually(t, 30*time.Second, func() error {
				var err error
				got, found, err = r.get(ctx, k)
				return err
			})
			if !found || got != v {
				t.Fatalf("%s reads %q (found %v), want %q", k, got, found, v)
			}
		}
	}
	check()
	c.kill9("store-2")
	delete(r.stores, 2)
	r.pd.Cache().InvalidateRegion(1)
	r.pd.Cache().InvalidateRegion(2)
	check()
}
