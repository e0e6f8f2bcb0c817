// Command nokv-pd runs the NoKV placement driver.
//
// It serves PD's gRPC API (api/proto/pdpb.proto) until SIGINT or SIGTERM; see
// services/pd/README.md for its settings. `nokv-pd health [flags]` checks a
// running one (compose health checks).
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
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
	if len(args) > 0 && args[0] == "health" {
		return health(args[1:], environ, stdout, stderr)
	}
	defaults := pdserver.DefaultConfig()
	fs, status, ok := config.ParseCommandLine(name, "Runs the NoKV placement driver (PD).", pdserver.EnvPrefix, args, defaults.RegisterFlags, stdout, stderr)
	if !ok {
		return status
	}

	cfg, file, err := pdserver.Resolve(fs, config.EnvOptions{Prefix: pdserver.EnvPrefix, Environment: environ})
	if err != nil {
		config.PrintError(stderr, name, err)
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
