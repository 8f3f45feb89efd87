// scripts/check-exports.ts, the CI check that a root export is never added without a snapshot line
// and a CHANGELOG line: run as CI runs it (a child process), on the repository and on small fixtures.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = join(root, 'scripts/check-exports.ts');

const INDEX = `/** Docs. */
// ── Set up
export { Pool } from './pool.js';
export type { PoolOptions } from './pool.js';
export { ErrorCode, type Failure as FailureAlias } from './errors.js';
`;
const SNAPSHOT = '# comment\nPool\nPoolOptions\nErrorCode\nFailureAlias\n\n## Unreleased\n';
const CHANGELOG = '# Changelog\n\n## [Unreleased]\n\n### Added\n\n- something\n\n## [0.1.0]\n\n- `Later` and `Gone`\n';

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

function fixture(files: { index?: string; snapshot?: string; changelog?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'check-exports-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'src'));
  mkdirSync(join(dir, 'api'));
  writeFileSync(join(dir, 'src/index.ts'), files.index ?? INDEX);
  writeFileSync(join(dir, 'api/root-exports.txt'), files.snapshot ?? SNAPSHOT);
  writeFileSync(join(dir, 'CHANGELOG.md'), files.changelog ?? CHANGELOG);
  return dir;
}

function check(dir: string, ...args: string[]): { status: number | null; stderr: string } {
  // As `npm run check:exports` runs it (tsx), in one process instead of the tsx command's two.
  const result = spawnSync(process.execPath, ['--import', 'tsx', script, '--dir', dir, ...args], { cwd: root, encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}

describe('scripts/check-exports.ts', () => {
  it('passes on this repository', () => {
    expect(check(root).status).toBe(0);
  });

  it('passes when the export list and the snapshot agree', () => {
    expect(check(fixture({}))).toEqual({ status: 0, stderr: '' });
  });

  it('fails when a root export is not in the snapshot', () => {
    const { status, stderr } = check(fixture({ index: `${INDEX}export { Later } from './later.js';\n` }));
    expect(status).toBe(1);
    expect(stderr).toContain('Later is exported from the root but not in api/root-exports.txt');
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('fails when a name under "## Unreleased" has no line in the CHANGELOG [Unreleased] section', () => {
    const index = `${INDEX}export { Later } from './later.js';\n`;
    const snapshot = `${SNAPSHOT}Later\n`;
    // Named only under the released 0.1.0 heading: that does not count.
    const failed = check(fixture({ index, snapshot }));
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('Later was added to the root export but CHANGELOG.md [Unreleased] does not name it');
    const changelog = CHANGELOG.replace('- something', '- `Later`: a new thing');
    expect(check(fixture({ index, snapshot, changelog })).status).toBe(0);
  });

  it('fails when a snapshot name is no longer exported', () => {
    const { status, stderr } = check(fixture({ snapshot: `${SNAPSHOT.replace('## Unreleased', 'Gone\n## Unreleased')}` }));
    expect(status).toBe(1);
    expect(stderr).toContain('Gone is in api/root-exports.txt but no longer exported');
  });

  it('fails on `export *` and `export type *`', () => {
    for (const line of ["export * from './more.js';", "export type * from './types.js';"]) {
      const { status, stderr } = check(fixture({ index: `${INDEX}${line}\n` }));
      expect(status).toBe(1);
      expect(stderr).toContain('uses `export *`');
    }
  });

  it('with --base, a name added to the released part since the base still needs a CHANGELOG line', () => {
    const dir = fixture({});
    const git = (...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir, encoding: 'utf8' });
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'base');
    writeFileSync(join(dir, 'src/index.ts'), `${INDEX}export { Later } from './later.js';\n`);
    writeFileSync(join(dir, 'api/root-exports.txt'), SNAPSHOT.replace('Pool\n', 'Pool\nLater\n'));
    expect(check(dir).status).toBe(0); // without a base the released part is taken as released
    const { status, stderr } = check(dir, '--base', 'HEAD');
    expect(status).toBe(1);
    expect(stderr).toContain('Later was added to the root export');
  });
});
