#!/usr/bin/env bash
# bench-collections.sh — hashes, lists, sets (and sorted sets) of nokv-redis
# side by side with Redis.
#
# Same method as scripts/bench-embedded.sh: every server runs at once, each on
# a free loopback port with a fresh directory, and every test runs against each
# server before the next test, so that load from elsewhere on the machine
# skews all columns alike:
#   nokv              nokv-redis, embedded backend, --sync always
#   redis-aof-always  redis-server --appendonly yes --appendfsync always --save ''
#   redis-memory      redis-server --save '' --appendonly no
#   nokv-raft         (RAFT=1) nokv-redis --backend raft over nokv-pd and three
#                     nokv-store, started as scripts/bench-cluster.sh does
# The tests are redis-benchmark's (TESTS, default
# lpush,rpush,lpop,rpop,sadd,hset,spop,lrange_100,zadd,zpopmin), run with -r
# (KEYSPACE, default 100000) so that HSET/SADD/ZADD add distinct fields and
# members. A test whose command a server answers "unknown command" is
# marked "unknown" for that server instead of measured (redis-benchmark
# would count the error replies as requests).
#
# Two tables: requests/sec, and server CPU µs per request (user+system time of
# the server's processes from /proc, summed over PD, stores and gateway for
# nokv-raft: the figure of merit while the machine is shared). Ratios:
# writes nokv/redis-aof-always (target WRITE_TARGET 0.8), reads (LRANGE_*)
# nokv/redis-memory (target READ_TARGET 0.6); nokv-raft's are printed
# against the same baselines, without a target.
#
# SIZE=1 then measures memory and disk per element: a hash of SIZE_N
# (1000000) fields, a set of SIZE_N members and a list of SIZE_N elements
# (field/member/element "e<i>", hash value "v<i>"), each loaded with RPUSH/
# HSET/SADD of 1000 elements per command into a fresh server; reported are
# the RSS growth of the server's processes and the disk growth of its
# directories (for nokv after a restart, so the memtable is flushed; for
# nokv-raft summed over the three stores, i.e. three replicas), per element.
#
# Environment: N=100000 requests per test (RAFT_N=20000 for nokv-raft;
# SPOP_N=20000 for spop, a tenth of that for nokv-raft: each request is a cluster transaction),
# CLIENTS=50, RUNS=1 (median of RUNS), KEYSPACE=100000, TESTS, RAFT=0, SIZE=0,
# SIZE_N=1000000 (RAFT_SIZE_N=100000: a raft HSET reads each field first), TARGETS (default "nokv redis-aof-always redis-memory",
# plus nokv-raft with RAFT=1), BENCH_DIR, KEEP=1, NOKV_BIN (a prebuilt
# nokv-redis; with RAFT=1 the other binaries are built), BENCH_TIMEOUT=600.
# Exit status: 0 when every target is met, 3 when one is missed.
set -euo pipefail

N=${N:-100000}
RAFT_N=${RAFT_N:-20000}
# SPOP on nokv pops from a uniform sample of the set: the reservoir the
# set's SADDs kept (4 096 members), then samples drawn by a scan of every
# member (docs/architecture.md, "Pop batches"). 20 000 pops of the ~63 000
# members SADD leaves: every pop finds a member, and the server's CPU over
# them is ~50 of /proc's 10 ms ticks per µs of a request's cost (the 2 000
# of the figures on record before 2026-12-07 were ±5 µs a request).
SPOP_N=${SPOP_N:-20000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-1}
RANDOM_KEYS=${KEYSPACE:-100000}
TESTS=${TESTS:-lpush,rpush,lpop,rpop,sadd,hset,spop,lrange_100,zadd,zpopmin}
RAFT=${RAFT:-0}
SIZE=${SIZE:-0}
SIZE_N=${SIZE_N:-1000000}
RAFT_SIZE_N=${RAFT_SIZE_N:-100000}
WRITE_TARGET=${WRITE_TARGET:-0.8}
READ_TARGET=${READ_TARGET:-0.6}
KEEP=${KEEP:-0}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
default_targets="nokv redis-aof-always redis-memory"
if [[ $RAFT == 1 ]]; then
	default_targets+=" nokv-raft"
fi
TARGETS=${TARGETS:-$default_targets}

die() {
	echo "bench-collections: $*" >&2
	exit 1
}

for tool in redis-server redis-benchmark redis-cli; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH"
done

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/nokv-bench-coll.XXXXXX")
# server_pids[NAME]: the space-separated pids of a server's processes (the
# first is the one clients talk to); server_port[NAME]: its client port.
declare -A server_pids server_port server_dirs
bench_pid=""
CLK_TCK=$(getconf CLK_TCK)

stop_pid() {
	local pid=$1
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_server() {
	local pid pids=${server_pids[$1]:-}
	# The gateway (first) before the stores, the stores before PD.
	for pid in $pids; do
		stop_pid "$pid"
	done
	unset "server_pids[$1]"
}

cleanup() {
	local rc=$?
	if [[ -n $bench_pid ]]; then
		kill "$bench_pid" 2>/dev/null || true
		wait "$bench_pid" 2>/dev/null || true
	fi
	for name in "${!server_pids[@]}"; do
		stop_server "$name"
	done
	if [[ $KEEP == 1 ]]; then
		echo "bench-collections: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


source "$script_dir/lib/ports.sh"

# wait_ready NAME LOG: until the server answers PING (300 s: a cluster starts slowly).
wait_ready() {
	local name=$1 log=$2 port=${server_port[$1]} pid
	for _ in $(seq 3000); do
		for pid in ${server_pids[$name]}; do
			if ! kill -0 "$pid" 2>/dev/null; then
				tail -n 30 "$log" >&2
				die "$name (pid $pid) exited during startup (log above)"
			fi
		done
		if [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]]; then
			return
		fi
		sleep 0.1
	done
	tail -n 30 "$log" >&2
	die "$name (port $port) did not answer PING (log above)"
}

build() {
	if [[ -n ${NOKV_BIN:-} ]]; then
		nokv_bin=$NOKV_BIN
	else
		nokv_bin="$work/bin/nokv-redis"
		echo "building nokv-redis ..." >&2
		(cd "$repo_root" && go build -o "$nokv_bin" ./services/gateway/cmd/nokv-redis)
	fi
	if [[ " $TARGETS " == *" nokv-raft "* ]]; then
		echo "building nokv-pd, nokv-store, nokv-config ..." >&2
		(cd "$repo_root" && go build -o "$work/bin/nokv-pd" ./services/pd/cmd/nokv-pd &&
			go build -o "$work/bin/nokv-store" ./services/store/cmd/nokv-store &&
			go build -o "$work/bin/nokv-config" ./services/tools/cmd/nokv-config)
	fi
}

# start_server NAME [SUFFIX]: start target NAME with fresh directories
# (SUFFIX tells the size runs' directories apart).
start_server() {
	local name=$1 dir="$work/$1${2:-}" log="$work/$1${2:-}.log" port
	rm -rf "$dir"
	mkdir -p "$dir"
	port=$(free_port)
	server_port[$name]=$port
	server_dirs[$name]=$dir
	case $name in
	nokv)
		"$nokv_bin" --addr "127.0.0.1:$port" --workdir "$dir" --sync always --log-level warn >"$log" 2>&1 &
		server_pids[$name]=$!
		;;
	redis-aof-always)
		redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
			--appendonly yes --appendfsync always --daemonize no --logfile "" >"$log" 2>&1 &
		server_pids[$name]=$!
		;;
	redis-memory)
		redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --save '' \
			--appendonly no --daemonize no --logfile "" >"$log" 2>&1 &
		server_pids[$name]=$!
		;;
	nokv-raft)
		local pd s1 s2 s3 config=$dir/cluster.json pids="" id
		pd=127.0.0.1:$(free_port) s1=127.0.0.1:$(free_port) s2=127.0.0.1:$(free_port) s3=127.0.0.1:$(free_port)
		jq --arg pd "$pd" --arg dir "$dir" --arg s1 "$s1" --arg s2 "$s2" --arg s3 "$s3" '
		  .pd.addr = $pd | .pd.work_dir = ($dir + "/pd")
		  | .stores |= map(. as $s | ([$s1, $s2, $s3][$s.store_id - 1]) as $a | .listen_addr = $a | .addr = $a)
		' "$repo_root/raft_config.example.json" >"$config"
		"$work/bin/nokv-pd" --config "$config" --workdir "$dir/pd" >"$dir/pd.log" 2>&1 &
		local pd_pid=$!
		for id in 1 2 3; do
			"$work/bin/nokv-store" --config "$config" --store-id "$id" --workdir "$dir/store-$id" >"$dir/store-$id.log" 2>&1 &
			pids="$pids $!"
		done
		"$work/bin/nokv-config" status --pd-addr "$pd" --wait 120s >"$dir/status.txt" 2>&1 ||
			{ cat "$dir/status.txt" >&2; die "the NoKV cluster was not ready within 120s"; }
		"$nokv_bin" --raft-config "$config" --addr "127.0.0.1:$port" --log-level warn >"$log" 2>&1 &
		server_pids[$name]="$! $pids $pd_pid"
		;;
	*) die "unknown target $name" ;;
	esac
	wait_ready "$name" "$log"
	echo "started $name on 127.0.0.1:$port" >&2
}

# cpu_ticks NAME: user+system clock ticks of the server's processes so far.
cpu_ticks() {
	local pid t=0 f
	for pid in ${server_pids[$1]}; do
		# Fields 14 and 15 after the command name (which may hold spaces).
		f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}

# rss_kb NAME: resident memory of the server's processes, KiB.
rss_kb() {
	local pid t=0 r
	for pid in ${server_pids[$1]}; do
		r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
		t=$((t + ${r:-0}))
	done
	echo "$t"
}

# probe NAME TEST: "ok", or "unknown" when the server does not know the
# test's command.
probe() {
	local cmd
	case $1 in
	lpush | rpush | lpop | rpop | spop | sadd | hset | zadd | zpopmin) cmd=${1^^} ;;
	lrange_*) cmd=LRANGE ;;
	*) cmd=${1^^} ;;
	esac
	# COMMAND INFO answers a nil entry for an unknown command.
	local out
	out=$(redis-cli -p "${server_port[$2]}" COMMAND INFO "$cmd" 2>&1 | head -1)
	if [[ -z $out || $out == "(nil)" || $out == *"unknown"* ]]; then
		echo unknown
	else
		echo ok
	fi
}

# bench NAME TEST N: one redis-benchmark test; sets $result (req/s) and
# $cpu (server CPU µs per request).
bench() {
	local name=$1 test=$2 n=$3 out="$work/bench.csv" before after t=0
	before=$(cpu_ticks "$name")
	redis-benchmark -h 127.0.0.1 -p "${server_port[$name]}" -t "$test" -c "$CLIENTS" -n "$n" \
		-r "$RANDOM_KEYS" --csv >"$out" 2>&1 &
	bench_pid=$!
	while kill -0 "$bench_pid" 2>/dev/null; do
		if ((t >= BENCH_TIMEOUT * 10)); then
			kill "$bench_pid" 2>/dev/null || true
			die "redis-benchmark $test against $name still running after ${BENCH_TIMEOUT}s"
		fi
		sleep 0.1
		t=$((t + 1))
	done
	wait "$bench_pid" || die "redis-benchmark against $name failed: $(cat "$out")"
	bench_pid=""
	after=$(cpu_ticks "$name")
	# The CSV's test names are upper case, LRANGE_100 followed by a comment.
	result=$(awk -F'"' -v t="${test^^}" 'index($2, t) == 1 { print $4; found = 1 } END { exit !found }' "$out") ||
		die "no $test result in redis-benchmark output: $(cat "$out")"
	# lrange_* runs an LPUSH first (its CPU is counted too; the LPUSH is
	# 1 of 2 commands when n is the same, so halve).
	local reqs=$n
	if [[ $test == lrange_* ]]; then
		reqs=$((2 * n))
	fi
	cpu=$(awk -v d="$((after - before))" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.1f", d * 1e6 / hz / n }')
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {
	if [[ -z $1 || -z $2 || $1 == unknown || $2 == unknown ]]; then
		echo "-"
	else
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	fi
}

mkdir -p "$work/bin"
build
for target in $TARGETS; do
	start_server "$target"
done

IFS=, read -r -a tests <<<"$TESTS"
declare -A samples cpus rps cpuus status
echo "N=$N (nokv-raft $RAFT_N), clients=$CLIENTS, -r $RANDOM_KEYS, runs=$RUNS" >&2
for target in $TARGETS; do
	for test in "${tests[@]}"; do
		status[$target,$test]=$(probe "$test" "$target")
	done
done
for run in $(seq "$RUNS"); do
	for test in "${tests[@]}"; do
		for target in $TARGETS; do
			if [[ ${status[$target,$test]} == unknown ]]; then
				continue
			fi
			n=$N
			[[ $target == nokv-raft ]] && n=$RAFT_N
			[[ $test == spop ]] && n=$((n < SPOP_N ? n : SPOP_N))
			[[ $test == spop && $target == nokv-raft ]] && n=$((n / 10 > 0 ? n / 10 : 1))
			bench "$target" "$test" "$n"
			samples[$target,$test]="${samples[$target,$test]:-} $result"
			cpus[$target,$test]="${cpus[$target,$test]:-} $cpu"
			echo "  run $run  $(printf '%-11s %-17s %12s req/s %8s µs CPU/req' "$test" "$target" "$result" "$cpu")" >&2
		done
	done
done
for target in $TARGETS; do
	for test in "${tests[@]}"; do
		if [[ ${status[$target,$test]} == unknown ]]; then
			rps[$target,$test]=unknown cpuus[$target,$test]=unknown
		else
			# shellcheck disable=SC2086
			rps[$target,$test]=$(median ${samples[$target,$test]})
			# shellcheck disable=SC2086
			cpuus[$target,$test]=$(median ${cpus[$target,$test]})
		fi
	done
done

missed=0
echo
echo "nokv-redis collections vs Redis: redis-benchmark -c $CLIENTS -n $N -r $RANDOM_KEYS (nokv-raft -n $RAFT_N; spop -n $SPOP_N, nokv-raft a tenth), median of $RUNS"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr), redis $(redis-server --version | awk '{ print $3 }' | tr -d 'v=')"
for table in rps cpu; do
	echo
	if [[ $table == rps ]]; then
		echo "requests/sec (ratio: nokv/baseline; writes vs redis-aof-always >= $WRITE_TARGET, reads vs redis-memory >= $READ_TARGET)"
	else
		echo "server CPU µs per request (ratio: baseline/nokv, higher is better for nokv)"
	fi
	header=$(printf '%-11s' test)
	for target in $TARGETS; do header+=$(printf ' %17s' "$target"); done
	header+=$(printf ' %7s' ratio)
	[[ " $TARGETS " == *" nokv-raft "* ]] && header+=$(printf ' %10s' raft-ratio)
	echo "$header  vs"
	for test in "${tests[@]}"; do
		line=$(printf '%-11s' "$test")
		for target in $TARGETS; do
			if [[ $table == rps ]]; then v=${rps[$target,$test]}; else v=${cpuus[$target,$test]}; fi
			line+=$(printf ' %17s' "${v:--}")
		done
		if [[ $test == lrange_* ]]; then base=redis-memory goal=$READ_TARGET; else base=redis-aof-always goal=$WRITE_TARGET; fi
		if [[ $table == rps ]]; then
			r=$(ratio "${rps[nokv,$test]:-}" "${rps[$base,$test]:-}")
			rr=$(ratio "${rps[nokv-raft,$test]:-}" "${rps[$base,$test]:-}")
		else
			r=$(ratio "${cpuus[$base,$test]:-}" "${cpuus[nokv,$test]:-}")
			rr=$(ratio "${cpuus[$base,$test]:-}" "${cpuus[nokv-raft,$test]:-}")
		fi
		line+=$(printf ' %7s' "$r")
		[[ " $TARGETS " == *" nokv-raft "* ]] && line+=$(printf ' %10s' "$rr")
		verdict=""
		if [[ $table == rps && $r != - ]]; then
			if awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r >= g) }'; then
				verdict="PASS"
			else
				verdict="MISS"
				missed=1
			fi
		fi
		echo "$line  $base $verdict"
	done
done

if [[ $SIZE == 1 ]]; then
	for target in $TARGETS; do
		stop_server "$target"
	done
	# gen CMD KEY: SIZE_N elements, 1000 per command, as RESP for redis-cli --pipe.
	gen() {
		awk -v n="$size_n" -v cmd="$1" -v key="$2" 'BEGIN {
			per = (cmd == "HSET") ? 2 : 1
			for (i = 0; i < n; i += 1000) {
				m = (n - i < 1000) ? n - i : 1000
				printf "*%d\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", 2 + m * per, length(cmd), cmd, length(key), key
				for (j = i; j < i + m; j++) {
					e = "e" j
					printf "$%d\r\n%s\r\n", length(e), e
					if (per == 2) { v = "v" j; printf "$%d\r\n%s\r\n", length(v), v }
				}
			}
		}'
	}
	du_kb() { du -sk "$1" | awk '{ print $1 }'; }
	echo
	echo "memory and disk per element (e<i>; hash values v<i>), bytes: $SIZE_N elements, nokv-raft $RAFT_SIZE_N (disk: three replicas)"
	printf '%-17s %-5s %14s %14s %18s\n' target type "RSS/elem" "disk/elem" "disk after restart"
	for target in $TARGETS; do
		size_n=$SIZE_N
		[[ $target == nokv-raft ]] && size_n=$RAFT_SIZE_N
		for typ in hash set list; do
			start_server "$target" "-size-$typ"
			rss0=$(rss_kb "$target")
			disk0=$(du_kb "${server_dirs[$target]}")
			case $typ in
			hash) cmd=HSET ;;
			set) cmd=SADD ;;
			list) cmd=RPUSH ;;
			esac
			gen "$cmd" big | redis-cli -p "${server_port[$target]}" --pipe >"$work/pipe.log" 2>&1 ||
				die "loading $typ into $target failed: $(cat "$work/pipe.log")"
			rss1=$(rss_kb "$target")
			disk1=$(du_kb "${server_dirs[$target]}")
			dir=${server_dirs[$target]}
			restart="-"
			if [[ $target == nokv ]]; then
				# Restarted, its memtable is in sstables; the WAL is recycled.
				stop_server "$target"
				"$nokv_bin" --addr "127.0.0.1:${server_port[$target]}" --workdir "$dir" --sync always --log-level warn >>"$work/$target-size-$typ.log" 2>&1 &
				server_pids[$target]=$!
				wait_ready "$target" "$work/$target-size-$typ.log"
				sleep 5 # the flush at open and the old WAL's removal
				restart=$(awk -v d="$(( $(du_kb "$dir") - disk0 ))" -v n="$size_n" 'BEGIN { printf "%.1f", d * 1024 / n }')
			fi
			printf '%-17s %-5s %14s %14s %18s\n' "$target" "$typ" \
				"$(awk -v d="$((rss1 - rss0))" -v n="$size_n" 'BEGIN { printf "%.1f", d * 1024 / n }')" \
				"$(awk -v d="$((disk1 - disk0))" -v n="$size_n" 'BEGIN { printf "%.1f", d * 1024 / n }')" "$restart"
			stop_server "$target"
		done
	done
fi

if ((missed)); then
	exit 3
fi
