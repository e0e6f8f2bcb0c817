package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

// `nokv-pd health` resolves PD's address from the same settings PD takes
// (here the environment, with a wildcard host dialled as loopback) and exits
// 0 when PD answers, 1 when nothing does.
func TestHealth(t *testing.T) {
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"health", "--addr", addr, "--timeout", "1s"}, map[string]string{}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "nokv-pd health: "+addr) {
		t.Fatalf("health with no PD: code %d, stderr %q; want 1 naming %s", code, stderr.String(), addr)
	}

	startPD(t, t.TempDir(), addr)
	stdout.Reset()
	stderr.Reset()
	env := map[string]string{"NOKV_PD_ADDR": "0.0.0.0:" + port}
	if code := run([]string{"health"}, env, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ok: nokv-pd at 127.0.0.1:"+port+" knows 3 stores") {
		t.Fatalf("health: code %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"health", "--help"}, env, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "Usage: nokv-pd health") ||
		!strings.Contains(stdout.String(), "-timeout") {
		t.Fatalf("health --help: code %d, stdout %q", code, stdout.String())
	}
}
