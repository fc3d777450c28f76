#!/usr/bin/env bash
# Runs the whole test suite: sets the machine up first (idempotent), then every
# test under test/ with node:test. The closing summary is node:test's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-demo --quiet
node=node_modules/node/bin/node
export CORDON_TEST=1
exec "$node" --test --test-concurrency="${CORDON_TEST_CONCURRENCY:-2}" --test-timeout=300000 "${@:-test/**/*.test.ts}"
