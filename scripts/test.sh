#!/usr/bin/env bash
# Runs the whole NoKV test suite: formatting, vet, every module's tests with the
# race detector, and a short run of each fuzz target.
#
#   ./scripts/test.sh            everything
#   FUZZTIME=0 ./scripts/test.sh skip fuzzing
#
# The gateway's comparison test needs Debian's redis-server; without it that test
# skips, unless NOKV_REQUIRE_REDIS=1 (CI sets it) makes it fail.
set -euo pipefail
cd "$(dirname "$0")/.."

modules=(api pkg services/gateway services/pd services/store services/tools tests)
fuzztime=${FUZZTIME:-15s}

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '\.pb\.go$') 2>/dev/null || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

for m in "${modules[@]}"; do
  echo "== go vet ($m)"
  (cd "$m" && go vet ./...)
done

for m in "${modules[@]}"; do
  echo "== go test -race ($m)"
  (cd "$m" && go test -race -count=1 -timeout 20m ./...)
done

if [ "$fuzztime" != "0" ]; then
  echo "== fuzz ($fuzztime each)"
  (cd services/gateway && go test -run '^$' -fuzz '^FuzzExec$' -fuzztime "$fuzztime" ./internal/command/)
  (cd services/gateway && go test -run '^$' -fuzz '^FuzzParseInt$' -fuzztime "$fuzztime" ./internal/command/)
  (cd services/gateway && go test -run '^$' -fuzz '^FuzzParser$' -fuzztime "$fuzztime" ./internal/resp/)
  (cd services/gateway && go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime "$fuzztime" ./internal/rdb/)
  (cd services/gateway && go test -run '^$' -fuzz '^FuzzLZF$' -fuzztime "$fuzztime" ./internal/rdb/)
  (cd services/store && go test -run '^$' -fuzz '^FuzzDecodeLock$' -fuzztime "$fuzztime" ./internal/mvcc/)
  (cd services/store && go test -run '^$' -fuzz '^FuzzDecodeWrite$' -fuzztime "$fuzztime" ./internal/mvcc/)
fi
echo "== all tests passed"
