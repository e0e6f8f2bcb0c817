// Command nokv-pd runs the NoKV placement driver.
//
// It serves PD's gRPC API (api/proto/pdpb.proto) until SIGINT or SIGTERM; see
// services/pd/README.md for its settings.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/pd/pdserver"
)

const name = "nokv-pd"

func main() {
	os.Exit(run(os.Args[1:], nil, os.Stdout, os.Stderr))
}

// run runs the command and returns its exit status. environ, if non-nil,
// replaces the process environment.
func run(args []string, environ map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	defaults := pdserver.DefaultConfig()
	defaults.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: %s [flags]

Runs the NoKV placement driver (PD).

Each setting is taken from, in order of precedence: its flag, its
%s* environment variable, the cluster file (--config), the default.

Flags:
`, name, pdserver.EnvPrefix)
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

	cfg, file, err := pdserver.Resolve(fs, config.EnvOptions{Prefix: pdserver.EnvPrefix, Environment: environ})
	if err != nil {
		for line := range strings.Lines(err.Error()) {
			fmt.Fprintf(stderr, "%s: %s", name, strings.TrimSuffix(line, "\n")+"\n")
		}
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := pdserver.New(cfg, file, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	srv.Start()
	sig := <-sigs
	log.Info("shutting down", "signal", sig.String())
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
