#!/usr/bin/env bash
# The test command (`npm test`): runs vitest (its global setup, test/global-setup.ts, builds dist/ when it is
# missing or older than src/, so nothing is built twice), with coverage when CI=true, and prints a
# plain "N passed, N failed, N skipped" line (and the coverage summary) that any CI reader understands.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tmp
rm -f coverage/coverage-summary.json
coverage=()
if [ "${CI:-}" = "true" ]; then coverage=(--coverage); fi
status=0
npx vitest run ${coverage[@]+"${coverage[@]}"} --reporter=default --reporter=json --outputFile=.tmp/vitest.json "$@" || status=$?
node -e '
const fs = require("node:fs");
const r = require("./.tmp/vitest.json");
console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + (r.numTodoTests || 0)} skipped`);
if (fs.existsSync("coverage/coverage-summary.json")) {
  const t = JSON.parse(fs.readFileSync("coverage/coverage-summary.json", "utf8")).total;
  const pct = (k) => `${k} ${t[k].pct}% (${t[k].covered}/${t[k].total})`;
  console.log(`Coverage: ${["statements", "branches", "functions", "lines"].map(pct).join(", ")}`);
}
' || true
# The long soaks and the 30-process fleet are `npm run test:soak` (vitest.soak.config.ts), which CI
# runs after this.
exit $status
