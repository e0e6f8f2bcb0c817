#!/usr/bin/env bash
# Measures the NoKV cluster against a three-member etcd on the same machine,
# side by side in one run (issue 14). It builds the binaries, starts nokv-pd,
# three nokv-store and one nokv-redis --backend raft, and three etcd members,
# all on free 127.0.0.1 ports under a temporary directory, then runs each
# workload against NoKV and against etcd one after the other (the order flips
# every run), so background load on the machine skews both alike:
#
#   set   redis-benchmark -t set -r KEYSPACE        vs  etcd put of random keys
#   get   redis-benchmark -t get -r KEYSPACE        vs  etcd linearizable get
#   incr  redis-benchmark INCR on one key (hot key) vs  etcd get + CAS txn on one key
#
# NoKV is driven by redis-benchmark, etcd by services/tools/cmd/nokv-bench
# (etcd's own benchmark tool is not packaged), both with CLIENTS concurrent
# clients issuing one request at a time. Each row reports ops/s, p50 and p99
# latency and the ratio NoKV/etcd, and then the CPU every server process spent
# per operation (utime+stime from /proc/<pid>/stat over the workload, divided
# by the operations): the figure of merit of issue 14.
#
#   scripts/bench-cluster.sh                  N=100000 operations per workload, one run
#   QUICK=1 scripts/bench-cluster.sh          smoke test: N=5000
#   RUNS=3 N=200000 scripts/bench-cluster.sh  three runs; the summary gives medians
#
# Environment:
#   N          operations per workload and system     [100000; 5000 with QUICK=1]
#   INCR_N     operations of the hot-key workload     [N/10: one key is slow on both]
#   CLIENTS    concurrent clients                      [50]
#   RUNS       runs of every workload                  [1]
#   KEYSPACE   random keys are drawn from this many    [100000]
#   WORKLOADS  which to run, space-separated           [set get incr]
#   KEEP=1     keep the temporary directory (data, logs, results)
#   BENCH_DIR  use this directory instead of a new temporary one
#   SYSTEMS    which systems to measure                [nokv etcd]; "nokv" skips etcd
#   PROFILE    seconds of CPU profile to take of the gateway and every store
#              during each NoKV workload (net/http/pprof on their metrics
#              ports), saved as $dir/profiles/WORKLOAD-RUN-PROC.pprof; the
#              workload must last longer (raise N). Implies KEEP=1. [0: none]
#
# Needs Go, redis-benchmark (Debian's redis-tools) and etcd (Debian's
# etcd-server, 3.4): if etcd is missing the script installs etcd-server with
# apt-get when it can (root or sudo), else it stops and says so. It is not run
# in CI. Numbers are only as good as the machine is quiet: on a machine shared
# with other work, treat them as a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

quick=${QUICK:-0}
if [ "$quick" = 1 ]; then n=${N:-5000}; else n=${N:-100000}; fi
clients=${CLIENTS:-50}
runs=${RUNS:-1}
keyspace=${KEYSPACE:-100000}
workloads=${WORKLOADS:-set get incr}
systems=${SYSTEMS:-nokv etcd}
profile=${PROFILE:-0}
[ "$profile" != 0 ] && KEEP=1
incr_n=${INCR_N:-$((n / 10))}

die() { echo "bench-cluster.sh: $*" >&2; exit 1; }

command -v go >/dev/null || die "needs Go"
command -v redis-benchmark >/dev/null || die "needs redis-benchmark: apt-get install -y redis-tools"
if ! command -v etcd >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "$sudo" ] || sudo -n true 2>/dev/null; then
    echo "etcd is not installed; installing Debian's etcd-server"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
    # Debian's package starts a system etcd on the default ports; ours use others.
  fi
  command -v etcd >/dev/null || die "needs etcd: apt-get install -y etcd-server (Debian's etcd 3.4)"
fi

if [ -n "${BENCH_DIR:-}" ]; then
  dir=$BENCH_DIR
  mkdir -p "$dir"
else
  dir=$(mktemp -d /tmp/nokv-bench-cluster.XXXXXX)
fi
bin=$dir/bin logs=$dir/logs
mkdir -p "$bin" "$logs"

pids=() names=()
cleanup() {
  local i pid
  # Stop in reverse start order (gateway before stores before PD), each by its pid.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ] || [ -n "${BENCH_DIR:-}" ]; then
    echo "data, logs and results kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME COMMAND...: in the background, logging to $logs/NAME.log
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
pid_of() { # pid_of NAME
  local i
  for i in "${!names[@]}"; do [ "${names[$i]}" = "$1" ] && { echo "${pids[$i]}"; return; }; done
  die "no process named $1"
}
check_alive() {
  local i
  for i in "${!names[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "--- ${names[$i]} exited; last lines of $logs/${names[$i]}.log:" >&2
      tail -n 20 "$logs/${names[$i]}.log" >&2 || true
      die "${names[$i]} is not running"
    fi
  done
}

echo "building the binaries into $bin"
go build -o "$bin/nokv-pd" ./services/pd/cmd/nokv-pd
go build -o "$bin/nokv-store" ./services/store/cmd/nokv-store
go build -o "$bin/nokv-redis" ./services/gateway/cmd/nokv-redis
go build -o "$bin/nokv-config" ./services/tools/cmd/nokv-config
go build -o "$bin/nokv-bench" ./services/tools/cmd/nokv-bench

# 15 ports: PD, three stores, the gateway, a client and a peer port per etcd
# member, and the metrics (pprof) ports of the gateway and the three stores.
mapfile -t port < <("$bin/nokv-bench" ports 15)
pd_addr=127.0.0.1:${port[0]}
gw_port=${port[4]}

# The cluster file: the example's regions and peers, on our ports and directory.
config=$dir/cluster.json
jq --arg pd "$pd_addr" --arg dir "$dir" \
  --arg s1 "127.0.0.1:${port[1]}" --arg s2 "127.0.0.1:${port[2]}" --arg s3 "127.0.0.1:${port[3]}" '
  .pd.addr = $pd | .pd.work_dir = ($dir + "/pd")
  | .stores |= map(. as $s | ([$s1, $s2, $s3][$s.store_id - 1]) as $a | .listen_addr = $a | .addr = $a)
' "$repo/raft_config.example.json" >"$config"
"$bin/nokv-config" validate --config "$config" >/dev/null

echo "starting NoKV: nokv-pd $pd_addr, stores 127.0.0.1:${port[1]},${port[2]},${port[3]}, nokv-redis 127.0.0.1:$gw_port"
start pd "$bin/nokv-pd" --config "$config" --workdir "$dir/pd"
for id in 1 2 3; do
  start "store-$id" "$bin/nokv-store" --config "$config" --store-id "$id" --workdir "$dir/store-$id" \
    --metrics-addr "127.0.0.1:${port[$((11 + id))]}"
done
"$bin/nokv-config" status --pd-addr "$pd_addr" --wait 90s >"$logs/status.txt" 2>&1 ||
  { cat "$logs/status.txt" >&2; check_alive; die "the NoKV cluster was not ready within 90s"; }
start gateway "$bin/nokv-redis" --raft-config "$config" --addr "127.0.0.1:$gw_port" --metrics-addr "127.0.0.1:${port[11]}"
ok=0
for _ in $(seq 300); do
  if "$bin/nokv-redis" health --addr "127.0.0.1:$gw_port" >/dev/null 2>&1; then ok=1; break; fi
  check_alive
  sleep 0.2
done
[ "$ok" = 1 ] || die "nokv-redis did not become healthy"

cluster="" endpoints=""
if [[ " $systems " == *" etcd "* ]]; then
for m in 1 2 3; do
  cluster+="${cluster:+,}etcd-$m=http://127.0.0.1:${port[$((4 + 2 * m))]}"
  endpoints+="${endpoints:+,}127.0.0.1:${port[$((3 + 2 * m))]}"
done
echo "starting etcd $(etcd --version | head -n1 | awk '{print $3}'): members at $endpoints"
for m in 1 2 3; do
  cport=${port[$((3 + 2 * m))]} pport=${port[$((4 + 2 * m))]}
  start "etcd-$m" etcd --name "etcd-$m" --data-dir "$dir/etcd-$m" \
    --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
    --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "nokv-bench-$$" \
    --logger zap --log-outputs stderr
done
ok=0
for _ in $(seq 60); do
  if "$bin/nokv-bench" etcd --endpoints "$endpoints" --op put -n 1 --clients 1 >/dev/null 2>&1; then ok=1; break; fi
  check_alive
  sleep 1
done
[ "$ok" = 1 ] || die "etcd did not accept a write within 60s"
fi

nokv_procs="gateway pd store-1 store-2 store-3"
etcd_procs="etcd-1 etcd-2 etcd-3"
tck=$(getconf CLK_TCK)
cpu_ticks() { # cpu_ticks PID: utime+stime in clock ticks
  # The command name (field 2) may hold spaces; count fields after its ')'.
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
results=$dir/results.tsv
: >"$results"

# measure SYSTEM WORKLOAD RUN: runs one workload against one system, appends
# "run workload system rps p50 p99 cpu(proc=us/op,...)" to the results.
measure() {
  local system=$1 wl=$2 run=$3 procs out rps p50 p99 p before=() cpu="" i=0 d ops=$n extra=""
  if [ "$wl" = incr ]; then ops=$incr_n; fi
  if [ "$system" = nokv ]; then procs=$nokv_procs; else procs=$etcd_procs; fi
  for p in $procs; do before+=("$(cpu_ticks "$(pid_of "$p")")"); done
  local profs=()
  if [ "$system" = nokv ] && [ "$profile" != 0 ]; then
    mkdir -p "$dir/profiles"
    local mport=(gateway:${port[11]} store-1:${port[12]} store-2:${port[13]} store-3:${port[14]}) mp
    for mp in "${mport[@]}"; do
      curl -s -o "$dir/profiles/$wl-$run-${mp%%:*}.pprof" "http://127.0.0.1:${mp#*:}/debug/pprof/profile?seconds=$profile" &
      profs+=($!)
    done
  fi
  if [ "$system" = nokv ]; then
    local args=(-t "$wl" -r "$keyspace")
    if [ "$wl" = incr ]; then args=(incr counter); fi # one key: the hot-key workload
    out=$(redis-benchmark -h 127.0.0.1 -p "$gw_port" -c "$clients" -n "$ops" --csv "${args[@]}" 2>"$logs/redis-benchmark.err") ||
      { cat "$logs/redis-benchmark.err" >&2; die "redis-benchmark $wl failed"; }
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    read -r rps p50 p99 < <(echo "$out" | tail -n1 | tr -d '"' | awk -F, '{print $2, $5, $7}')
  else
    local op=$wl
    [ "$wl" = set ] && op=put
    out=$("$bin/nokv-bench" etcd --endpoints "$endpoints" --op "$op" --clients "$clients" -n "$ops" --keyspace "$keyspace") ||
      die "nokv-bench etcd --op $op failed: $out"
    rps=$(echo "$out" | tr ' ' '\n' | sed -n 's/^rps=//p')
    p50=$(echo "$out" | tr ' ' '\n' | sed -n 's/^p50_ms=//p')
    p99=$(echo "$out" | tr ' ' '\n' | sed -n 's/^p99_ms=//p')
    if [ "$wl" = incr ]; then extra="  ($(echo "$out" | tr ' ' '\n' | sed -n 's/^retries=//p') CAS retries)"; fi
  fi
  local pp
  for pp in "${profs[@]}"; do wait "$pp" || true; done
  if [ "$system" = nokv ]; then
    # The raft backend's combined writes and reads so far (cumulative over workloads).
    extra=" $(curl -s "http://127.0.0.1:${port[11]}/debug/vars" | jq -c '{writes: (.nokv_raft_combine // {}), reads: (.nokv_raft_read_combine // {})}' 2>/dev/null || true)"
    # MVCC GC so far, summed over the stores: rounds run, region passes
    # skipped as provably idle, keys deleted (a pass walks a region's keys).
    # Raft traffic so far, per store (store-1, -2, -3): messages sent, loop
    # rounds with work, log entries persisted, and the leader's empty appends
    # never sent (a later append carried the commit).
    extra+=" $(for sp in 12 13 14; do curl -s "http://127.0.0.1:${port[$sp]}/debug/vars"; done |
      jq -cs '[.[] | .["NoKV.Stats"].store // {}] | {gc: {rounds: (map(.gc_rounds // 0) | add), skipped: (map(.gc_regions_skipped // 0) | add), deleted: (map(.gc_deleted_keys // 0) | add)}, raft: {msgs: map(.raft_messages_sent // 0), rounds: map(.raft_ready_rounds // 0), entries: map(.raft_entries_persisted // 0), empty_skipped: (map(.raft_empty_appends_skipped // 0) | add)}}' 2>/dev/null || true)"
  fi
  for p in $procs; do
    d=$(($(cpu_ticks "$(pid_of "$p")") - before[i]))
    cpu+="${cpu:+,}$p=$(awk -v d="$d" -v t="$tck" -v n="$ops" 'BEGIN { printf "%.0f", d * 1e6 / t / n }')"
    i=$((i + 1))
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$wl" "$system" "$rps" "$p50" "$p99" "$cpu" >>"$results"
  printf '  run %s %-5s %-5s %9.0f ops/s  p50 %7.2f ms  p99 %7.2f ms  CPU us/op: %s%s\n' "$run" "$wl" "$system" "$rps" "$p50" "$p99" "$cpu" "$extra"
}

echo "workloads: $workloads; N=$n per workload and system ($incr_n for incr), $clients clients, keyspace $keyspace, $runs run(s)"
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$runs"); do
  for wl in $workloads; do
    check_alive
    if [ $((run % 2)) = 1 ]; then order="nokv etcd"; else order="etcd nokv"; fi
    for system in $order; do
      [[ " $systems " == *" $system "* ]] && measure "$system" "$wl" "$run"
    done
  done
done

# Summary: the median over runs of each figure (the upper median for an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'; }
field() { # field WORKLOAD SYSTEM COLUMN
  awk -F'\t' -v w="$1" -v s="$2" -v c="$3" '$2 == w && $3 == s { print $c }' "$results" | median
}
cpu_summary() { # cpu_summary WORKLOAD SYSTEM: median us/op of each process and their sum
  local procs p v sum=0 out=""
  if [ "$2" = nokv ]; then procs=$nokv_procs; else procs=$etcd_procs; fi
  for p in $procs; do
    v=$(awk -F'\t' -v w="$1" -v s="$2" '$2 == w && $3 == s { print $7 }' "$results" | tr ',' '\n' | sed -n "s/^$p=//p" | median)
    out+="${out:+ }$p ${v:-0}"
    sum=$((sum + ${v:-0}))
  done
  echo "total $sum us/op: $out"
}
echo
echo "Summary (median of $runs run(s); ratio = NoKV ops/s / etcd ops/s; load average now $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '| %-8s | %-12s | %-9s | %-12s | %-9s | %-6s |\n' workload "NoKV ops/s" "NoKV p99" "etcd ops/s" "etcd p99" ratio
printf '|----------|--------------|-----------|--------------|-----------|--------|\n'
for wl in $workloads; do
  nr=$(field "$wl" nokv 4) n99=$(field "$wl" nokv 6) er=$(field "$wl" etcd 4) e99=$(field "$wl" etcd 6)
  nr=${nr:-0} n99=${n99:-0} er=${er:-0} e99=${e99:-0}
  printf '| %-8s | %12.0f | %6.1f ms | %12.0f | %6.1f ms | %5.2fx |\n' "$wl" "$nr" "$n99" "$er" "$e99" \
    "$(awk -v a="$nr" -v b="$er" 'BEGIN { print (b > 0 ? a / b : 0) }')"
done
echo
echo "CPU per operation (us of utime+stime per op, median of runs):"
for wl in $workloads; do
  echo "  $wl NoKV: $(cpu_summary "$wl" nokv)"
  echo "  $wl etcd: $(cpu_summary "$wl" etcd)"
done
echo "(etcd incr is get + compare-and-swap txn retried on conflict: etcd has no INCR.)"
echo "results: $results"
