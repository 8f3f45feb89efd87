// Every subpath of the published package resolves and loads from dist, in ESM and in CJS.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8')) as { exports: Record<string, unknown> };
const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json');

const specifiers = subpaths.map((subpath) => (subpath === '.' ? 'b24-portal-tokens' : `b24-portal-tokens/${subpath.slice(2)}`));

/** Every subpath's export names, loaded in one process per module system (each load is a fresh process's first). */
function loadAll(kind: 'esm' | 'cjs'): Record<string, string[]> {
  const list = JSON.stringify(specifiers);
  const code =
    kind === 'esm'
      ? `const out = {}; for (const s of ${list}) out[s] = Object.keys(await import(s)).sort(); console.log(JSON.stringify(out));`
      : `const out = {}; for (const s of ${list}) out[s] = Object.keys(require(s)).sort(); console.log(JSON.stringify(out));`;
  const out = execFileSync(process.execPath, kind === 'esm' ? ['--input-type=module', '-e', code] : ['-e', code], {
    cwd: root,
    encoding: 'utf8',
  });
  return JSON.parse(out.trim()) as Record<string, string[]>;
}

const loaded: { esm?: Record<string, string[]>; cjs?: Record<string, string[]> } = {};

/** The export names of `specifier` loaded from dist in ESM or CJS. */
function run(kind: 'esm' | 'cjs', specifier: string): string[] {
  const names = (loaded[kind] ??= loadAll(kind))[specifier];
  if (names === undefined) throw new Error(`${specifier} is not a subpath of package.json's exports`);
  return names;
}

/** The names api/root-exports.txt lists, sorted. */
function rootExportsSnapshot(): string[] {
  return readFileSync(`${root}/api/root-exports.txt`, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .sort();
}

describe('the built package', () => {
  it('has a dist folder (test/global-setup.ts builds it)', () => {
    expect(existsSync(`${root}/dist/index.js`)).toBe(true);
  });

  for (const specifier of specifiers) {
    it(`${specifier} loads in ESM and CJS with the same exports`, () => {
      const esm = run('esm', specifier);
      const cjs = run('cjs', specifier);
      expect(esm.length).toBeGreaterThan(0);
      expect(cjs).toEqual(esm);
    });
  }

  it('the root entry declares exactly the names in api/root-exports.txt', (context) => {
    const snapshot = rootExportsSnapshot();
    // `npm run build` writes the declarations (CI builds before it tests); the suite's own build of a
    // fresh clone leaves them out (test/global-setup.ts: they are nine tenths of the build's CPU).
    const files = ['index.d.ts', 'index.d.cts'];
    if (!files.every((file) => existsSync(`${root}/dist/${file}`))) {
      if (process.env['CI'] === 'true') throw new Error('dist/ has no declarations: CI runs `npm run build` before `npm test`');
      console.warn('[dist-imports] dist/ has no declarations (the test build leaves them out): `npm run build` first to check them');
      context.skip();
    }
    for (const file of files) {
      const declared = [...readFileSync(`${root}/dist/${file}`, 'utf8').matchAll(/^export \{([^}]*)\}/gm)]
        .flatMap((match) => (match[1] ?? '').split(','))
        .map((spec) => spec.trim().replace(/^type /, '').split(' as ').pop()!.trim())
        .filter((name) => name !== '')
        .sort();
      expect(declared).toEqual(snapshot);
    }
  });

  it('the root entry loads the values of api/root-exports.txt, and /store and /testing load what they list', () => {
    const snapshot = rootExportsSnapshot();
    const values = run('esm', 'b24-portal-tokens');
    // The runtime values are the snapshot's names minus the type-only ones (48 today).
    expect(values).toHaveLength(48);
    expect(values.filter((name) => !snapshot.includes(name))).toEqual([]);
    expect(values).not.toContain('ManualClock');
    expect(run('esm', 'b24-portal-tokens/store')).toEqual([
      'PORTAL_CHAIN',
      'applyPatch',
      'checkExpectedVersion',
      'checkListOptions',
      'checkMemberId',
      'checkPatch',
      'checkRecordInput',
      'checkTtlMs',
      'isChainId',
      'nextVersion',
      'portalRecordFromAuth',
      'readStoredRecord',
      'resolveKey',
      'userChain',
      'userIdOf',
    ]);
    expect(run('esm', 'b24-portal-tokens/testing')).toContain('ManualClock');
  });

  it('the root entry does not load a database driver or vitest', () => {
    const code = `require('b24-portal-tokens'); const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/](pg|better-sqlite3|ioredis|redis|vitest)[\\\\/]/.test(f)); console.log(JSON.stringify(loaded));`;
    const out = execFileSync(process.execPath, ['-e', code], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out.trim())).toEqual([]);
  });
});
