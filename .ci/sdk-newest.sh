#!/usr/bin/env bash
# Runs the pool's tests against the newest @bitrix24/b24jssdk release, so the peer range's cap can
# move with evidence. Informational: it reports, it does not fail the build (the package only
# claims the range it was tested with). Runs last: it changes node_modules.
set -uo pipefail
cd "$(dirname "$0")/.."
locked=$(node -p 'require("@bitrix24/b24jssdk/package.json").version')
newest=$(npm view @bitrix24/b24jssdk version 2>/dev/null || echo unknown)
range=$(node -p 'require("./package.json").peerDependencies["@bitrix24/b24jssdk"]')
echo "SDK: tested ${locked}, peer range ${range}, newest release ${newest}"
if [ "$newest" = "unknown" ] || [ "$newest" = "$locked" ]; then
  echo "SDK: the newest release is the tested one; nothing more to check"
  exit 0
fi
npm install --no-save --no-audit --no-fund "@bitrix24/b24jssdk@${newest}" >/dev/null 2>&1 || { echo "SDK: could not install ${newest}"; exit 0; }
if SKIP_DIST_BUILD=1 npx vitest run test/pool test/coordinator test/sdk >/tmp/sdk-newest.log 2>&1; then
  echo "SDK: the pool's tests pass with ${newest}: the peer range may be widened to include it"
else
  echo "SDK: the pool's tests FAIL with ${newest}; keep the cap (see /tmp/sdk-newest.log)"
fi
exit 0
