#!/usr/bin/env bash
# bench-embedded-scale.sh — does nokv-redis (embedded Pebble backend) stay fast
# as the key count grows?
#
# For every key count in SIZES it starts a nokv-redis with a fresh data
# directory and preloads it with exactly that many keys, the ones
# redis-benchmark -r names (key:000000000000 .. key:<SIZE-1>, 3-byte values),
# streamed through redis-cli --pipe. Once the server is idle (its compactions
# done) it measures, interleaved across the servers RUNS times:
#   redis-benchmark -t set -r SIZE -c $CLIENTS -n $OPS      (overwrites)
#   redis-benchmark -t get -r SIZE -c $CLIENTS -n $OPS      (every GET hits)
# and prints, per size, the median requests/sec, the server's CPU per request
# (utime+stime from /proc over the run, the figure that survives a loaded
# machine), its RSS after the preload and at the end, and the ratio of each
# size's rate to the first size's, against TARGET (0.8).
#
# Environment knobs:
#   SIZES="100000 10000000"  key counts; the first is the baseline of the ratios
#   OPS=300000               requests per measured run
#   CLIENTS=50               parallel connections
#   RUNS=3                   interleaved repetitions; medians are reported
#   NOKV_SYNC=always         nokv-redis --sync policy (the preload too)
#   NOKV_ARGS=               extra nokv-redis flags (e.g. "--block-cache 256mb")
#   TARGET=0.8               ratio to reach for the largest size
#   BENCH_DIR=               parent of the temporary directory (default $TMPDIR or /tmp)
#   NOKV_BIN=                use this nokv-redis binary instead of building one
#   KEEP=1                   keep the temporary directory (data, logs)
#   IDLE_PCT=10              the server counts as idle below this % of a core
# Exit status: 0 when every ratio meets TARGET, 3 when one misses, other on errors.
set -euo pipefail

SIZES=${SIZES:-100000 10000000}
OPS=${OPS:-300000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
NOKV_SYNC=${NOKV_SYNC:-always}
NOKV_ARGS=${NOKV_ARGS:-}
TARGET=${TARGET:-0.8}
KEEP=${KEEP:-0}
IDLE_PCT=${IDLE_PCT:-10}

die() {
	echo "bench-embedded-scale: $*" >&2
	exit 1
}

for tool in redis-cli redis-benchmark awk; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH"
done

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/nokv-scale.XXXXXX")
declare -A pid port
bench_pid=""
hz=$(getconf CLK_TCK)

cleanup() {
	local rc=$?
	[[ -n $bench_pid ]] && kill "$bench_pid" 2>/dev/null
	for n in "${!pid[@]}"; do
		kill "${pid[$n]}" 2>/dev/null || true
		wait "${pid[$n]}" 2>/dev/null || true
	done
	if [[ $KEEP == 1 ]]; then
		echo "bench-embedded-scale: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

source "$script_dir/lib/ports.sh"

# cpu_ticks PID: utime+stime of PID in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# rss_mib PID: resident set size in MiB.
rss_mib() { awk '/^VmRSS:/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# wait_idle PID: wait until PID uses under IDLE_PCT% of a core over 2 s (its
# flushes and compactions after a preload or a write run are done), or 10 min.
wait_idle() {
	local a b
	for _ in $(seq 300); do
		a=$(cpu_ticks "$1")
		sleep 2
		b=$(cpu_ticks "$1")
		if (((b - a) * 100 < IDLE_PCT * 2 * hz)); then
			return
		fi
	done
	echo "bench-embedded-scale: server $1 still busy after 10 min; measuring anyway" >&2
}

if [[ -n ${NOKV_BIN:-} ]]; then
	nokv_bin=$NOKV_BIN
else
	nokv_bin="$work/nokv-redis"
	echo "building nokv-redis ..." >&2
	(cd "$repo_root" && go build -o "$nokv_bin" ./services/gateway/cmd/nokv-redis)
fi

# start SIZE: start a server for SIZE keys and wait for PING.
start() {
	local n=$1 p
	p=$(free_port)
	mkdir -p "$work/$n"
	# shellcheck disable=SC2086 # NOKV_ARGS is split on purpose
	"$nokv_bin" --addr "127.0.0.1:$p" --workdir "$work/$n/data" --sync "$NOKV_SYNC" \
		--log-level warn $NOKV_ARGS >"$work/$n/log" 2>&1 &
	pid[$n]=$!
	port[$n]=$p
	for _ in $(seq 100); do
		kill -0 "${pid[$n]}" 2>/dev/null || { cat "$work/$n/log" >&2; die "server for $n keys exited"; }
		[[ $(redis-cli -p "$p" ping 2>/dev/null) == PONG ]] && return
		sleep 0.1
	done
	die "server for $n keys did not answer PING"
}

# preload SIZE: SET every key redis-benchmark -r SIZE can name.
preload() {
	local n=$1 t0 t1
	t0=$(date +%s.%N)
	awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) { k = sprintf("key:%012d", i); printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxxx\r\n", length(k), k } }' |
		redis-cli -p "${port[$n]}" --pipe >"$work/$n/preload.log" 2>&1 ||
		die "preload of $n keys failed: $(tail -3 "$work/$n/preload.log")"
	t1=$(date +%s.%N)
	got=$(redis-cli -p "${port[$n]}" dbsize)
	[[ $got == "$n" ]] || die "preload of $n keys: DBSIZE says $got"
	echo "preloaded $n keys in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s" >&2
}

# bench SIZE TEST: one redis-benchmark run; sets $rps and $us (server CPU µs per request).
bench() {
	local n=$1 test=$2 out="$work/bench.csv" c0 c1
	c0=$(cpu_ticks "${pid[$n]}")
	redis-benchmark -p "${port[$n]}" -t "$test" -r "$n" -c "$CLIENTS" -n "$OPS" --csv >"$out" 2>&1 &
	bench_pid=$!
	wait "$bench_pid" || die "redis-benchmark failed: $(cat "$out")"
	bench_pid=""
	c1=$(cpu_ticks "${pid[$n]}")
	rps=$(awk -F'"' -v t="${test^^}" '$2 == t { print $4 }' "$out")
	[[ -n $rps ]] || die "no $test result: $(cat "$out")"
	us=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$OPS" 'BEGIN { printf "%.1f", c * 1e6 / hz / n }')
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A rss_loaded samples cpu
for n in $SIZES; do
	start "$n"
	preload "$n"
	wait_idle "${pid[$n]}"
	rss_loaded[$n]=$(rss_mib "${pid[$n]}")
done

for run in $(seq "$RUNS"); do
	for test in set get; do
		for n in $SIZES; do
			wait_idle "${pid[$n]}"
			bench "$n" "$test"
			samples[$n,$test]="${samples[$n,$test]:-} $rps"
			cpu[$n,$test]="${cpu[$n,$test]:-} $us"
			echo "  run $run  $(printf '%-4s %10s keys %10s req/s %6s us/req' "$test" "$n" "$rps" "$us")" >&2
		done
	done
done

base=${SIZES%% *}
missed=0
echo
echo "nokv-redis at scale: redis-benchmark -t set,get -r SIZE -c $CLIENTS -n $OPS, median of $RUNS; --sync $NOKV_SYNC${NOKV_ARGS:+ $NOKV_ARGS}"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%10s %10s %10s %8s %8s %10s %10s %8s %8s %9s %9s\n' keys "SET/s" "GET/s" "SET us" "GET us" "SET ratio" "GET ratio" "RSS MiB" "end MiB" "data MiB" ""
for n in $SIZES; do
	# shellcheck disable=SC2086
	s=$(median ${samples[$n,set]}) g=$(median ${samples[$n,get]})
	# shellcheck disable=SC2086
	su=$(median ${cpu[$n,set]}) gu=$(median ${cpu[$n,get]})
	[[ $n == "$base" ]] && { bs=$s bg=$g; }
	rs=$(awk -v a="$s" -v b="$bs" 'BEGIN { printf "%.2f", a / b }')
	rg=$(awk -v a="$g" -v b="$bg" 'BEGIN { printf "%.2f", a / b }')
	verdict=""
	if [[ $n != "$base" ]]; then
		if awk -v a="$rs" -v b="$rg" -v t="$TARGET" 'BEGIN { exit !(a >= t && b >= t) }'; then
			verdict="PASS"
		else
			verdict="MISS"
			missed=1
		fi
	fi
	du=$(du -sm "$work/$n/data" | cut -f1)
	printf '%10s %10s %10s %8s %8s %10s %10s %8s %8s %9s %9s\n' "$n" "$s" "$g" "$su" "$gu" "$rs" "$rg" "${rss_loaded[$n]}" "$(rss_mib "${pid[$n]}")" "$du" "$verdict"
done
((missed == 0)) || exit 3
