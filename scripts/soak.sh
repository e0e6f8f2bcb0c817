#!/usr/bin/env bash
# Runs the real-process fault scenarios of tests/linear for a long time: each
# scenario (kill -9 of a leader's store, a follower's, PD, a gateway; SIGSTOP
# of a leader; kill -9 of every store; a partition isolating a leader; a
# store's clock 30 s ahead) repeats its fault for NOKV_SOAK_DURATION, checking
# every minute's history with porcupine. CI runs the same tests once, short.
#
#   ./scripts/soak.sh                       10 minutes per scenario
#   NOKV_SOAK_DURATION=1h ./scripts/soak.sh an hour per scenario
#   ./scripts/soak.sh -run 'ProcessFaults/partition-leader'   one scenario
#   NOKV_LINEAR_GC_LIFE_TIME=4s ./scripts/soak.sh     every scenario with a short GC
#       life time (default 10m), so stalled commands meet GC (this found the bug
#       tests/linear TestRetriedCommitPastSafePointIsNotAFailure now guards)
#
# On a failure, the process logs and porcupine's visualization of the
# history are left under NOKV_LINEAR_ARTIFACTS (default: a directory under
# /tmp the script names); the test output names the files.
set -euo pipefail
cd "$(dirname "$0")/../tests"

duration=${NOKV_SOAK_DURATION:-10m}
artifacts=${NOKV_LINEAR_ARTIFACTS:-$(mktemp -d /tmp/nokv-soak-XXXXXX)}
run='TestRedis'
if [ "${1:-}" = "-run" ]; then
  run=$2
  shift 2
fi

# Go's own timeout: every scenario for the whole duration, plus set-up and
# checking; the clock scenario runs once.
case $duration in
  *h) minutes=$(( ${duration%h} * 60 )) ;;
  *m) minutes=${duration%m} ;;
  *s) minutes=$(( ${duration%s} / 60 + 1 )) ;;
  *) echo "NOKV_SOAK_DURATION: a whole number of s, m or h, e.g. 10m" >&2; exit 2 ;;
esac
scenarios=8
timeout=$(( minutes * scenarios + 30 ))m

echo "== soak: ${duration} per scenario, artifacts in ${artifacts}"
NOKV_SOAK=1 NOKV_SOAK_DURATION="$duration" NOKV_LINEAR_ARTIFACTS="$artifacts" \
  go test -race -count=1 -timeout "$timeout" -run "$run" -v ./linear/ "$@"
