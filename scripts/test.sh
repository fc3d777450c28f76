#!/usr/bin/env bash
# Runs the whole test suite: sets the machine up first (idempotent), then every
# test under test/ with node:test. The closing summary is node:test's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-demo --quiet
node=node_modules/node/bin/node
export CORDON_TEST=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
"$node" --test --test-concurrency="${CORDON_TEST_CONCURRENCY:-2}" --test-timeout=300000 "${@:-test/**/*.test.ts}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
count() { grep -a "^ℹ $1 " "$log" | tail -n 1 | awk '{print $3}' || true; }
passed=$(count pass)
failed=$(count fail)
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "${passed:-0}" -eq 0 ]; then
  echo "test.sh: no test passed (none ran?)" >&2
  rc=1
fi
exit "$rc"
