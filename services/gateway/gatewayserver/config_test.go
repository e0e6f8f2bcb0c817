package gatewayserver_test

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

func resolve(t *testing.T, args []string, env map[string]string) (gatewayserver.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := gatewayserver.DefaultConfig()
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = map[string]string{}
	}
	return gatewayserver.Resolve(fs, config.EnvOptions{Prefix: gatewayserver.EnvPrefix, Environment: env})
}

func TestResolvePrecedence(t *testing.T) {
	cluster := filepath.Join("..", "..", "..", "raft_config.example.json")
	if _, err := os.Stat(cluster); err != nil {
		t.Fatalf("example cluster file: %v", err)
	}
	// Default.
	cfg, err := resolve(t, nil, nil)
	if err != nil || cfg.Addr != "127.0.0.1:6380" || cfg.Sync != "always" || cfg.Backend != "embedded" {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	// Cluster file over default.
	cfg, err = resolve(t, []string{"--config", cluster}, nil)
	if err != nil || cfg.PDAddr != "127.0.0.1:2379" || cfg.MaxRetries != 8 {
		t.Fatalf("cluster file layer: %+v, %v", cfg, err)
	}
	cfg, err = resolve(t, []string{"--config", cluster, "--scope", "docker"}, nil)
	if err != nil || cfg.PDAddr != "nokv-pd:2379" {
		t.Fatalf("docker scope: %+v, %v", cfg, err)
	}
	// Env over cluster file.
	env := map[string]string{"NOKV_GATEWAY_PD_ADDR": "10.0.0.1:2379", "NOKV_GATEWAY_SYNC": "everysec"}
	cfg, err = resolve(t, []string{"--config", cluster}, env)
	if err != nil || cfg.PDAddr != "10.0.0.1:2379" || cfg.Sync != "everysec" {
		t.Fatalf("env layer: %+v, %v", cfg, err)
	}
	// Flag over env.
	cfg, err = resolve(t, []string{"--config", cluster, "--pd-addr", "10.0.0.2:2379", "--sync", "no"}, env)
	if err != nil || cfg.PDAddr != "10.0.0.2:2379" || cfg.Sync != "no" {
		t.Fatalf("flag layer: %+v, %v", cfg, err)
	}
}

func TestResolveNamesBadSettings(t *testing.T) {
	_, err := resolve(t, nil, map[string]string{"NOKV_GATEWAY_MAXCLIENTS": "lots"})
	if err == nil || !strings.Contains(err.Error(), "NOKV_GATEWAY_MAXCLIENTS") {
		t.Fatalf("bad env value: %v", err)
	}
	_, err = resolve(t, []string{"--cache-keys", "0"}, nil)
	if err == nil || !strings.Contains(err.Error(), "cache-keys") {
		t.Fatalf("zero cache: %v", err)
	}
	cfg, err := resolve(t, nil, map[string]string{"NOKV_GATEWAY_CACHE_KEYS": "4096"})
	if err != nil || cfg.CacheKeys != 4096 {
		t.Fatalf("cache keys from env: %d, %v", cfg.CacheKeys, err)
	}
	_, err = resolve(t, []string{"--backend", "raft"}, nil)
	if err == nil || !strings.Contains(err.Error(), "pd-addr") {
		t.Fatalf("raft without PD: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "cluster.json")
	if err := os.WriteFile(bad, []byte(`{"max_retries": 1, "bogus": true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = resolve(t, []string{"--config", bad}, nil)
	if err == nil || !strings.Contains(err.Error(), "bogus") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad cluster file: %v", err)
	}
}
