package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// `nokv-redis health` takes the server's own settings (flags and environment),
// dials its address (a wildcard host as loopback), AUTHs when a password is
// set, and exits 0 only when PING and a read through the backend succeed.
func TestHealth(t *testing.T) {
	health := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"health"}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	addr := freeAddr(t)
	if out, err := health(nil, "--addr", addr, "--timeout", "1s"); err == nil || !strings.Contains(out, "nokv-redis health: "+addr) {
		t.Fatalf("health with no server: %v\n%s", err, out)
	}

	start(t, addr, "--workdir", t.TempDir(), "--requirepass", "s3cret")
	_, port, _ := net.SplitHostPort(addr)
	if out, err := health([]string{"NOKV_GATEWAY_ADDR=0.0.0.0:" + port, "NOKV_GATEWAY_REQUIREPASS=s3cret"}); err != nil ||
		!strings.HasPrefix(out, "ok: nokv-redis at 127.0.0.1:"+port) {
		t.Fatalf("health from the environment: %v\n%s", err, out)
	}
	if out, err := health(nil, "--addr", addr, "--requirepass", "s3cret", "--key", ""); err != nil {
		t.Fatalf("health, PING only: %v\n%s", err, out)
	}
	if out, err := health(nil, "--addr", addr); err == nil || !strings.Contains(out, "NOAUTH") {
		t.Fatalf("health without the password: %v\n%s", err, out)
	}
	if out, err := health(nil, "--addr", addr, "--requirepass", "wrong"); err == nil || !strings.Contains(out, "AUTH: ") {
		t.Fatalf("health with a wrong password: %v\n%s", err, out)
	}
}

// NoKV's documented way to start the raft gateway works on the binary:
// --raft-config selects the raft backend (here it then fails to reach the PD
// that --pd-addr names, which proves both).
func TestRaftConfigFlag(t *testing.T) {
	cmd := exec.Command(binary, "--raft-config", "../../../../raft_config.example.json", "--pd-addr", "127.0.0.1:1", "--addr", freeAddr(t))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "connect to the cluster through PD at 127.0.0.1:1") {
		t.Fatalf("--raft-config: %v\n%s", err, out)
	}
	if out, err := exec.Command(binary, "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "NOKV_GATEWAY_RAFT_CONFIG") {
		t.Fatalf("--help does not list --raft-config: %v\n%s", err, out)
	}
}
