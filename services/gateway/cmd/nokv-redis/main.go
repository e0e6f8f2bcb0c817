// Command nokv-redis is the Redis-compatible gateway of NoKV.
//
// By default it serves RESP on 127.0.0.1:6380 from an embedded Pebble store in
// ./data/gateway; --raft-config FILE (or --backend raft --config FILE) serves
// it from the cluster instead. `nokv-redis health [flags]` checks a running
// one (compose health checks); `nokv-redis migrate-format [flags]` brings data
// of the previous on-disk format to the current one. See
// services/gateway/README.md for every
// setting.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

const name = "nokv-redis"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "health" {
		return health(args[1:], stdout, stderr)
	}
	migrate := len(args) > 0 && args[0] == "migrate-format"
	if migrate {
		args = args[1:]
	}
	defaults := gatewayserver.DefaultConfig()
	var logLevel *string
	register := func(fs *flag.FlagSet) {
		defaults.RegisterFlags(fs)
		logLevel = fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	}
	fs, status, ok := config.ParseCommandLine(name, "Serves the Redis protocol from NoKV: an embedded Pebble store by default.",
		gatewayserver.EnvPrefix, args, register, stdout, stderr)
	if !ok {
		return status
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: log-level: %v\n", name, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := gatewayserver.Resolve(fs, config.EnvOptions{Prefix: gatewayserver.EnvPrefix})
	if err != nil {
		config.PrintError(stderr, name, err)
		return 1
	}
	if migrate {
		if err := gatewayserver.MigrateFormat(context.Background(), cfg, log); err != nil {
			fmt.Fprintf(stderr, "%s migrate-format: %v\n", name, err)
			return 1
		}
		return 0
	}
	srv, err := gatewayserver.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	srv.Start()
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case <-srv.ShutdownRequested():
		log.Info("shutting down", "reason", "SHUTDOWN command")
	}
	signal.Stop(sigs)
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
