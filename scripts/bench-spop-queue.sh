#!/usr/bin/env bash
# bench-spop-queue.sh — SPOP on a set written between pops (a job queue:
# SADD of a new member, SPOP, from many clients), on the raft backend.
#
# Starts nokv-pd, three nokv-store and nokv-redis --backend raft as
# scripts/bench-collections.sh does (RAFT=1), loads a set of SET_N (30000)
# members "m:<i>" with SADDs of 1000 members, pops one member (the set's
# first sample), then for each of RUNS runs:
#   queue  two redis-benchmarks at once, CLIENTS/2 clients each: N SADDs of
#          new members and N SPOPs of the set (the set stays near its size)
#   sadd   redis-benchmark -c CLIENTS -n N SADD of new members (reference)
# and prints the server CPU µs (user+system of PD, stores and gateway, from
# /proc) per request, and per SPOP net of the SADDs (queue's CPU less N
# times sadd's per-request CPU, over N), with the gateway's pop counters
# (/debug/vars nokv_coll_pops, nokv_coll_random, nokv_raft_read_ahead) over
# all runs.
#
# Environment: SET_N=30000, N=2000, CLIENTS=50, RUNS=3, BINDIR (prebuilt
# nokv-redis, nokv-pd, nokv-store, nokv-config; else built from this tree),
# KEEP=1 keeps the work directory.
set -euo pipefail

SET_N=${SET_N:-30000}
N=${N:-2000}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
KEEP=${KEEP:-0}

die() {
	echo "bench-spop-queue: $*" >&2
	exit 1
}
for tool in redis-benchmark redis-cli jq curl; do
	command -v "$tool" >/dev/null || die "$tool not found in PATH"
done

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(cd "$script_dir/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/nokv-bench-spopq.XXXXXX")
pids=""
CLK_TCK=$(getconf CLK_TCK)

cleanup() {
	local rc=$? pid
	# The gateway (first) before the stores, the stores before PD.
	for pid in $pids; do
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ $KEEP == 1 ]]; then echo "bench-spop-queue: kept $work" >&2; else rm -rf "$work"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

source "$script_dir/lib/ports.sh"

bin=${BINDIR:-$work/bin}
if [[ -z ${BINDIR:-} ]]; then
	mkdir -p "$bin"
	echo "building ..." >&2
	(cd "$repo_root" && go build -o "$bin/nokv-redis" ./services/gateway/cmd/nokv-redis &&
		go build -o "$bin/nokv-pd" ./services/pd/cmd/nokv-pd &&
		go build -o "$bin/nokv-store" ./services/store/cmd/nokv-store &&
		go build -o "$bin/nokv-config" ./services/tools/cmd/nokv-config)
fi

dir=$work/cluster
mkdir -p "$dir"
pd=127.0.0.1:$(free_port) s1=127.0.0.1:$(free_port) s2=127.0.0.1:$(free_port) s3=127.0.0.1:$(free_port)
port=$(free_port) mport=$(free_port)
config=$dir/cluster.json
jq --arg pd "$pd" --arg dir "$dir" --arg s1 "$s1" --arg s2 "$s2" --arg s3 "$s3" '
  .pd.addr = $pd | .pd.work_dir = ($dir + "/pd")
  | .stores |= map(. as $s | ([$s1, $s2, $s3][$s.store_id - 1]) as $a | .listen_addr = $a | .addr = $a)
' "$repo_root/raft_config.example.json" >"$config"
"$bin/nokv-pd" --config "$config" --workdir "$dir/pd" >"$dir/pd.log" 2>&1 &
pd_pid=$!
stores=""
for id in 1 2 3; do
	"$bin/nokv-store" --config "$config" --store-id "$id" --workdir "$dir/store-$id" >"$dir/store-$id.log" 2>&1 &
	stores="$stores $!"
done
pids="$stores $pd_pid"
"$bin/nokv-config" status --pd-addr "$pd" --wait 120s >"$dir/status.txt" 2>&1 ||
	{ cat "$dir/status.txt" >&2; die "the NoKV cluster was not ready within 120s"; }
"$bin/nokv-redis" --raft-config "$config" --addr "127.0.0.1:$port" --metrics-addr "127.0.0.1:$mport" \
	--log-level warn >"$dir/gateway.log" 2>&1 &
pids="$! $pids"
for _ in $(seq 3000); do
	[[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] && break
	sleep 0.1
done
[[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] || die "the gateway did not answer PING"

cpu_ticks() {
	local pid t=0 f
	for pid in $pids; do
		f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
		t=$((t + $(echo "$f" | awk '{ print $12 + $13 }')))
	done
	echo "$t"
}
var() { curl -s "http://127.0.0.1:$mport/debug/vars" | jq -r ".$1.$2 // 0"; }

echo "loading $SET_N members ..." >&2
awk -v n="$SET_N" 'BEGIN {
	for (i = 0; i < n; i += 1000) {
		m = (n - i < 1000) ? n - i : 1000
		printf "*%d\r\n$4\r\nSADD\r\n$1\r\nq\r\n", 2 + m
		for (j = i; j < i + m; j++) { e = "m:" j; printf "$%d\r\n%s\r\n", length(e), e }
	}
}' | redis-cli -p "$port" --pipe >"$work/pipe.log" 2>&1 || die "load failed: $(cat "$work/pipe.log")"
redis-cli -p "$port" SPOP q >/dev/null

run_bench() { # CLIENTS N ARGS...: redis-benchmark of one command, new members by __rand_int__
	local c=$1 n=$2
	shift 2
	redis-benchmark -h 127.0.0.1 -p "$port" -c "$c" -n "$n" -r 1000000000 --csv "$@" >>"$work/bench.csv" 2>&1
}

printf '%-4s %10s %14s %14s %16s\n' run "SCARD" "SADD µs/req" "queue µs/req" "SPOP µs (net)"
hits0=$(var nokv_coll_pops batch_hits) reads0=$(var nokv_coll_pops batch_reads)
ver0=$(var nokv_coll_pops sample_verified) gone0=$(var nokv_coll_pops sample_gone)
walks0=$(var nokv_coll_random walks) scanned0=$(var nokv_coll_random subkeys_scanned)
rakeys0=$(var nokv_raft_read_ahead keys) rahits0=$(var nokv_raft_read_ahead hits)
pops=0
for run in $(seq "$RUNS"); do
	t0=$(cpu_ticks)
	run_bench "$((CLIENTS / 2))" "$N" SADD q "b:$run:__rand_int__" &
	b1=$!
	run_bench "$((CLIENTS / 2))" "$N" SPOP q &
	b2=$!
	wait "$b1" "$b2" || die "redis-benchmark failed: $(tail -5 "$work/bench.csv")"
	t1=$(cpu_ticks)
	pops=$((pops + N))
	# The SADD reference after the queue: its adds (N) then make the
	# sample stale before the next run's first pop, which samples again.
	run_bench "$CLIENTS" "$N" SADD q "a:$run:__rand_int__"
	t2=$(cpu_ticks)
	sadd=$(awk -v d="$((t2 - t1))" -v hz="$CLK_TCK" -v n="$N" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')
	queue=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$((2 * N))" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')
	net=$(awk -v d="$((t1 - t0))" -v hz="$CLK_TCK" -v n="$N" -v s="$sadd" 'BEGIN { printf "%.0f", d * 1e6 / hz / n - s }')
	printf '%-4s %10s %14s %14s %16s\n' "$run" "$(redis-cli -p "$port" SCARD q)" "$sadd" "$queue" "$net"
done
echo "over the runs' $pops SPOPs (and the SADD runs): samples drawn $(($(var nokv_coll_pops batch_reads) - reads0)), pops from a kept sample $(($(var nokv_coll_pops batch_hits) - hits0)), members verified $(($(var nokv_coll_pops sample_verified) - ver0)) (gone $(($(var nokv_coll_pops sample_gone) - gone0))), walks $(($(var nokv_coll_random walks) - walks0)), sub-keys scanned $(($(var nokv_coll_random subkeys_scanned) - scanned0)), sub-keys read ahead $(($(var nokv_raft_read_ahead keys) - rakeys0)) (reads they answered $(($(var nokv_raft_read_ahead hits) - rahits0)))"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
