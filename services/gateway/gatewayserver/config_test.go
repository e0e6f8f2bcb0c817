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
	"github.com/nokv/nokv/services/gateway/internal/backend/embedded"
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
	_, err = resolve(t, []string{"--cache-keys", "-1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "cache-keys") {
		t.Fatalf("negative cache: %v", err)
	}
	_, err = resolve(t, []string{"--key-cache", "64kb"}, nil)
	if err == nil || !strings.Contains(err.Error(), "key-cache") {
		t.Fatalf("tiny key cache: %v", err)
	}
	_, err = resolve(t, []string{"--key-cache", "2048gb"}, nil)
	if err == nil || !strings.Contains(err.Error(), "key-cache") {
		t.Fatalf("huge key cache: %v", err)
	}
	_, err = resolve(t, []string{"--block-cache", "64kb"}, nil)
	if err == nil || !strings.Contains(err.Error(), "block-cache") {
		t.Fatalf("tiny block cache: %v", err)
	}
	_, err = resolve(t, []string{"--block-cache", "2048gb"}, nil)
	if err == nil || !strings.Contains(err.Error(), "block-cache") {
		t.Fatalf("huge block cache: %v", err)
	}
	cfg, err := resolve(t, nil, map[string]string{"NOKV_GATEWAY_KEY_CACHE": "64mb", "NOKV_GATEWAY_BLOCK_CACHE": "1gb"})
	if err != nil || cfg.KeyCacheBytes() != 64<<20 || cfg.BlockCache != 1<<30 {
		t.Fatalf("caches from env: key %d, block %d, %v", cfg.KeyCacheBytes(), cfg.BlockCache, err)
	}
	// The old slot count still works, converted to bytes.
	cfg, err = resolve(t, nil, map[string]string{"NOKV_GATEWAY_CACHE_KEYS": "4096"})
	if err != nil || cfg.KeyCacheBytes() != 4096*embedded.KeyCacheEntryBytes {
		t.Fatalf("cache keys from env: %d bytes, %v", cfg.KeyCacheBytes(), err)
	}
	// ... but not together with the bytes that replace it.
	_, err = resolve(t, []string{"--cache-keys", "4096", "--key-cache", "1gb"}, nil)
	if err == nil || !strings.Contains(err.Error(), "key-cache only") {
		t.Fatalf("cache-keys with key-cache: %v", err)
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

// The buffer limits take Redis's units from flags and the environment, and
// proto-max-bulk-len is bounded, on its own and by the query buffer limit.
func TestLimitSettings(t *testing.T) {
	cfg, err := resolve(t, nil, nil)
	if err != nil || cfg.ClientQueryBufferLimit != 1<<30 || cfg.MaxBulkLen != 512<<20 ||
		cfg.ClientOutputBufferLimit != (gatewayserver.OutputBufferLimit{Hard: 1 << 30}) {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	// maxmemory-clients: by default a quarter of the memory, never less
	// than two largest values; 0 turns it off.
	if b := cfg.ClientMemoryBudget(); cfg.MaxMemoryClients != gatewayserver.MaxMemoryClientsAuto || b < 2*(512<<20+1<<20) {
		t.Fatalf("default maxmemory-clients %d, budget %d", cfg.MaxMemoryClients, b)
	}
	cfg, err = resolve(t, []string{"--proto-max-bulk-len", "1gb", "--client-query-buffer-limit", "2gb", "--client-output-buffer-limit", "0 0 0"}, nil)
	if b := cfg.ClientMemoryBudget(); err != nil || b < 2*(1<<30+1<<20) {
		t.Fatalf("default maxmemory-clients with 1 GiB values: %d, %v", b, err)
	}
	cfg, err = resolve(t, []string{"--maxmemory-clients", "0"}, nil)
	if err != nil || cfg.ClientMemoryBudget() != 0 {
		t.Fatalf("--maxmemory-clients 0: %d, %v", cfg.ClientMemoryBudget(), err)
	}
	cfg, err = resolve(t, nil, map[string]string{"NOKV_GATEWAY_MAXMEMORY_CLIENTS": "3gb"})
	if err != nil || cfg.ClientMemoryBudget() != 3<<30 {
		t.Fatalf("NOKV_GATEWAY_MAXMEMORY_CLIENTS=3gb: %d, %v", cfg.ClientMemoryBudget(), err)
	}
	cfg, err = resolve(t, []string{"--client-query-buffer-limit", "2gb", "--proto-max-bulk-len", "1gb",
		"--client-output-buffer-limit", "normal 2gb 256mb 60"}, nil)
	if err != nil || cfg.ClientQueryBufferLimit != 2<<30 || cfg.MaxBulkLen != 1<<30 ||
		cfg.ClientOutputBufferLimit != (gatewayserver.OutputBufferLimit{Hard: 2 << 30, Soft: 256 << 20, SoftSeconds: 60}) {
		t.Fatalf("flags: %+v, %v", cfg, err)
	}
	cfg, err = resolve(t, nil, map[string]string{
		"NOKV_GATEWAY_CLIENT_QUERY_BUFFER_LIMIT":  "4194304",
		"NOKV_GATEWAY_PROTO_MAX_BULK_LEN":         "1mb",
		"NOKV_GATEWAY_CLIENT_OUTPUT_BUFFER_LIMIT": "0 64mb 10",
	})
	if err != nil || cfg.ClientQueryBufferLimit != 4<<20 || cfg.MaxBulkLen != 1<<20 ||
		cfg.ClientOutputBufferLimit != (gatewayserver.OutputBufferLimit{Soft: 64 << 20, SoftSeconds: 10}) {
		t.Fatalf("env: %+v, %v", cfg, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--proto-max-bulk-len", "2gb", "--client-query-buffer-limit", "8gb"}, nil, "proto-max-bulk-len: 2147483648: must be between 1024 and 1073741824"},
		{[]string{"--proto-max-bulk-len", "600mb"}, nil, "proto-max-bulk-len: 629145600: must be at most half of client-query-buffer-limit (1073741824)"},
		{[]string{"--client-query-buffer-limit", "1000"}, nil, "client-query-buffer-limit: 1000: must be at least 1048576"},
		{[]string{"--client-output-buffer-limit", "512mb 0 0"}, nil, "client-output-buffer-limit: hard limit 536870912: must be 0 (none) or at least proto-max-bulk-len"},
		{[]string{"--client-output-buffer-limit", "1gb 0"}, nil, "client-output-buffer-limit"},
		{[]string{"--client-output-buffer-limit", "1gb 0 -1"}, nil, "soft-seconds"},
		{[]string{"--client-query-buffer-limit", "lots"}, nil, "client-query-buffer-limit"},
		{nil, map[string]string{"NOKV_GATEWAY_CLIENT_QUERY_BUFFER_LIMIT": "-1"}, "NOKV_GATEWAY_CLIENT_QUERY_BUFFER_LIMIT"},
		{nil, map[string]string{"NOKV_GATEWAY_CLIENT_OUTPUT_BUFFER_LIMIT": "1gb"}, "NOKV_GATEWAY_CLIENT_OUTPUT_BUFFER_LIMIT"},
		{[]string{"--maxmemory-clients", "100mb"}, nil, "maxmemory-clients: 104857600: must be 0 (none) or at least proto-max-bulk-len (536870912) + 1048576"},
		{[]string{"--maxmemory-clients", "-1"}, nil, "maxmemory-clients"},
		{[]string{"--maxmemory-clients", "18446744073709551616"}, nil, "maxmemory-clients"},
		{nil, map[string]string{"NOKV_GATEWAY_MAXMEMORY_CLIENTS": "lots"}, "NOKV_GATEWAY_MAXMEMORY_CLIENTS"},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg := gatewayserver.DefaultConfig()
		cfg.RegisterFlags(fs)
		err := fs.Parse(tc.args)
		if err == nil {
			env := tc.env
			if env == nil {
				env = map[string]string{}
			}
			_, err = gatewayserver.Resolve(fs, config.EnvOptions{Prefix: gatewayserver.EnvPrefix, Environment: env})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: error %v, want one containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1024": 1024, "1k": 1000, "1kb": 1024, "1KB": 1024, "5m": 5e6, "5mb": 5 << 20,
		"1g": 1e9, "1gb": 1 << 30, "100b": 100, " 7 ": 7,
	} {
		if got, err := gatewayserver.ParseByteSize(in); err != nil || int64(got) != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "gb", "-1", "+1", "1.5gb", "1tb", "1 gb", "99999999999gb"} {
		if got, err := gatewayserver.ParseByteSize(in); err == nil {
			t.Errorf("%q: %d, want an error", in, got)
		}
	}
}
