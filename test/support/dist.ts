// The test files that use the built package (dist/: the CLI, the package's own entry points, the
// README example) wait here for the build the global setup started (test/global-setup.ts); the other
// files run meanwhile. Resolves at once when dist/ was already up to date.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import './provided.js'; // the type of `distBuild`

/** How long a file waits for the build before it fails (the build alone takes a few seconds); also its hook timeout. */
export const DIST_WAIT_MS = 180_000;

let ready: Promise<void> | undefined;

/** Waits until dist/ is built; rejects with tsup's output when the build failed. */
export function distReady(): Promise<void> {
  ready ??= waitForBuild();
  return ready;
}

async function waitForBuild(): Promise<void> {
  const statusFile = inject('distBuild');
  if (statusFile === '' || statusFile === undefined) return;
  const deadline = Date.now() + DIST_WAIT_MS;
  while (!existsSync(statusFile)) {
    if (Date.now() > deadline) throw new Error(`dist/ was not built within ${DIST_WAIT_MS / 1000} s (the global setup's tsup)`);
    await sleep(100);
  }
  const status = JSON.parse(readFileSync(statusFile, 'utf8')) as { ok: boolean; output: string };
  if (!status.ok) throw new Error(`building dist/ failed:\n${status.output}`);
}
