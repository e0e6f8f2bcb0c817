#!/usr/bin/env bash
# bench-embedded.sh — compare nokv-redis (embedded Pebble backend) with Redis.
#
# Builds nokv-redis into a temporary directory and runs
#   redis-benchmark -t set,get -c $CLIENTS -n $N            (no pipelining)
#   redis-benchmark -t set,get -c $CLIENTS -n $N -P $PIPELINE
# against three servers, each on a free loopback port with a fresh data directory:
#   nokv              nokv-redis --sync always (a reply means the write is fsynced)
#   redis-aof-always  redis-server --appendonly yes --appendfsync always --save ''
#   redis-memory      redis-server --save '' --appendonly no
# The servers run side by side but only one is benchmarked at a time; the tests
# are interleaved (each test runs against every server before the next test), so
# that load from elsewhere on the machine skews all columns alike.
#
# It prints requests/sec in a table, the ratios nokv/redis-aof-always for the SET
# rows and nokv/redis-memory for the GET rows, and PASS/MISS against the targets:
#   durable SET >= SET_TARGET (1.0) x redis-aof-always
#   GET         >= GET_TARGET (0.8) x redis-memory
#
# redis-benchmark's default single key is kept on purpose (no -r), so that the
# figures are comparable with the ones in the gateway's performance issue.
#
# Needs only go, redis-server and redis-benchmark. Environment knobs:
#   N=200000          requests per test
#   CLIENTS=50        parallel connections
#   PIPELINE=16       pipeline depth of the pipelined rows
#   RUNS=1            repeat every test RUNS times and report the median
#   NOKV_SYNC=always  nokv-redis --sync policy
#   EXTRA_ARGS=       extra redis-benchmark arguments (e.g. "-d 100" or "-r 100000")
#   TARGETS="nokv redis-aof-always redis-memory"   subset/order of servers to run
#   BENCH_DIR=        parent of the temporary directory (default: $TMPDIR or /tmp);
#                     put it on the disk you want fsync measured on
#   NOKV_BIN=         use this nokv-redis binary instead of building one
#   KEEP=1            keep the temporary directory (binaries, data, server logs)
#   CSV_OUT=FILE      also write the table as CSV to FILE
#   BENCH_TIMEOUT=600 seconds after which one redis-benchmark run is killed (it
#                     spins forever if it loses its server)
# Exit status: 0 when every target is met, 3 when one is missed, other on errors.
set -euo pipefail

N=${N:-200000}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
RUNS=${RUNS:-1}
NOKV_SYNC=${NOKV_SYNC:-always}
EXTRA_ARGS=${EXTRA_ARGS:-}
TARGETS=${TARGETS:-nokv redis-aof-always redis-memory}
SET_TARGET=${SET_TARGET:-1.0}
GET_TARGET=${GET_TARGET:-0.8}
KEEP=${KEEP:-0}
CSV_OUT=${CSV_OUT:-}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}

die() {
	echo "bench-embedded: $*" >&2
	exit 1
}

for tool in redis-server redis-benchmark; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH"
done
if [[ -z ${NOKV_BIN:-} ]]; then
	command -v go >/dev/null || die "go not found in PATH"
fi

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/nokv-bench.XXXXXX")
declare -A server_pid server_port
bench_pid=""
watchdog_pid=""

# stop_server NAME: stop one server, cleanly if it lets us.
stop_server() {
	local pid=${server_pid[$1]:-}
	[[ -n $pid ]] || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	unset "server_pid[$1]"
}

cleanup() {
	local rc=$?
	if [[ -n $bench_pid ]]; then
		kill "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
	if [[ -n $watchdog_pid ]]; then
		kill "$watchdog_pid" 2>/dev/null || true
	fi
	for name in "${!server_pid[@]}"; do
		stop_server "$name"
	done
	if [[ $KEEP == 1 ]]; then
		echo "bench-embedded: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


source "$script_dir/lib/ports.sh"

# wait_ready NAME LOG: wait until server NAME answers PING.
wait_ready() {
	local name=$1 log=$2 port=${server_port[$1]} reply
	for _ in $(seq 100); do
		if ! kill -0 "${server_pid[$name]}" 2>/dev/null; then
			cat "$log" >&2
			die "$name (port $port) exited during startup (log above)"
		fi
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			printf 'PING\r\n' >&3
			reply=""
			read -r -t 2 reply <&3 || true
			exec 3<&- 3>&-
			if [[ $reply == +PONG* ]]; then
				return
			fi
		fi
		sleep 0.1
	done
	cat "$log" >&2
	die "$name (port $port) did not answer PING (log above)"
}

# start_server NAME: start target NAME on a free port with a fresh directory.
start_server() {
	local name=$1 dir="$work/$1" log="$work/$1.log" port
	mkdir -p "$dir"
	port=$(free_port)
	case $name in
	nokv)
		"$nokv_bin" --addr "127.0.0.1:$port" --workdir "$dir" --sync "$NOKV_SYNC" \
			--log-level warn >"$log" 2>&1 &
		;;
	redis-aof-always)
		redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
			--appendonly yes --appendfsync always --daemonize no --logfile "" >"$log" 2>&1 &
		;;
	redis-memory)
		redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
			--appendonly no --daemonize no --logfile "" >"$log" 2>&1 &
		;;
	*) die "unknown target $name" ;;
	esac
	server_pid[$name]=$!
	server_port[$name]=$port
	wait_ready "$name" "$log"
	echo "started $name on 127.0.0.1:$port" >&2
}

# watchdog PID: kill PID once it has run for BENCH_TIMEOUT seconds; returns as soon
# as PID is gone.
watchdog() {
	local t=0
	while kill -0 "$1" 2>/dev/null; do
		if ((t >= BENCH_TIMEOUT)); then
			echo "bench-embedded: redis-benchmark still running after ${BENCH_TIMEOUT}s; killed" >&2
			kill "$1" 2>/dev/null
			return
		fi
		sleep 1
		t=$((t + 1))
	done
}

# bench NAME TEST [ARGS...]: run one redis-benchmark test against server NAME and
# set $result to its requests/sec. It runs in the background so that a signal
# interrupts the script at once.
bench() {
	local name=$1 test=$2 out="$work/bench.csv"
	shift 2
	# shellcheck disable=SC2086 # EXTRA_ARGS is split on purpose
	redis-benchmark -h 127.0.0.1 -p "${server_port[$name]}" -t "$test" -c "$CLIENTS" -n "$N" \
		--csv "$@" $EXTRA_ARGS >"$out" 2>&1 &
	bench_pid=$!
	watchdog "$bench_pid" &
	watchdog_pid=$!
	if ! wait "$bench_pid"; then
		bench_pid=""
		die "redis-benchmark against $name failed: $(cat "$out")"
	fi
	bench_pid=""
	# --csv prints a header line, then "TEST","rps",...
	result=$(awk -F'"' -v t="${test^^}" '$2 == t { print $4; found = 1 } END { exit !found }' "$out") ||
		die "no $test result in redis-benchmark output: $(cat "$out")"
}

# median of the arguments.
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

if [[ -n ${NOKV_BIN:-} ]]; then
	nokv_bin=$NOKV_BIN
else
	nokv_bin="$work/nokv-redis"
	echo "building nokv-redis ..." >&2
	(cd "$repo_root" && go build -o "$nokv_bin" ./services/gateway/cmd/nokv-redis)
fi

for target in $TARGETS; do
	start_server "$target"
done

rows=("SET" "GET" "SET -P$PIPELINE" "GET -P$PIPELINE")
declare -A samples rps
echo "N=$N, clients=$CLIENTS, runs=$RUNS" >&2
for run in $(seq "$RUNS"); do
	for row in "${rows[@]}"; do
		test=${row%% *}
		args=()
		if [[ $row == *-P* ]]; then
			args=(-P "$PIPELINE")
		fi
		for target in $TARGETS; do
			bench "$target" "${test,,}" "${args[@]}"
			samples[$target,$row]="${samples[$target,$row]:-} $result"
			echo "  run $run  $(printf '%-9s %-17s %12s' "$row" "$target" "$result") req/s" >&2
		done
	done
done
for target in $TARGETS; do
	stop_server "$target"
	for row in "${rows[@]}"; do
		# shellcheck disable=SC2086 # split the samples
		rps[$target,$row]=$(median ${samples[$target,$row]})
	done
done

val() { echo "${rps[$1,$2]:-}"; }

# ratio A B: A/B with two decimals, or "-" when either is missing.
ratio() {
	if [[ -z $1 || -z $2 ]]; then
		echo "-"
	else
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	fi
}

missed=0
echo
echo "nokv-redis vs Redis, requests/sec (median of $RUNS): redis-benchmark -t set,get -c $CLIENTS -n $N${EXTRA_ARGS:+ $EXTRA_ARGS}; nokv --sync $NOKV_SYNC"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo ?), $(uname -sr), redis $(redis-server --version | awk '{ print $3 }' | tr -d 'v=')"
echo
printf '%-10s %12s %18s %14s %8s %-24s %s\n' "test" "nokv" "redis-aof-always" "redis-memory" "ratio" "vs" "target"
if [[ -n $CSV_OUT ]]; then
	echo "test,nokv,redis-aof-always,redis-memory,ratio,vs,result" >"$CSV_OUT"
fi
for row in "${rows[@]}"; do
	nokv=$(val nokv "$row")
	aof=$(val redis-aof-always "$row")
	mem=$(val redis-memory "$row")
	if [[ $row == SET* ]]; then
		base=$aof vs="redis-aof-always" goal=$SET_TARGET
	else
		base=$mem vs="redis-memory" goal=$GET_TARGET
	fi
	r=$(ratio "$nokv" "$base")
	if [[ $r == - ]]; then
		verdict="-"
	elif awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r >= g) }'; then
		verdict="PASS (>= ${goal}x)"
	else
		verdict="MISS (< ${goal}x)"
		missed=1
	fi
	printf '%-10s %12s %18s %14s %8s %-24s %s\n' "$row" "${nokv:--}" "${aof:--}" "${mem:--}" "$r" "nokv/$vs" "$verdict"
	if [[ -n $CSV_OUT ]]; then
		echo "$row,$nokv,$aof,$mem,$r,$vs,${verdict%% *}" >>"$CSV_OUT"
	fi
done

if ((missed)); then
	exit 3
fi
