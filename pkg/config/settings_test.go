package config

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

// toy is a service settings struct: env tags name the variables (without
// prefix), json tags the file fields. There are no envDefault tags.
type toy struct {
	A     string `json:"a" env:"A"`
	B     string `json:"b" env:"B"`
	C     string `json:"c" env:"C"`
	D     string `json:"d" env:"D"`
	N     int    `json:"n" env:"N"`
	Scope Scope  `json:"scope" env:"SCOPE"`
}

func defaultToy() toy {
	return toy{A: "default", B: "default", C: "default", D: "default", N: 1, Scope: ScopeHost}
}

func (c *toy) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.A, "a", c.A, "a")
	fs.StringVar(&c.B, "b", c.B, "b")
	fs.StringVar(&c.C, "c", c.C, "c")
	fs.StringVar(&c.D, "d", c.D, "d")
	fs.IntVar(&c.N, "n", c.N, "n")
	fs.Var(&c.Scope, "scope", "scope")
}

// parseToyFlags parses args with flags bound to a scratch copy, as a main
// does before it knows the other layers.
func parseToyFlags(t *testing.T, args ...string) *flag.FlagSet {
	t.Helper()
	scratch := defaultToy()
	fs := flag.NewFlagSet("toy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scratch.bind(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestLayeringPrecedence(t *testing.T) {
	// B, C, D are set in the file; C, D in the environment; D by flag.
	file := `{"b": "file", "c": "file", "d": "file", "n": 2}`
	environ := map[string]string{
		"TOY_C":     "env",
		"TOY_D":     "env",
		"TOY_N":     "3",
		"TOY_SCOPE": "docker",
		"TOY_A":     "",    // empty: does not override
		"C":         "bad", // no prefix: ignored
	}
	fs := parseToyFlags(t, "-d", "flag", "-scope", "host")

	cfg := defaultToy()
	if err := json.Unmarshal([]byte(file), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(&cfg, EnvOptions{Prefix: "TOY_", Environment: environ}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyFlags(fs, cfg.bind); err != nil {
		t.Fatal(err)
	}

	want := toy{A: "default", B: "file", C: "env", D: "flag", N: 3, Scope: ScopeHost}
	if cfg != want {
		t.Errorf("layered config = %+v, want %+v", cfg, want)
	}
}

func TestApplyFlagsOnlyExplicit(t *testing.T) {
	// -a is given with its default value: it still counts as explicit.
	fs := parseToyFlags(t, "-a", "default", "-n", "7")
	if got, want := VisitedFlags(fs), map[string]bool{"a": true, "n": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("VisitedFlags = %v, want %v", got, want)
	}

	cfg := toy{A: "env", B: "env", N: 5, Scope: ScopeDocker}
	if err := ApplyFlags(fs, cfg.bind); err != nil {
		t.Fatal(err)
	}
	want := toy{A: "default", B: "env", N: 7, Scope: ScopeDocker}
	if cfg != want {
		t.Errorf("after ApplyFlags = %+v, want %+v", cfg, want)
	}

	// Flags the target does not register are ignored.
	partial := toy{}
	err := ApplyFlags(fs, func(fs *flag.FlagSet) { fs.IntVar(&partial.N, "n", partial.N, "") })
	if err != nil || partial != (toy{N: 7}) {
		t.Errorf("partial ApplyFlags = %+v, %v", partial, err)
	}
}

func TestApplyEnvErrors(t *testing.T) {
	cfg := defaultToy()
	err := ApplyEnv(&cfg, EnvOptions{Prefix: "TOY_", Environment: map[string]string{
		"TOY_N":     "many",
		"TOY_SCOPE": "k8s",
	}})
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{
		`config: env TOY_N: strconv.ParseInt: parsing "many": invalid syntax`,
		`config: env TOY_SCOPE: invalid scope "k8s"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\ndoes not contain %q", err, want)
		}
	}

	var withDefault struct {
		X string `env:"X" envDefault:"x"`
	}
	err = ApplyEnv(&withDefault, EnvOptions{Prefix: "TOY_", Environment: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), "TOY_X has an envDefault tag") {
		t.Errorf("envDefault tag: got %v", err)
	}

	if err := ApplyEnv(cfg, EnvOptions{}); err == nil {
		t.Error("non-pointer: want error")
	}
}

func TestApplyEnvProcessEnvironment(t *testing.T) {
	t.Setenv("NOKV_TOY_TEST_B", "from-process")
	cfg := defaultToy()
	if err := ApplyEnv(&cfg, EnvOptions{Prefix: "NOKV_TOY_TEST_"}); err != nil {
		t.Fatal(err)
	}
	if cfg.B != "from-process" || cfg.A != "default" {
		t.Errorf("cfg = %+v", cfg)
	}
}
