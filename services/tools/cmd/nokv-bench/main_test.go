package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestPortsAreDistinctAndFree(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"ports", "5"}, &out, &errb); code != 0 {
		t.Fatalf("ports 5: exit %d: %s", code, errb.String())
	}
	seen := map[int]bool{}
	for _, f := range strings.Fields(out.String()) {
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 || p > 65535 {
			t.Fatalf("not a port: %q", f)
		}
		if seen[p] {
			t.Fatalf("port %d printed twice", p)
		}
		seen[p] = true
	}
	if len(seen) != 5 {
		t.Fatalf("got %d ports, want 5: %q", len(seen), out.String())
	}
}

func TestBadUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"redis"}, {"etcd", "--op", "scan"}, {"etcd", "-n", "0"}, {"ports", "x"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

// startEtcd runs a one-member etcd (Debian's etcd-server) on free ports.
func startEtcd(t *testing.T) string {
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (apt-get install etcd-server)")
	}
	var out bytes.Buffer
	if code := run([]string{"ports", "2"}, &out, &out); code != 0 {
		t.Fatalf("ports: %s", out.String())
	}
	p := strings.Fields(out.String())
	client, peer := "http://127.0.0.1:"+p[0], "http://127.0.0.1:"+p[1]
	cmd := exec.Command(bin, "--name", "one", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "one="+peer, "--initial-cluster-state", "new", "--logger", "zap", "--log-outputs", "stderr")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("etcd log:\n%s", logs.String())
		}
	})
	return "127.0.0.1:" + p[0]
}

// TestAgainstEtcd drives every workload against a real etcd and checks what
// it reports and what it did: incr's compare-and-swap loses no increment
// under contention.
func TestAgainstEtcd(t *testing.T) {
	ep := startEtcd(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out bytes.Buffer
		if run([]string{"etcd", "--endpoints", ep, "--op", "get", "-n", "1", "--clients", "1"}, &out, &out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd at %s did not answer a read: %s", ep, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct {
		op      string
		n       int
		clients string
	}{{"put", 300, "8"}, {"get", 300, "8"}, {"incr", 200, "8"}} {
		var out, errb bytes.Buffer
		args := []string{"etcd", "--endpoints", ep, "--op", tc.op, "-n", strconv.Itoa(tc.n), "--clients", tc.clients, "--keyspace", "50"}
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d: %s %s", tc.op, code, out.String(), errb.String())
		}
		line := out.String()
		for _, want := range []string{fmt.Sprintf("ops=%d ", tc.n), "errors=0 ", "rps=", "p50_ms=", "p99_ms="} {
			if !strings.Contains(line, want) {
				t.Errorf("%s: %q lacks %q", tc.op, line, want)
			}
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g, err := cli.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Kvs) != 1 || string(g.Kvs[0].Value) != "200" {
		t.Fatalf("counter after 200 increments from 8 clients: %v", g.Kvs)
	}
	k, err := cli.Get(ctx, "key:", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if k.Count < 1 || k.Count > 50 {
		t.Fatalf("put wrote %d keys of a keyspace of 50", k.Count)
	}
}
