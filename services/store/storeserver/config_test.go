package storeserver

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nokv/nokv/pkg/config"
)

const examplePath = "../../../raft_config.example.json"

func validConfig() Config {
	c := DefaultConfig()
	c.StoreID = 1
	c.WorkDir = "./data/store-1"
	return c
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"metrics enabled", func(c *Config) { c.MetricsAddr = ":9100" }, ""},
		{"defaults lack store id", func(c *Config) { *c = DefaultConfig() }, "store_id: must be nonzero"},
		{"empty addr", func(c *Config) { c.Addr = "" }, "addr: must not be empty"},
		{"bad addr", func(c *Config) { c.Addr = "20160" }, `addr: invalid address "20160": want host:port`},
		{"empty workdir", func(c *Config) { c.WorkDir = "" }, "workdir: must not be empty"},
		{"bad scope", func(c *Config) { c.Scope = "k8s" }, `scope: invalid scope "k8s"`},
		{"empty pd addr", func(c *Config) { c.PDAddr = "" }, "pd_addr: must not be empty"},
		{"bad pd addr", func(c *Config) { c.PDAddr = "pd" }, `pd_addr: invalid address "pd"`},
		{"bad metrics addr", func(c *Config) { c.MetricsAddr = "x" }, `metrics_addr: invalid address "x"`},
		{"metrics on addr", func(c *Config) { c.MetricsAddr = c.Addr }, `metrics_addr: must differ from addr "127.0.0.1:20160"`},
		{"zero tick", func(c *Config) { c.RaftTickInterval = 0 }, "raft_tick_interval: must be positive"},
		{"election not above heartbeat", func(c *Config) { c.RaftElectionTicks = 2 }, "raft_election_ticks: must exceed raft_heartbeat_ticks (2), have 2"},
		{"zero log keep", func(c *Config) { c.RaftLogKeep = 0 }, "raft_log_keep: must be positive"},
		{"zero gc interval", func(c *Config) { c.GCInterval = 0 }, "gc_interval: must be positive"},
		{"negative gc life time", func(c *Config) { c.GCLifeTime = -time.Second }, "gc_life_time: must be positive"},
		{"zero max peer down duration", func(c *Config) { c.MaxPeerDownDuration = 0 }, "max_peer_down_duration: must be positive"},
		{"zero heartbeat", func(c *Config) { c.HeartbeatInterval = 0 }, "heartbeat_interval: must be positive"},
		{"join without store id", func(c *Config) { c.Join, c.StoreID = true, 0 }, ""},
		{"join with a store id", func(c *Config) { c.Join = true }, "a joining store gets its id from PD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func parseFlags(t *testing.T, args ...string) *flag.FlagSet {
	t.Helper()
	fs := flag.NewFlagSet("nokv-store", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scratch := DefaultConfig()
	scratch.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ map[string]string
		want    Config
	}{
		{
			name: "defaults and derived workdir",
			args: []string{"--store-id", "7"},
			want: Config{StoreID: 7, Addr: "127.0.0.1:20160", WorkDir: "./data/store-7", Scope: config.ScopeHost, PDAddr: "127.0.0.1:2379"},
		},
		{
			name: "cluster file over defaults",
			args: []string{"--config", examplePath, "--store-id", "2"},
			want: Config{StoreID: 2, Addr: "127.0.0.1:20161", WorkDir: "./data/store-2", Config: examplePath, Scope: config.ScopeHost, PDAddr: "127.0.0.1:2379"},
		},
		{
			name:    "docker scope and store id from env",
			environ: map[string]string{"NOKV_STORE_CONFIG": examplePath, "NOKV_STORE_SCOPE": "docker", "NOKV_STORE_STORE_ID": "3"},
			want:    Config{StoreID: 3, Addr: "0.0.0.0:20160", WorkDir: "./data/store-3", Config: examplePath, Scope: config.ScopeDocker, PDAddr: "nokv-pd:2379"},
		},
		{
			name: "env over cluster file, flag over env",
			args: []string{"--config", examplePath, "--store-id", "1", "--pd-addr", "10.0.0.1:2379", "--workdir", "/data/s1"},
			environ: map[string]string{
				"NOKV_STORE_STORE_ID": "2", "NOKV_STORE_PD_ADDR": "10.0.0.2:2379",
				"NOKV_STORE_ADDR": "0.0.0.0:30160", "NOKV_STORE_WORKDIR": "/env/s", "NOKV_STORE_METRICS_ADDR": ":9100",
			},
			want: Config{StoreID: 1, Addr: "0.0.0.0:30160", WorkDir: "/data/s1", Config: examplePath, Scope: config.ScopeHost, PDAddr: "10.0.0.1:2379", MetricsAddr: ":9100"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := tt.environ
			if environ == nil {
				environ = map[string]string{}
			}
			got, cluster, err := Resolve(parseFlags(t, tt.args...), config.EnvOptions{Prefix: EnvPrefix, Environment: environ})
			if err != nil {
				t.Fatal(err)
			}
			want := withRaftDefaults(tt.want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Resolve = %+v, want %+v", got, want)
			}
			if (cluster != nil) != (got.Config != "") {
				t.Errorf("cluster loaded = %v with config %q", cluster != nil, got.Config)
			}
		})
	}
}

// withRaftDefaults fills the raft tuning settings the table leaves out.
func withRaftDefaults(c Config) Config {
	d := DefaultConfig()
	c.RaftTickInterval, c.RaftElectionTicks, c.RaftHeartbeatTicks = d.RaftTickInterval, d.RaftElectionTicks, d.RaftHeartbeatTicks
	c.RaftLogKeep, c.RegionSplitSize, c.SplitCheckInterval, c.HeartbeatInterval = d.RaftLogKeep, d.RegionSplitSize, d.SplitCheckInterval, d.HeartbeatInterval
	c.GCInterval, c.GCLifeTime, c.MaxPeerDownDuration = d.GCInterval, d.GCLifeTime, d.MaxPeerDownDuration
	return c
}

func TestResolveErrors(t *testing.T) {
	env := config.EnvOptions{Prefix: EnvPrefix, Environment: map[string]string{}}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no store id", nil, "store_id: must be nonzero"},
		{"no store id with cluster file", []string{"--config", examplePath}, "store_id: must be set (--store-id or NOKV_STORE_STORE_ID)"},
		{"store not in cluster file", []string{"--config", examplePath, "--store-id", "9"}, "store_id: unknown store 9 in the cluster file"},
		{"missing cluster file", []string{"--config", "missing.json", "--store-id", "1"}, "load cluster file missing.json"},
		{"join without workdir", []string{"--join", "--config", examplePath, "--addr", "127.0.0.1:20199"}, "workdir: must not be empty"},
	}
	for _, tt := range tests {
		if _, _, err := Resolve(parseFlags(t, tt.args...), env); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Resolve error = %v, want %q", tt.name, err, tt.want)
		}
	}

	env.Environment = map[string]string{"NOKV_STORE_STORE_ID": "one"}
	_, _, err := Resolve(parseFlags(t), env)
	if err == nil || !strings.Contains(err.Error(), "config: env NOKV_STORE_STORE_ID:") {
		t.Errorf("bad env store id: %v", err)
	}
	if _, _, err := Resolve(parseFlags(t, "--config", examplePath, "--store-id", "9"), config.EnvOptions{Prefix: EnvPrefix, Environment: map[string]string{}}); !errors.Is(err, config.ErrUnknownStore) {
		t.Errorf("unknown store: %v does not match ErrUnknownStore", err)
	}
}

// TestResolveJoin: a joining store takes only PD's address from the
// cluster file; its id comes from PD.
func TestResolveJoin(t *testing.T) {
	env := config.EnvOptions{Prefix: EnvPrefix, Environment: map[string]string{"NOKV_STORE_JOIN": "true"}}
	cfg, _, err := Resolve(parseFlags(t, "--config", examplePath, "--addr", "127.0.0.1:20199", "--workdir", "/tmp/x"), env)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Join || cfg.StoreID != 0 || cfg.Addr != "127.0.0.1:20199" || cfg.PDAddr != "127.0.0.1:2379" {
		t.Fatalf("joining store settings: %+v", cfg)
	}
}
