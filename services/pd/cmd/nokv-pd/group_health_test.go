package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHealthOfAGroup: three nokv-pd processes from one cluster file with
// pd.members; `nokv-pd health` is ok on every member once one leads, and a
// follower's answer names the leader.
func TestHealthOfAGroup(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	bin, err := buildPD()
	if err != nil {
		t.Fatalf("build nokv-pd: %v", err)
	}
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]any
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var members []map[string]any
	var addrs []string
	for i := range 3 {
		addr, peer := freeAddr(t), freeAddr(t)
		addrs = append(addrs, addr)
		members = append(members, map[string]any{"name": "pd-" + string(rune('1'+i)), "addr": addr, "peer_url": "http://" + peer})
	}
	file["pd"] = map[string]any{"work_dir": dir, "members": members}
	data, _ = json.Marshal(file)
	path := filepath.Join(dir, "cluster.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		cmd := exec.Command(bin, "--config", path, "--name", m["name"].(string), "--election-timeout", "300ms", "--leader-lease", "1s")
		out := &strings.Builder{}
		cmd.Stderr = &lockedWriter{w: out}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
			if t.Failed() {
				t.Logf("%s:\n%s", m["name"], out)
			}
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leaders, followers := 0, 0
		var outs []string
		for _, a := range addrs {
			var stdout, stderr bytes.Buffer
			code := run([]string{"health", "--addr", a, "--timeout", "1s"}, map[string]string{}, &stdout, &stderr)
			switch {
			case code == 0 && strings.Contains(stdout.String(), "knows 3 stores"):
				leaders++
			case code == 0 && strings.Contains(stdout.String(), "follows the leader at 127.0.0.1:"):
				followers++
			}
			outs = append(outs, stdout.String()+stderr.String())
		}
		if leaders == 1 && followers == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("health of the group after 30s: %q", outs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
