package gatewayserver_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --raft-config FILE is NoKV's documented way to start the raft gateway: an
// alias of --backend raft --config FILE, with --pd-addr (and the environment)
// still overriding the file.
func TestRaftConfigAlias(t *testing.T) {
	cluster := filepath.Join("..", "..", "..", "raft_config.example.json")
	data, err := os.ReadFile(cluster)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.json")
	if err := os.WriteFile(other, data, 0o644); err != nil {
		t.Fatal(err)
	}

	cfg, err := resolve(t, []string{"--raft-config", cluster}, nil)
	if err != nil || cfg.Backend != "raft" || cfg.Config != cluster || cfg.PDAddr != "127.0.0.1:2379" || cfg.MaxRetries != 8 {
		t.Fatalf("--raft-config: %+v, %v", cfg, err)
	}
	cfg, err = resolve(t, nil, map[string]string{"NOKV_GATEWAY_RAFT_CONFIG": cluster, "NOKV_GATEWAY_SCOPE": "docker"})
	if err != nil || cfg.Backend != "raft" || cfg.PDAddr != "nokv-pd:2379" {
		t.Fatalf("NOKV_GATEWAY_RAFT_CONFIG with the docker scope: %+v, %v", cfg, err)
	}
	cfg, err = resolve(t, []string{"--raft-config", cluster, "--pd-addr", "127.0.0.1:12379"}, nil)
	if err != nil || cfg.Backend != "raft" || cfg.PDAddr != "127.0.0.1:12379" {
		t.Fatalf("--pd-addr over --raft-config: %+v, %v", cfg, err)
	}
	cfg, err = resolve(t, []string{"--raft-config", cluster}, map[string]string{"NOKV_GATEWAY_PD_ADDR": "127.0.0.1:22379"})
	if err != nil || cfg.PDAddr != "127.0.0.1:22379" {
		t.Fatalf("NOKV_GATEWAY_PD_ADDR over --raft-config: %+v, %v", cfg, err)
	}
	// The same file named twice, and --backend raft besides, are fine.
	cfg, err = resolve(t, []string{"--raft-config", cluster, "--config", cluster, "--backend", "raft"}, nil)
	if err != nil || cfg.Backend != "raft" {
		t.Fatalf("--raft-config with the same --config and --backend raft: %+v, %v", cfg, err)
	}

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--raft-config", cluster, "--backend", "embedded"}, nil, `backend: "embedded": --raft-config selects the raft backend`},
		{[]string{"--raft-config", cluster}, map[string]string{"NOKV_GATEWAY_BACKEND": "embedded"}, "--raft-config selects the raft backend"},
		{[]string{"--raft-config", cluster, "--config", other}, nil, "raft-config:"},
		{[]string{"--raft-config", "/nonexistent/raft_config.json"}, nil, "/nonexistent/raft_config.json"},
	} {
		if _, err := resolve(t, tc.args, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}
