// Command nokv-redis is the Redis-compatible gateway of NoKV.
//
// By default it serves RESP on 127.0.0.1:6380 from an embedded Pebble store in
// ./data/gateway. See services/gateway/README.md for every setting.
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
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

const name = "nokv-redis"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	defaults := gatewayserver.DefaultConfig()
	defaults.RegisterFlags(fs)
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: %s [flags]

Serves the Redis protocol from NoKV: an embedded Pebble store by default.

Each setting is taken from, in order of precedence: its flag, its
%s* environment variable, the cluster file (--config), the default.

Flags:
`, name, gatewayserver.EnvPrefix)
		fs.PrintDefaults()
	}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		_, _ = io.Copy(stdout, &usage)
		return 0
	case err != nil:
		_, _ = io.Copy(stderr, &usage)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q (see --help)\n", name, fs.Args())
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "%s: log-level: %v\n", name, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	cfg, err := gatewayserver.Resolve(fs, config.EnvOptions{Prefix: gatewayserver.EnvPrefix})
	if err != nil {
		for line := range strings.Lines(err.Error()) {
			fmt.Fprintf(stderr, "%s: %s\n", name, strings.TrimSuffix(line, "\n"))
		}
		return 1
	}
	srv, err := gatewayserver.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	srv.Start()
	sig := <-sigs
	log.Info("shutting down", "signal", sig.String())
	signal.Stop(sigs)
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "%s: shutdown: %v\n", name, err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
