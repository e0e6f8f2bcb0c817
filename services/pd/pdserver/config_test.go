package pdserver

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/nokv/nokv/pkg/config"
)

const examplePath = "../../../raft_config.example.json"

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"metrics enabled", func(c *Config) { c.MetricsAddr = ":9090" }, ""},
		{"recovery", func(c *Config) { c.RecoverClusterID, c.RecoverIDFloor = 5, 1e6 }, ""},
		{"id floor without recovery", func(c *Config) { c.RecoverIDFloor = 1e6 }, "recover_id_floor: only with recover_cluster_id"},
		{"empty addr", func(c *Config) { c.Addr = "" }, "addr: must not be empty"},
		{"bad addr", func(c *Config) { c.Addr = "pd" }, `addr: invalid address "pd": want host:port`},
		{"empty workdir", func(c *Config) { c.WorkDir = " " }, "workdir: must not be empty"},
		{"bad scope", func(c *Config) { c.Scope = "k8s" }, `scope: invalid scope "k8s"`},
		{"empty scope", func(c *Config) { c.Scope = "" }, `scope: invalid scope ""`},
		{"bad metrics addr", func(c *Config) { c.MetricsAddr = "9090" }, `metrics_addr: invalid address "9090"`},
		{"metrics on addr", func(c *Config) { c.MetricsAddr = c.Addr }, `metrics_addr: must differ from addr "127.0.0.1:2379"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
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
	fs := flag.NewFlagSet("nokv-pd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scratch := DefaultConfig()
	scratch.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// withDefaults fills the settings the cluster file has no say in.
func withDefaults(c Config) Config {
	d := DefaultConfig()
	c.StoreDownAfter, c.ReplaceDownAfter, c.RegionMaxSize = d.StoreDownAfter, d.ReplaceDownAfter, d.RegionMaxSize
	c.LeaderLease, c.ElectionTimeout, c.EtcdLogLevel = d.LeaderLease, d.ElectionTimeout, d.EtcdLogLevel
	return c
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		environ map[string]string
		want    Config
		cluster bool
	}{
		{
			name: "defaults",
			want: DefaultConfig(),
		},
		{
			name:    "cluster file over defaults",
			args:    []string{"--config", examplePath},
			want:    withDefaults(Config{Addr: "127.0.0.1:2379", WorkDir: "./data/pd", Config: examplePath, Scope: config.ScopeHost}),
			cluster: true,
		},
		{
			name:    "docker scope from env selects docker values",
			environ: map[string]string{"NOKV_PD_CONFIG": examplePath, "NOKV_PD_SCOPE": "docker"},
			want:    withDefaults(Config{Addr: "nokv-pd:2379", WorkDir: "/var/lib/nokv/pd", Config: examplePath, Scope: config.ScopeDocker}),
			cluster: true,
		},
		{
			name:    "flag scope beats env scope",
			args:    []string{"--scope", "host"},
			environ: map[string]string{"NOKV_PD_CONFIG": examplePath, "NOKV_PD_SCOPE": "docker"},
			want:    withDefaults(Config{Addr: "127.0.0.1:2379", WorkDir: "./data/pd", Config: examplePath, Scope: config.ScopeHost}),
			cluster: true,
		},
		{
			name:    "env over cluster file, flag over env",
			args:    []string{"--config", examplePath, "--addr", "0.0.0.0:3379"},
			environ: map[string]string{"NOKV_PD_ADDR": "0.0.0.0:4379", "NOKV_PD_WORKDIR": "/tmp/pd", "NOKV_PD_METRICS_ADDR": ":9090"},
			want:    withDefaults(Config{Addr: "0.0.0.0:3379", WorkDir: "/tmp/pd", Config: examplePath, Scope: config.ScopeHost, MetricsAddr: ":9090"}),
			cluster: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := config.EnvOptions{Prefix: EnvPrefix, Environment: tt.environ}
			if env.Environment == nil {
				env.Environment = map[string]string{}
			}
			got, cluster, err := Resolve(parseFlags(t, tt.args...), env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Resolve = %+v, want %+v", got, tt.want)
			}
			if (cluster != nil) != tt.cluster {
				t.Errorf("cluster loaded = %v, want %v", cluster != nil, tt.cluster)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	env := config.EnvOptions{Prefix: EnvPrefix, Environment: map[string]string{}}
	if _, _, err := Resolve(parseFlags(t, "--config", "missing.json"), env); err == nil ||
		!strings.Contains(err.Error(), "load cluster file missing.json") {
		t.Errorf("missing cluster file: %v", err)
	}
	if _, _, err := Resolve(parseFlags(t, "--addr", "nope"), env); err == nil ||
		!strings.Contains(err.Error(), `addr: invalid address "nope"`) {
		t.Errorf("bad addr: %v", err)
	}
	env.Environment = map[string]string{"NOKV_PD_SCOPE": "k8s"}
	if _, _, err := Resolve(parseFlags(t), env); !errors.Is(err, config.ErrInvalidScope) {
		t.Errorf("bad env scope: %v", err)
	}
}
