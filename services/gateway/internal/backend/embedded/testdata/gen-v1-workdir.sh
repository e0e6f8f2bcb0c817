#!/usr/bin/env bash
# Regenerates v1-workdir/: a workdir written by the last release before
# logical databases (format 1, commit dabaa3f), which TestOpensV1Workdir
# opens with the current code. Run from anywhere inside the repository:
#   bash services/gateway/internal/backend/embedded/testdata/gen-v1-workdir.sh
# It needs git history (a full clone), Go and redis-cli.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; git -C "$repo" worktree remove --force "$tmp/src" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git -C "$repo" worktree add --detach "$tmp/src" dabaa3f >/dev/null
(cd "$tmp/src/services/gateway" && go build -o "$tmp/nokv-redis" ./cmd/nokv-redis)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$tmp/nokv-redis" --addr "127.0.0.1:$port" --workdir "$tmp/work" --sync always &
pid=$!
for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
# Keys of every shape format 1 could hold: plain, binary, empty, one that
# looks like a format-2 stored key of database 1, values with and without
# expiry (far in the future: 2100-01-01), and a sweepable expired key.
redis-cli -p "$port" >/dev/null <<'CMDS'
SET plain hello
SET counter 41
INCR counter
SET "" empty-key
SET "\x00\x00\x00\x01abc" looks-like-db1
SET "bin\x00\xff" "v\x00\xff"
SET ttl value EXAT 4102444800
SET pttl value PXAT 4102444800123
SETEX soon 1 gone
CMDS
for i in $(seq 0 299); do echo "SET key:$i val:$i"; done | redis-cli -p "$port" >/dev/null
sleep 1.5 # "soon" expires; the sweeper may or may not have removed it
redis-cli -p "$port" DBSIZE
kill -TERM $pid
wait $pid || true
rm -rf "$here/v1-workdir"
cp -r "$tmp/work" "$here/v1-workdir"
rm -f "$here/v1-workdir/LOCK"
du -sh "$here/v1-workdir"
ls -la "$here/v1-workdir"
