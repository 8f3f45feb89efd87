// `migrate` at scale (a soak: `npm run test:soak`, which CI runs after `npm test`): 10,000 portals
// from the file store to PostgreSQL, the copy killed midway (SIGKILL) and resumed; every record ends
// equal, versions included. The small cases are in migrate.test.ts.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/store/file/store.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { serviceAvailable, SERVICES } from '../support/services.js';
import { CLI, dropPostgresPrefix, recordInput, runBinary, seedPortals, TOKEN, expectSameRecords } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const postgres = await serviceAvailable('postgres');
const run = `${process.pid}_${Date.now().toString(36)}`;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-migrate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!postgres)('10,000 portals from the file store to PostgreSQL', () => {
  const prefix = `cli_mig_${run}`;
  const url = `${SERVICES.postgres.url}?tablePrefix=${prefix}`;
  afterAll(async () => {
    await dropPostgresPrefix(SERVICES.postgres.url, prefix);
  });

  it('is killed midway, resumed, and ends with every record equal, versions included', async () => {
    const source = new FileTokenStore({ directory: join(dir, 'big') });
    await seedPortals(source, 10_000, 32, 0, (i) => (i % 10 === 0 ? 3 : 1));
    for (let i = 0; i < 10_000; i += 500) await source.upsert(recordInput(i, { chain: `user:${i + 2}`, userId: i + 2 }));
    const args = ['migrate', '--from', `file:${join(dir, 'big')}`, '--to', url, '--page-size', '500'];

    // First run: killed (SIGKILL, no clean-up) once it has reported 3000 portals.
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const killed = await new Promise<boolean>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (/migrating: 3000/.test(stderr)) child.kill('SIGKILL');
      });
      child.on('close', (_code, signal) => resolve(signal === 'SIGKILL'));
    });
    expect(killed).toBe(true);
    const target = new PostgresTokenStore({ connectionString: SERVICES.postgres.url, tablePrefix: prefix });
    try {
      const partial = await target.list({ limit: 1000 });
      expect(partial.records.length).toBeGreaterThan(0);

      // Second run: resumes, skipping what is already there.
      const resumed = await runBinary(args);
      expect(resumed.stderr).not.toMatch(TOKEN);
      expect(resumed.code).toBe(0);
      const present = Number(/already present (\d+)/.exec(resumed.stdout)?.[1]);
      expect(present).toBeGreaterThanOrEqual(3000);
      expect(resumed.stdout).toMatch(/10020 chains read/);
      expect(resumed.stdout).toMatch(/verify: source 10000 portals, 10020 chains; target 10020 chains: ok/);
      expect(resumed.stdout).not.toMatch(TOKEN);
      expect(await expectSameRecords(source, target)).toBe(10_020);
    } finally {
      await target.close();
    }
  }, 1_800_000);
});
