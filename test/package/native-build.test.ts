// The SQLite driver is built from source, never downloaded, and saying so costs no npm warning:
// better-sqlite3 installs with `prebuild-install || node-gyp rebuild`, and prebuild-install reads
// its own rc file (`.prebuild-installrc`, found upward from the package's folder), which npm
// does not read, so npm has no unknown key to warn about on every command.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const driver = join(root, 'node_modules', 'better-sqlite3');

/** The environment an `npm ci` of this project hands the install script, minus any build flag. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/^npm_config_build[-_]from[-_]source$/i.test(key)) env[key] = value;
  return env;
}

it('npm reads the project config without an "Unknown project config" warning', () => {
  const run = spawnSync('npm', ['config', 'get', 'registry'], { cwd: root, encoding: 'utf8', env: cleanEnv() });
  expect(run.status).toBe(0);
  expect(run.stderr).not.toMatch(/Unknown (project|user|global) config/);
});

it("better-sqlite3's install script skips the prebuilt download and falls through to node-gyp", () => {
  expect(existsSync(join(driver, 'package.json'))).toBe(true);
  const bin = join(root, 'node_modules', 'prebuild-install', 'bin.js');
  // Run as npm runs it: from the driver's folder, at info level so the decision is printed.
  const run = spawnSync(process.execPath, [bin], { cwd: driver, encoding: 'utf8', env: { ...cleanEnv(), npm_config_loglevel: 'info' }, timeout: 30_000 });
  expect(run.stderr).toContain('--build-from-source specified, not attempting download');
  expect(run.status).toBe(1); // a failure, so `|| node-gyp rebuild --release` builds it
});
