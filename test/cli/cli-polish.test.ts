// Issue 24, "The command-line tool": --version, sweep --dry-run, failure causes counted by code by
// default, a hint for a database that does not exist (SQLSTATE 3D000).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/program.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { SERVICES, serviceAvailable } from '../support/services.js';
import { CLI, memoryIo, runBinary } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const postgres = await serviceAvailable('postgres');
let b24: FakeBitrix24;
let dir: string;
beforeAll(async () => {
  if (!existsSync(CLI)) execFileSync('npm', ['run', 'build'], { stdio: 'ignore' });
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-polish-'));
}, 120_000);
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

async function idleStore(count: number): Promise<string> {
  const directory = join(dir, `s${Math.random()}`);
  const store = new FileTokenStore({ directory });
  const idleSince = Date.now() - 30 * 86_400_000;
  for (let i = 0; i < count; i++) await seedStore(store, b24, b24.addPortal().memberId, { record: { chainUpdatedAt: idleSince, updatedAt: idleSince } });
  return directory;
}

describe('the command-line tool (issue 24)', () => {
  it('--version prints the package version', async () => {
    const run = await runBinary(['--version']);
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe((JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version);
  });

  it('sweep --dry-run counts what it would refresh and sends nothing', async () => {
    const directory = await idleStore(3);
    b24.resetStats();
    const io = memoryIo({});
    expect(await runCli(['sweep', '--store', `file:${directory}`, '--dry-run'], io)).toBe(0);
    expect(io.stdout).toMatch(/3 chains checked, 3 would be refreshed/);
    expect(b24.stats.refreshRequests).toBe(0);
  });

  it('sweep prints the failure causes counted by code without --verbose', async () => {
    const directory = await idleStore(2);
    const io = memoryIo({ B24PT_CLIENT_ID: b24.clientId, B24PT_CLIENT_SECRET: 'w'.repeat(32), B24PT_OAUTH_HOSTS: b24.oauthUrl });
    expect(await runCli(['sweep', '--store', `file:${directory}`], io)).toBe(1);
    expect(io.stdout).toMatch(/2 failed/);
    expect(io.stdout).toMatch(/failed by cause: OAUTH_CREDENTIALS 2/);
  });

  it.skipIf(!postgres)('a database that does not exist gets a hint', async () => {
    const url = new URL(SERVICES.postgres.url);
    url.pathname = `/b24pt_missing_${process.pid}`;
    const run = await runBinary(['status', '--store', url.toString()]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/database .* does not exist: create it/);
  }, 30_000);
});
