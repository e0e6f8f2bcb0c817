#!/usr/bin/env bash
# Builds static NoKV binaries and the nokv:dev image (FROM scratch: no registry
# needed).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p compose/bin
for b in services/gateway/cmd/nokv-redis services/pd/cmd/nokv-pd services/store/cmd/nokv-store; do
  CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "compose/bin/$(basename "$b")" "./$b"
done
docker build -t nokv:dev compose
