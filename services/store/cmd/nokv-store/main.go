// Command nokv-store runs a NoKV store.
//
// It is a skeleton for now: it resolves and validates its settings (see
// package storeserver), then exits with an error.
package main

import (
	"fmt"
	"io"
	"os"

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
	defaults := storeserver.DefaultConfig()
	fs, status, ok := config.ParseCommandLine(name, "Runs a NoKV store: one node holding region replicas.", storeserver.EnvPrefix, args, defaults.RegisterFlags, stdout, stderr)
	if !ok {
		return status
	}

	cfg, _, err := storeserver.Resolve(fs, config.EnvOptions{Prefix: storeserver.EnvPrefix, Environment: environ})
	if err != nil {
		config.PrintError(stderr, name, err)
		return 1
	}
	fmt.Fprintf(stderr, "%s: settings: %+v\n", name, cfg)
	fmt.Fprintf(stderr, "%s: not implemented yet (see issue 4)\n", name)
	return 1
}
