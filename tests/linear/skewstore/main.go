// Command skewstore is nokv-store with a clock knob, for tests only: it
// runs the same storeserver with the same flags and environment, and
// NOKV_TEST_CLOCK_AHEAD (a duration, e.g. 30s) moves the store's wall
// clock (storeserver.Config.TestingKnobs.Now) that far ahead, as a machine
// whose clock has drifted would. The real nokv-store has no such setting.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/store/storeserver"
)

const name = "skewstore"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	defaults := storeserver.DefaultConfig()
	fs, status, ok := config.ParseCommandLine(name, "nokv-store with a skewed clock (tests only).", storeserver.EnvPrefix, args, defaults.RegisterFlags, os.Stdout, os.Stderr)
	if !ok {
		return status
	}
	cfg, cluster, err := storeserver.Resolve(fs, config.EnvOptions{Prefix: storeserver.EnvPrefix})
	if err != nil {
		config.PrintError(os.Stderr, name, err)
		return 1
	}
	if s := os.Getenv("NOKV_TEST_CLOCK_AHEAD"); s != "" {
		ahead, err := time.ParseDuration(s)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: NOKV_TEST_CLOCK_AHEAD: %v\n", name, err)
			return 1
		}
		cfg.TestingKnobs.Now = func() time.Time { return time.Now().Add(ahead) }
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := storeserver.New(cfg, cluster, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
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
		fmt.Fprintf(os.Stderr, "%s: shutdown: %v\n", name, err)
		return 1
	}
	log.Info("stopped cleanly")
	return 0
}
