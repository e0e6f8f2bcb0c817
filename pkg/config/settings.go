package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/caarlos0/env/v11"
)

// EnvOptions configures ApplyEnv.
type EnvOptions struct {
	// Prefix is prepended to every `env` tag, e.g. "NOKV_PD_" turns
	// `env:"ADDR"` into NOKV_PD_ADDR.
	Prefix string
	// Environment, if non-nil, is used instead of the process environment.
	Environment map[string]string
}

// ApplyEnv overwrites fields of cfg, a pointer to a struct whose fields carry
// `env:"NAME"` tags, from the variables opts.Prefix+NAME. Variables that are
// unset or empty leave their field unchanged, so values from earlier layers
// survive. Defaults belong in code: a struct with `envDefault` tags is
// rejected, since such a default would silently override the JSON layer.
//
// Values are parsed by github.com/caarlos0/env/v11; types implementing
// encoding.TextUnmarshaler (such as Scope) use that.
func ApplyEnv(cfg any, opts EnvOptions) error {
	eo := env.Options{Prefix: opts.Prefix, Environment: opts.Environment}
	params, err := env.GetFieldParamsWithOptions(cfg, eo)
	if err != nil {
		return fmt.Errorf("config: env: %w", err)
	}
	for _, p := range params {
		if p.HasDefaultValue {
			return fmt.Errorf("config: env: %s has an envDefault tag; set defaults in code instead", p.Key)
		}
	}
	if err := env.ParseWithOptions(cfg, eo); err != nil {
		return envError(cfg, opts.Prefix, err)
	}
	return nil
}

// envError rewrites env's parse errors to name the variable rather than the
// Go field.
func envError(cfg any, prefix string, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: env: %w", err)
	}
	vars := make(map[string]string) // Go field name -> variable
	if t := reflect.TypeOf(cfg); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		for _, f := range reflect.VisibleFields(t.Elem()) {
			if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" && name != "-" {
				vars[f.Name] = prefix + name
			}
		}
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) && vars[pe.Name] != "" {
			errs = append(errs, fmt.Errorf("config: env %s: %w", vars[pe.Name], pe.Err))
			continue
		}
		errs = append(errs, fmt.Errorf("config: env: %w", e))
	}
	return errors.Join(errs...)
}

// VisitedFlags returns the names of the flags that were set explicitly on
// the command line of the parsed fs.
func VisitedFlags(fs *flag.FlagSet) map[string]bool {
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// ApplyFlags copies the flags set explicitly on the parsed fs onto the
// settings that bind registers. bind is called with a fresh FlagSet and must
// register the same flag names bound to the target settings, using the
// target's current values as defaults (so registering changes nothing).
// Flags that bind does not register are ignored.
//
// Values are transferred through flag.Value's String and Set, which round
// trip for the standard flag types and for Scope.
func ApplyFlags(fs *flag.FlagSet, bind func(*flag.FlagSet)) error {
	target := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	target.SetOutput(io.Discard)
	bind(target)
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		if target.Lookup(f.Name) == nil {
			return
		}
		if err := target.Set(f.Name, f.Value.String()); err != nil {
			errs = append(errs, fmt.Errorf("config: flag -%s: %w", f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// Layered is what a service's settings type offers Resolve. P is a pointer to
// the settings struct T.
type Layered[T any] interface {
	*T
	// RegisterFlags binds one flag per setting, defaulting to the current values.
	RegisterFlags(fs *flag.FlagSet)
	// ClusterFile is the cluster file path the settings name ("" for none).
	ClusterFile() string
	// ApplyCluster applies the cluster-file layer. boot holds the settings known
	// from the environment and flags alone; it says what to read (scope, ids).
	ApplyCluster(boot *T, c *Cluster) error
}

// Resolve layers a service's settings: defaults, then the cluster file its
// settings name (if any), then the environment, then the flags set explicitly
// on the parsed fs. It returns the settings, not yet validated, and the loaded
// cluster file (nil if none).
//
// The cluster file's path and the values that select what to read from it
// cannot come from the file itself, so they are settled first from the
// environment and flags.
func Resolve[T any, P Layered[T]](fs *flag.FlagSet, env EnvOptions, defaults func() T) (T, *Cluster, error) {
	var zero T
	overlay := func(c P) error {
		if err := ApplyEnv(c, env); err != nil {
			return err
		}
		return ApplyFlags(fs, c.RegisterFlags)
	}
	boot := defaults()
	if err := overlay(&boot); err != nil {
		return zero, nil, err
	}
	cfg := defaults()
	var cluster *Cluster
	if path := P(&boot).ClusterFile(); path != "" {
		var err error
		if cluster, err = Load(path); err != nil {
			return zero, nil, err
		}
		if err := P(&cfg).ApplyCluster(&boot, cluster); err != nil {
			return zero, nil, err
		}
	}
	if err := overlay(&cfg); err != nil {
		return zero, nil, err
	}
	return cfg, cluster, nil
}
