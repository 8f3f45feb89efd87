#!/usr/bin/env bash
# The test command: builds dist (the packaging test imports it), runs vitest, and prints a plain
# "N passed, N failed, N skipped" line that any CI reader understands.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsup --silent
mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json "$@" || status=$?
node -e '
const r = require("./.tmp/vitest.json");
console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests || 0)} skipped`);
' || true
exit $status
