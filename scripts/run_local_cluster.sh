#!/usr/bin/env bash
# Runs a local NoKV cluster from raft_config.example.json (or $NOKV_CONFIG):
# nokv-pd and every store of the file, each with its data under ./data and
# its log in ./data/logs. Ctrl-C (or SIGTERM) stops them all cleanly.
#
#   scripts/run_local_cluster.sh             build, start, wait for Ctrl-C
#   NOKV_CONFIG=my.json scripts/run_local_cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
config=${NOKV_CONFIG:-raft_config.example.json}
bin=./data/bin
mkdir -p "$bin" ./data/logs
go build -o "$bin/nokv-pd" ./services/pd/cmd/nokv-pd
go build -o "$bin/nokv-store" ./services/store/cmd/nokv-store

pids=()
stop() {
  echo "stopping ${#pids[@]} processes"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap stop INT TERM

"$bin/nokv-pd" --config "$config" >./data/logs/pd.log 2>&1 &
pids+=($!)
# Store ids from the cluster file, without needing jq (peers repeat them).
store_ids=$(grep -o '"store_id": *[0-9]*' "$config" | grep -o '[0-9]*$' | sort -un | tr '\n' ' ')
for id in $store_ids; do
  "$bin/nokv-store" --config "$config" --store-id "$id" --workdir "./data/store-$id" >"./data/logs/store-$id.log" 2>&1 &
  pids+=($!)
done
echo "nokv-pd and stores $store_ids running (logs in ./data/logs); Ctrl-C to stop"
wait
