package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nokv/nokv/pkg/config"
	"github.com/nokv/nokv/services/gateway/gatewayserver"
)

// health implements `nokv-redis health [flags]`: with the settings the server
// itself would resolve from the same flags and environment, it dials the RESP
// address, AUTHs if a password is set, sends PING and then EXISTS on one key,
// a read that goes through the backend (on the raft backend: a timestamp from
// PD and a read from the key's region leader). Images built FROM scratch have
// no shell or redis-cli, so compose health checks run this.
func health(args []string, stdout, stderr io.Writer) int {
	defaults := gatewayserver.DefaultConfig()
	var timeout *time.Duration
	var key *string
	register := func(fs *flag.FlagSet) {
		defaults.RegisterFlags(fs)
		fs.String("log-level", "info", "ignored (accepted so the server's own flags can be passed)")
		timeout = config.RegisterHealthFlags(fs)
		key = fs.String("key", "nokv:health", "`key` to read with EXISTS, through the backend; empty: PING only")
	}
	summary := fmt.Sprintf(config.HealthSummary, name, "it answers PING and a read (EXISTS) through its backend")
	fs, status, ok := config.ParseCommandLine(name+" health", summary, gatewayserver.EnvPrefix, args, register, stdout, stderr)
	if !ok {
		return status
	}
	cfg, _, err := config.Resolve[gatewayserver.Config](fs, config.EnvOptions{Prefix: gatewayserver.EnvPrefix}, gatewayserver.DefaultConfig)
	if err != nil {
		config.PrintError(stderr, name+" health", err)
		return 1
	}
	addr := config.LocalDialAddr(cfg.Addr)
	start := time.Now()
	if err := checkRESP(addr, cfg.RequirePass, *key, *timeout); err != nil {
		fmt.Fprintf(stderr, "%s health: %s: %v\n", name, addr, err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s at %s answered in %v\n", name, addr, time.Since(start).Round(time.Millisecond))
	return 0
}

func checkRESP(addr, password, key string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	r := bufio.NewReader(conn)
	do := func(args ...string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := io.WriteString(conn, b.String()); err != nil {
			return "", err
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("%s: %w", args[0], err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "-") {
			return "", fmt.Errorf("%s: %s", args[0], line[1:])
		}
		if strings.HasPrefix(line, "$") { // a bulk reply: skip its payload
			if n, err := strconv.Atoi(line[1:]); err == nil && n >= 0 {
				if _, err := r.Discard(n + 2); err != nil {
					return "", fmt.Errorf("%s: %w", args[0], err)
				}
			}
		}
		return line, nil
	}
	if password != "" {
		if _, err := do("AUTH", password); err != nil {
			return err
		}
	}
	if reply, err := do("PING"); err != nil {
		return err
	} else if reply != "+PONG" {
		return fmt.Errorf("PING: unexpected reply %q", reply)
	}
	if key == "" {
		return nil
	}
	if reply, err := do("EXISTS", key); err != nil {
		return err
	} else if reply != ":0" && reply != ":1" {
		return fmt.Errorf("EXISTS: unexpected reply %q", reply)
	}
	return nil
}
