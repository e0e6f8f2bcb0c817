package config

import (
	"flag"
	"net"
	"time"
)

// LocalDialAddr returns the address a process on the same host (or in the same
// container) dials to reach a server listening on listen: a wildcard or empty
// host ("0.0.0.0:6380", "[::]:6380", ":6380") becomes the loopback address;
// any other address is returned as it is.
func LocalDialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", port)
		}
		return net.JoinHostPort("127.0.0.1", port)
	}
	return listen
}

// HealthSummary is the usage text shared by the services' health subcommands.
const HealthSummary = `Checks that the %s described by these settings (the same flags,
environment and cluster file the service itself takes) is serving:
%s.
Exits 0 and prints "ok" if it is, 1 with the reason if not. It dials the
service's listen address, a wildcard host (0.0.0.0) as loopback, so it is
meant for the host or container the service runs in (compose health checks).`

// RegisterHealthFlags adds the flags every health subcommand takes besides the
// service's own: --timeout.
func RegisterHealthFlags(fs *flag.FlagSet) *time.Duration {
	return fs.Duration("timeout", 3*time.Second, "give up after this `duration`")
}
