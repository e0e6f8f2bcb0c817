#!/usr/bin/env bash
# bench-zpop.sh — sorted-set pops against one nokv-redis (embedded backend):
# ZADD of MEMBERS (20000) members "m:<i>" scored i to myzset, then RUNS (3)
# runs of `redis-benchmark -n POPS -c 50 <CMD> myzset` (POPS 2000, CMD zpopmin
# or zpopmax), each reported as pops/s and the server's CPU µs per pop
# (utime+stime from /proc: the figure of merit on a shared machine). Pops
# that stepped over earlier pops' deletions made each run slower than the
# last (docs/benchmarks.md, "Sorted-set pops after the index marks").
#
# Usage: scripts/bench-zpop.sh [NOKV_BIN] [CMD]; PORT (16390).
set -euo pipefail
bin=${1:-}
cmd=${2:-zpopmin}
port=${PORT:-16390}
members=${MEMBERS:-20000}
pops=${POPS:-2000}
runs=${RUNS:-3}
for tool in redis-benchmark redis-cli; do
	command -v "$tool" >/dev/null || { echo "bench-zpop: $tool not found" >&2; exit 1; }
done
dir=$(mktemp -d "${TMPDIR:-/tmp}/nokv-bench-zpop.XXXXXX")
if [[ -z $bin ]]; then
	repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	bin=$dir/nokv-redis
	(cd "$repo_root/services/gateway" && go build -o "$bin" ./cmd/nokv-redis)
fi
"$bin" --addr "127.0.0.1:$port" --workdir "$dir/data" >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	redis-cli -p "$port" ping >/dev/null 2>&1 && break
	sleep 0.1
done
for ((b = 0; b < members; b += 1000)); do
	args=()
	for ((j = b; j < b + 1000 && j < members; j++)); do
		args+=("$j" "m:$j")
	done
	redis-cli -p "$port" zadd myzset "${args[@]}" >/dev/null
done
echo "myzset: $(redis-cli -p "$port" zcard myzset) members"
tck=$(getconf CLK_TCK)
for ((run = 1; run <= runs; run++)); do
	read -r u s < <(awk '{print $14, $15}' "/proc/$pid/stat")
	out=$(redis-benchmark -p "$port" -n "$pops" -c 50 -q "$cmd" myzset 2>&1 | tr '\r' '\n' | grep -a "requests per second" | tail -1)
	read -r u2 s2 < <(awk '{print $14, $15}' "/proc/$pid/stat")
	echo "run $run: $out; server CPU $(((u2 - u + s2 - s) * 1000000 / tck / pops)) µs/pop"
done
