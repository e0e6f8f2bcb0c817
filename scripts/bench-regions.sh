#!/usr/bin/env bash
# Measures what idle regions cost a store (issue 14): starts nokv-pd and three
# nokv-store processes on free 127.0.0.1 ports, creates REGIONS regions (three
# replicas each, so every store holds REGIONS peers) through the stores' admin
# split (nokv-bench split), writes nothing, lets them settle, then reads every
# store's CPU (utime+stime from /proc/<pid>/stat) over WINDOW seconds and its
# RSS (VmRSS), and PD's CPU too.
#
#   scripts/bench-regions.sh                    REGIONS=10000, SETTLE=60, WINDOW=30
#   REGIONS=1000 scripts/bench-regions.sh
#   BIN=/tmp/old-bin scripts/bench-regions.sh   use binaries built elsewhere
#                                               (e.g. an older commit) instead
#   STORE_ARGS=--no-hibernate scripts/bench-regions.sh   regions keep ticking
#
# Environment:
#   REGIONS     regions in the cluster                 [10000]
#   SETTLE      seconds between the last split and the window   [60]
#   WINDOW      seconds CPU is measured over           [30]
#   WORKERS     splits in flight                       [8]
#   STORE_ARGS  extra flags for every nokv-store
#   BIN         directory with nokv-pd, nokv-store, nokv-bench (default: build)
#   KEEP=1      keep the temporary directory (data, logs)
#   PROFILE=DIR write each store's CPU profile over the window to DIR/store-N.pprof
#
# The result is one line per process: cpu_pct (percent of one core over the
# window) and rss_mb. Numbers are only as good as the machine is quiet.
set -euo pipefail
cd "$(dirname "$0")/.."

regions=${REGIONS:-10000}
settle=${SETTLE:-60}
window=${WINDOW:-30}
workers=${WORKERS:-8}
store_args=${STORE_ARGS:-}

die() { echo "bench-regions.sh: $*" >&2; exit 1; }
command -v go >/dev/null || die "needs Go"
command -v jq >/dev/null || die "needs jq"

dir=$(mktemp -d /tmp/nokv-bench-regions.XXXXXX)
logs=$dir/logs
mkdir -p "$logs"
pids=() names=()
cleanup() {
  local i pid
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "data and logs kept in $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME COMMAND...: in the background, logging to $logs/NAME.log
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

if [ -n "${BIN:-}" ]; then
  bin=$BIN
else
  bin=$dir/bin
  echo "building the binaries into $bin"
  go build -o "$bin/nokv-pd" ./services/pd/cmd/nokv-pd
  go build -o "$bin/nokv-store" ./services/store/cmd/nokv-store
  go build -o "$bin/nokv-config" ./services/tools/cmd/nokv-config
  go build -o "$bin/nokv-bench" ./services/tools/cmd/nokv-bench
fi

mapfile -t port < <("$bin/nokv-bench" ports 7)
pd_addr=127.0.0.1:${port[0]}
s1=127.0.0.1:${port[1]} s2=127.0.0.1:${port[2]} s3=127.0.0.1:${port[3]}

# Three regions to start from, one led by each store, so the splits (whose
# new regions are led where their parent was) spread the leaders evenly.
config=$dir/cluster.json
jq -n --arg pd "$pd_addr" --arg dir "$dir" --arg s1 "$s1" --arg s2 "$s2" --arg s3 "$s3" '
  def peers($id): [1, 2, 3] | map({store_id: ., peer_id: ($id * 100 + .)});
  {
    max_retries: 8,
    pd: {addr: $pd, docker_addr: "nokv-pd:2379", work_dir: ($dir + "/pd"), docker_work_dir: "/var/lib/nokv/pd"},
    stores: [[$s1, $s2, $s3] | to_entries[] | {store_id: (.key + 1), listen_addr: .value, addr: .value,
      docker_listen_addr: "0.0.0.0:20160", docker_addr: "nokv-store-\(.key + 1):20160"}],
    regions: [
      {id: 1, start_key: "", end_key: "h", epoch: {version: 1, conf_version: 1}, peers: peers(1), leader_store_id: 1},
      {id: 2, start_key: "h", end_key: "p", epoch: {version: 1, conf_version: 1}, peers: peers(2), leader_store_id: 2},
      {id: 3, start_key: "p", end_key: "", epoch: {version: 1, conf_version: 1}, peers: peers(3), leader_store_id: 3}
    ]
  }' >"$config"

echo "starting nokv-pd $pd_addr and stores $s1 $s2 $s3 ${store_args:+($store_args)}"
start pd "$bin/nokv-pd" --config "$config" --workdir "$dir/pd"
for id in 1 2 3; do
  # shellcheck disable=SC2086
  start "store-$id" "$bin/nokv-store" --config "$config" --store-id "$id" --workdir "$dir/store-$id" \
    --metrics-addr "127.0.0.1:${port[$((3 + id))]}" $store_args
done
"$bin/nokv-config" status --pd-addr "$pd_addr" --wait 90s >"$logs/status.txt" 2>&1 ||
  { cat "$logs/status.txt" >&2; die "the cluster was not ready within 90s"; }

echo "splitting into $regions regions"
"$bin/nokv-bench" split --stores "$s1,$s2,$s3" --count "$regions" --workers "$workers" \
  --region 1:1:a --region 2:2:i --region 3:3:q

echo "settling for ${settle}s"
sleep "$settle"

ticks() { # ticks PID: utime+stime in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}
metric() { # metric STORE NAME: a store's Prometheus sample (0 if absent)
  curl -s "http://127.0.0.1:${port[$((3 + $1))]}/metrics" | awk -v n="$2" '$1 == n {v = $2} END {printf "%d", v + 0}'
}
hz=$(getconf CLK_TCK)
declare -A before
declare -A peer_ticks
for id in 1 2 3; do peer_ticks[$id]=$(metric "$id" nokv_store_raft_peer_ticks_total); done
for i in "${!names[@]}"; do before[${names[$i]}]=$(ticks "${pids[$i]}"); done
profilers=()
if [ -n "${PROFILE:-}" ]; then
  mkdir -p "$PROFILE"
  for id in 1 2 3; do
    curl -s -o "$PROFILE/store-$id.pprof" \
      "http://127.0.0.1:${port[$((3 + id))]}/debug/pprof/profile?seconds=$window" &
    profilers+=($!)
  done
fi
sleep "$window"
declare -A after
for i in "${!names[@]}"; do after[${names[$i]}]=$(ticks "${pids[$i]}"); done
for pid in "${profilers[@]}"; do wait "$pid" || true; done
echo "idle cost over ${window}s with $regions regions (every store holds $regions peers):"
for i in "${!names[@]}"; do
  name=${names[$i]} pid=${pids[$i]}
  kill -0 "$pid" 2>/dev/null || die "$name exited (see $logs/$name.log)"
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  awk -v n="$name" -v b="${before[$name]}" -v a="${after[$name]}" -v hz="$hz" -v w="$window" -v rss="$rss" \
    'BEGIN { printf "%-8s cpu_pct=%.2f rss_mb=%.0f", n, 100 * (a - b) / hz / w, rss / 1024 }'
  if [ "${name#store-}" != "$name" ]; then
    id=${name#store-}
    echo " hibernated_peers=$(metric "$id" nokv_store_raft_hibernated_peers) peer_ticks=$(($(metric "$id" nokv_store_raft_peer_ticks_total) - peer_ticks[$id]))"
  else
    echo
  fi
done
