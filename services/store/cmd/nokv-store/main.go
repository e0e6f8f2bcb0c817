// Command nokv-store runs a NoKV store: one node holding region replicas.
//
// It serves the store's gRPC API (api/proto/storepb.proto) until SIGINT or
// SIGTERM; see services/store/README.md for its settings. `nokv-store health
// [flags]` checks a running one (compose health checks).
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

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
	if len(args) > 0 && args[0] == "health" {
		return health(args[1:], environ, stdout, stderr)
	}
	defaults := storeserver.DefaultConfig()
	fs, status, ok := config.ParseCommandLine(name, "Runs a NoKV store: one node holding region replicas.", storeserver.EnvPrefix, args, defaults.RegisterFlags, stdout, stderr)
	if !ok {
		return status
	}
	cfg, cluster, err := storeserver.Resolve(fs, config.EnvOptions{Prefix: storeserver.EnvPrefix, Environment: environ})
	if err != nil {
		config.PrintError(stderr, name, err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := storeserver.New(cfg, cluster, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	srv.Start()
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case <-srv.Failed():
		log.Error("store failed; exiting", "err", srv.Err())
		_ = srv.Close()
		return 1
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
