#!/usr/bin/env bash
# Runs a local NoKV cluster from one cluster file: nokv-pd and every store the
# file names (and, with --gateway, nokv-redis on the raft backend), with their
# data and logs under one data directory. It waits until every store is up and
# every region has a leader, prints how to connect, and runs until Ctrl-C (or
# `scripts/run_local_cluster.sh --stop` from another shell) stops everything
# cleanly. A restart keeps the data: PD and the stores carry on from their
# disks; --fresh wipes it first.
#
#   scripts/run_local_cluster.sh                 build, start, wait for Ctrl-C
#   scripts/run_local_cluster.sh --gateway       also nokv-redis --backend raft on 127.0.0.1:6380
#   scripts/run_local_cluster.sh --fresh         wipe the data directory's cluster data first
#   scripts/run_local_cluster.sh --stop          stop a cluster started from this data directory
#   scripts/run_local_cluster.sh --pd-group      three PD members (raft_config.pd-group.example.json)
#
# A cluster file with pd.members starts one nokv-pd per member (--name, data
# in DATA_DIR/pd/NAME); --pd-group is short for that example file.
#
# Options (each also as an environment variable):
#   --config FILE       cluster file            [NOKV_CONFIG, default raft_config.example.json]
#   --data-dir DIR      data, logs, binaries    [NOKV_DATA_DIR, default ./data]
#   --gateway-addr A    gateway RESP address    [NOKV_GATEWAY_ADDR, default 127.0.0.1:6380]
#   --bin-dir DIR       use these nokv-pd, nokv-store, nokv-redis, nokv-config
#                       binaries instead of building them [NOKV_BIN_DIR]
#   --wait DURATION     how long to wait for the cluster to be ready [default 60s]
#
# Paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

config=${NOKV_CONFIG:-raft_config.example.json}
data=${NOKV_DATA_DIR:-./data}
gateway_addr=${NOKV_GATEWAY_ADDR:-127.0.0.1:6380}
bin_dir=${NOKV_BIN_DIR:-}
wait_for=60s
gateway=0 fresh=0 stop_only=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --gateway) gateway=1 ;;
    --fresh) fresh=1 ;;
    --stop) stop_only=1 ;;
    --pd-group) config=raft_config.pd-group.example.json ;;
    --config) config=$2; shift ;;
    --data-dir) data=$2; shift ;;
    --gateway-addr) gateway_addr=$2; shift ;;
    --bin-dir) bin_dir=$2; shift ;;
    --wait) wait_for=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_local_cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

run=$data/run   # one pid file per process
logs=$data/logs
stop_cmd="$0 --stop"
[ "$data" = ./data ] || stop_cmd+=" --data-dir $data"

# stop_pidfiles sends SIGTERM to every process with a pid file and waits (up
# to 30 s each) until it has exited: the gateway first, PD last.
stop_pidfiles() {
  local f pid n=0
  for f in "$run"/gateway.pid "$run"/store-*.pid "$run"/pd.pid "$run"/pd.*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "$(basename "$f" .pid) (pid $pid) did not stop within 30s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      n=$((n + 1))
    fi
    rm -f "$f"
  done
  echo "stopped $n processes"
}

if [ "$stop_only" = 1 ]; then
  stop_pidfiles
  exit 0
fi

for f in "$run"/*.pid; do
  [ -f "$f" ] || continue
  if kill -0 "$(cat "$f")" 2>/dev/null; then
    echo "a cluster from $data is already running ($(basename "$f" .pid), pid $(cat "$f")); stop it with: $stop_cmd" >&2
    exit 1
  fi
  rm -f "$f"
done

if [ "$fresh" = 1 ]; then
  echo "--fresh: removing the cluster data in $data (pd, store-*, gateway, logs)"
  rm -rf "$data"/pd "$data"/store-* "$data"/gateway "$logs"
fi
mkdir -p "$run" "$logs"

if [ -z "$bin_dir" ]; then
  bin_dir=$data/bin
  mkdir -p "$bin_dir"
  echo "building the binaries into $bin_dir"
  go build -o "$bin_dir/nokv-pd" ./services/pd/cmd/nokv-pd
  go build -o "$bin_dir/nokv-store" ./services/store/cmd/nokv-store
  go build -o "$bin_dir/nokv-config" ./services/tools/cmd/nokv-config
  if [ "$gateway" = 1 ]; then go build -o "$bin_dir/nokv-redis" ./services/gateway/cmd/nokv-redis; fi
fi

"$bin_dir/nokv-config" validate --config "$config" >/dev/null
pd_addr=$("$bin_dir/nokv-config" pd --config "$config" --field addr)
pd_members=$("$bin_dir/nokv-config" pd --config "$config" --field members | tr '\n' ' ')
store_ids=$("$bin_dir/nokv-config" stores --config "$config" --format simple | cut -d' ' -f1 | tr '\n' ' ')

pids=()
names=()
stopping=0
start() { # start NAME COMMAND...: in the background, logging to $logs/NAME.log
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
  echo $! >"$run/$name.pid"
}
stop_all() {
  stopping=1
  trap - INT TERM
  echo
  echo "stopping the cluster"
  stop_pidfiles
  wait 2>/dev/null || true
  exit 0
}
trap stop_all INT TERM
fail() {
  echo "run_local_cluster.sh: $*" >&2
  for i in "${!names[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "--- ${names[$i]} exited; last lines of $logs/${names[$i]}.log:" >&2
      tail -n 20 "$logs/${names[$i]}.log" >&2 || true
    fi
  done
  stop_pidfiles >&2
  exit 1
}

began=$(date +%s.%N)
if [ -z "$pd_members" ]; then
  start pd "$bin_dir/nokv-pd" --config "$config" --workdir "$data/pd"
else
  # Each member waits for a majority of the group: start them all at once.
  for m in $pd_members; do
    start "pd.$m" "$bin_dir/nokv-pd" --config "$config" --name "$m" --workdir "$data/pd/$m"
  done
fi
for id in $store_ids; do
  start "store-$id" "$bin_dir/nokv-store" --config "$config" --store-id "$id" --workdir "$data/store-$id"
done
echo "started nokv-pd ($pd_addr${pd_members:+; members $pd_members}) and stores $store_ids; waiting until every region has a leader"
if ! "$bin_dir/nokv-config" status --pd-addr "$pd_addr" --wait "$wait_for" >"$logs/status.txt" 2>&1; then
  cat "$logs/status.txt" >&2
  fail "the cluster was not ready within $wait_for"
fi
for i in "${!names[@]}"; do
  kill -0 "${pids[$i]}" 2>/dev/null || fail "${names[$i]} exited during start-up"
done
if [ "$gateway" = 1 ]; then
  start gateway "$bin_dir/nokv-redis" --raft-config "$config" --addr "$gateway_addr"
  ok=0
  for _ in $(seq 150); do
    if "$bin_dir/nokv-redis" health --addr "$gateway_addr" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.2
  done
  [ "$ok" = 1 ] || fail "nokv-redis did not become healthy at $gateway_addr"
fi
elapsed=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')

cat "$logs/status.txt"
echo
echo "NoKV cluster ready in ${elapsed}s (data in $data, logs in $logs). Connect:"
if [ "$gateway" = 1 ]; then
  echo "  redis-cli -h ${gateway_addr%:*} -p ${gateway_addr##*:}            # nokv-redis, raft backend"
else
  echo "  go run ./services/gateway/cmd/nokv-redis --raft-config $config   # a Redis gateway on 127.0.0.1:6380"
fi
echo "  $bin_dir/nokv-config status --pd-addr $pd_addr   # stores, regions, leaders"
echo "Ctrl-C here, or '$stop_cmd' elsewhere, stops it; the data stays for the next start (--fresh wipes it)."

# Wait for the processes. One that exits on its own is reported; the script
# ends when all have exited (after --stop from another shell, for example).
if [ "${BASH_VERSINFO[0]}" -lt 5 ] || { [ "${BASH_VERSINFO[0]}" = 5 ] && [ "${BASH_VERSINFO[1]}" -lt 1 ]; }; then
  wait || true # bash before 5.1 cannot say which process exited
  stopping=1
fi
while [ "$stopping" = 0 ]; do
  set +e
  wait -n -p exited
  status=$?
  set -e
  [ -n "${exited:-}" ] || break # no children left
  for i in "${!pids[@]}"; do
    if [ "${pids[$i]}" = "$exited" ]; then
      echo "${names[$i]} (pid $exited) exited with status $status; log: $logs/${names[$i]}.log"
      rm -f "$run/${names[$i]}.pid"
    fi
  done
  exited=
done
echo "all processes have exited"
