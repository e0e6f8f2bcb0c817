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
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case <-srv.Stopped():
		// Nothing left to serve: a removed member must not linger as if it
		// were one (and must not be restarted on its old data).
		log.Error("this member's etcd member stopped: it was removed from the PD group, or etcd failed; stopping")
		_ = srv.Close()
		fmt.Fprintf(stderr, "%s: this member's etcd member stopped (removed from the PD group, or failed); to bring this machine back, add it again with nokv-config pd member add and start it on an empty workdir with --join\n", name)
		return 1
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
