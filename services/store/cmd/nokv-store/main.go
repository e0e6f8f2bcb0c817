// Command nokv-store runs a NoKV store.
//
// It is a skeleton for now: it resolves and validates its settings (see
// package storeserver), then exits with an error.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/store/storeserver"
)

const name = "nokv-store"

func main() {
	os.Exit(run(os.Args[1:], nil, os.Stdout, os.Stderr))
}

// run runs the command and returns its exit status. environ, if non-nil,
// replaces the process environment.
func run(args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	defaults := storeserver.DefaultConfig()
	defaults.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: %s [flags]

Runs a NoKV store: one node holding region replicas.

Each setting is taken from, in order of precedence: its flag, its
%s* environment variable, the cluster file (--config), the default.

Flags:
`, name, storeserver.EnvPrefix)
		fs.PrintDefaults()
	}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		io.Copy(stdout, &usage)
		return 0
	case err != nil:
		io.Copy(stderr, &usage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (see --help)\n", name, fs.Args())
		return 2
	}

	cfg, _, err := storeserver.Resolve(fs, config.EnvOptions{Prefix: storeserver.EnvPrefix, Environment: environ})
	if err != nil {
		for line := range strings.Lines(err.Error()) {
			fmt.Fprintf(stderr, "%s: %s", name, strings.TrimSuffix(line, "\n")+"\n")
		}
		return 1
	}
	fmt.Fprintf(stderr, "%s: settings: %+v\n", name, cfg)
	fmt.Fprintf(stderr, "%s: not implemented yet (see issue 3)\n", name)
	return 1
}
