# Loopback port helpers for the bench scripts, which source this file and
# define die MESSAGE themselves.

# port_busy PORT: true if something accepts connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a loopback port nobody listens on, below the kernel's ephemeral
# range: a port there may be the source port of a benchmark connection still
# in TIME_WAIT, and binding to it fails.
free_port() {
	local p lo=32768
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	(( lo > 11000 )) || die "ephemeral port range starts at $lo: no room for server ports below it"
	for _ in $(seq 200); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if ! port_busy "$p"; then
			echo "$p"
			return
		fi
	done
	die "no free loopback port found"
}
