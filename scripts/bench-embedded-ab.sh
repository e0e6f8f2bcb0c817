#!/usr/bin/env bash
# bench-embedded-ab.sh — server CPU per request of two nokv-redis binaries,
# side by side: the figure of merit when the machine is shared.
#
#   scripts/bench-embedded-ab.sh OLD_BINARY NEW_BINARY
#
# Starts both (--sync always, fresh data directories, free loopback ports) and
# runs redis-benchmark -t set|get -c 50 -n $N, with and without -P 16, on one
# key (redis-benchmark's default) and on -r 100000, alternating between the
# two servers test by test, ROUNDS times. Prints each sample and the medians:
# server CPU (utime+stime from /proc/PID/stat, 10 ms ticks) in µs per request.
#
# Environment knobs: N=100000, ROUNDS=3, BENCH_DIR= (default $TMPDIR or /tmp).
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
hz=$(getconf CLK_TCK)
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/nokv-ab.XXXXXX")
declare -A pid port bin=([old]=$1 [new]=$2)

cleanup() {
	for n in "${!pid[@]}"; do kill "${pid[$n]}" 2>/dev/null || true; wait "${pid[$n]}" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

for n in old new; do
	port[$n]=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"${bin[$n]}" --addr "127.0.0.1:${port[$n]}" --workdir "$work/$n" --sync always --log-level warn >"$work/$n.log" 2>&1 &
	pid[$n]=$!
done
for n in old new; do
	for _ in $(seq 100); do redis-cli -p "${port[$n]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for round in $(seq "$ROUNDS"); do
	for keys in single "-r 100000"; do
		extra=${keys#single}
		for P in 1 16; do
			for t in set get; do
				for n in old new; do
					c0=$(cpu "${pid[$n]}")
					# shellcheck disable=SC2086
					redis-benchmark -p "${port[$n]}" -t "$t" -c 50 -n "$N" -P "$P" $extra -q >/dev/null
					c1=$(cpu "${pid[$n]}")
					awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$N" -v r="$round" -v k="${keys// /}" -v p="$P" -v t="$t" -v s="$n" \
						'BEGIN { printf "round %s %s P%s %-8s %s %.2f\n", r, t, p, k, s, d / hz * 1e6 / n }'
				done
			done
		done
	done
done | tee "$work/samples"

echo
echo "median server CPU µs/request over $ROUNDS rounds:"
printf "%-22s %8s %8s\n" test old new
awk '{ key = $3 " " $4 " " $5; v[key, $6, ++c[key, $6]] = $7; keys[key] = 1 }
END {
	for (k in keys) {
		line = sprintf("%-22s", k)
		for (s = 0; s < 2; s++) {
			srv = s ? "new" : "old"; n = c[k, srv]
			for (i = 1; i <= n; i++) a[i] = v[k, srv, i]
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
			line = line sprintf(" %8.2f", a[int((n + 1) / 2)])
		}
		print line
	}
}' "$work/samples" | sort
