// A fleet on one database: 30 worker processes, each a pool and a PostgresTokenStore with default
// options, on a PostgreSQL of its own with default settings (max_connections 100;
// .ci/services/pg-fleet.sh, 127.0.0.1:5433). 20 portals, every access token expired, then two calls
// per portal from every worker at once: 1,200 of 1,200 calls succeed, exactly 20 refreshes, no
// refresh token sent twice.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { findPortalTokensError, StoreError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { serviceAvailable, SERVICES } from '../support/services.js';
import { uniquePrefix } from './fixtures/pg-support.js';
import { nodeArgs } from '../support/children.js';

const available = await serviceAvailable('pgFleet');
const FLEET_URL = SERVICES.pgFleet.url;
const WORKERS = 30;
const PORTALS = 20;
const worker = fileURLToPath(new URL('./fixtures/pg-fleet-worker.ts', import.meta.url));

interface Outcome {
  ok: number;
  errors: Record<string, number>;
  stats: { refreshes: number; adoptions: number; lockWaits: number };
  warnings: string[];
  ms: number;
}

async function fleetQuery(sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: FLEET_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

function start(b24: FakeBitrix24, prefix: string, members: string[]) {
  const child = spawn(process.execPath, [...nodeArgs(worker), FLEET_URL, prefix, JSON.stringify(members)], {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: 'pipe',
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`fleet worker ended early: ${stderr.slice(0, 2000)}`);
    return value;
  };
  return { child, next };
}

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

it.skipIf(!available)(
  `${WORKERS} worker processes with default options on a PostgreSQL with max_connections 100, ${PORTALS} expired portals, 2 calls per portal from each: 1200 of 1200 succeed, ${PORTALS} refreshes`,
  async () => {
    const maxConnections = Number((await fleetQuery('SHOW max_connections'))[0]?.['max_connections']);
    expect(maxConnections, 'the fleet server runs with the default max_connections').toBe(100);
    const prefix = uniquePrefix('fleet');
    const seeder = new PostgresTokenStore({ connectionString: FLEET_URL, tablePrefix: prefix, maxConnections: 1 });
    const members: string[] = [];
    try {
      for (let i = 0; i < PORTALS; i++) {
        const portal = b24.addPortal();
        await seedStore(seeder, b24, portal.memberId);
        members.push(portal.memberId);
      }
      await seeder.close();
      const fleet = Array.from({ length: WORKERS }, () => start(b24, prefix, members));
      for (const w of fleet) expect(await w.next()).toBe('ready');
      const xacts = async (): Promise<number> => Number((await fleetQuery("SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = 'test'"))[0]?.['n']);
      const before = await xacts();
      b24.resetStats();
      for (const memberId of members) b24.expireAccessTokens(memberId);
      for (const w of fleet) w.child.stdin.write('go\n');
      const outcomes = await Promise.all(fleet.map(async (w) => JSON.parse(await w.next()) as Outcome));

      console.info(`[fleet] ${(await xacts()) - before} transactions on the database during the calls`);
      const ms = outcomes.map((o) => o.ms).sort((x, y) => x - y);
      const stats = outcomes.map((o) => o.stats);
      console.info(
        `[fleet] calls took ${ms[0]}..${ms.at(-1)} ms per worker; refreshes ${stats.reduce((n, s) => n + s.refreshes, 0)}, ` +
          `adoptions ${stats.reduce((n, s) => n + s.adoptions, 0)}, lock waits ${stats.reduce((n, s) => n + s.lockWaits, 0)}, ` +
          `refresh requests at the stand-in ${b24.stats.refreshRequests}`,
      );
      if (process.env['FLEET_TRACE']) console.info(JSON.stringify(outcomes.map((o) => ((o as unknown as { trace: string[] }).trace).filter((line) => !line.includes('lock-wait')))));
      const errors: Record<string, number> = {};
      for (const o of outcomes) for (const [code, n] of Object.entries(o.errors)) errors[code] = (errors[code] ?? 0) + n;
      expect(errors, 'no call failed').toEqual({});
      expect(outcomes.reduce((sum, o) => sum + o.ok, 0), 'every call succeeds').toBe(WORKERS * PORTALS * 2);
      expect(b24.stats.refreshRequests, 'one refresh per portal').toBe(PORTALS);
      expect(b24.stats.refreshReuse, 'no refresh token sent twice').toBe(0);
      expect(outcomes.reduce((sum, o) => sum + o.stats.refreshes, 0)).toBe(PORTALS);
      const warned = outcomes.filter((o) => o.warnings.some((line) => line.includes('too many clients')));
      console.info(`[fleet] ${warned.length} of ${WORKERS} workers saw the server refuse a connection`);
    } finally {
      await seeder.close();
      await fleetQuery(`DROP TABLE IF EXISTS "${prefix}_records", "${prefix}_locks", "${prefix}_budgets", "${prefix}_meta" CASCADE`).catch(() => undefined);
    }
  },
  300_000,
);

it.skipIf(!available)(
  'a server out of connections (SQLSTATE 53300): the store waits for a free one, warns once saying what to change, and past its bound fails with a transient StoreError',
  async () => {
    // A role limited to one connection: the server answers 53300 as it does at max_connections.
    await fleetQuery("DO $$ BEGIN CREATE ROLE b24pt_one LOGIN CONNECTION LIMIT 1; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    await fleetQuery('GRANT ALL ON SCHEMA public TO b24pt_one');
    const url = FLEET_URL.replace('postgres@', 'b24pt_one@');
    const holder = new pg.Client({ connectionString: url });
    holder.on('error', () => undefined);
    await holder.connect();
    const warnings: string[] = [];
    const logger: Logger = { debug: () => undefined, info: () => undefined, error: () => undefined, warn: (_c, message) => void warnings.push(message ?? '') };
    const prefix = uniquePrefix('full');
    const store = new PostgresTokenStore({ connectionString: url, tablePrefix: prefix, connectTimeoutMs: 1_500, logger });
    try {
      // Refused past the bound: the library's own error, transient, naming the SQLSTATE and the fix.
      const failure = await store.get('m1').catch((error: unknown) => error);
      expect(findPortalTokensError(failure)).toBeInstanceOf(StoreError);
      expect((failure as StoreError).transient).toBe(true);
      expect((failure as StoreError).message).toContain('SQLSTATE 53300');
      expect((failure as StoreError).message).toContain('maxConnections');
      // A connection freed while the store waits: the same call succeeds.
      const waiting = store.ready();
      setTimeout(() => void holder.end(), 300);
      await waiting;
      expect(await store.get('m1')).toBeUndefined();
      expect(warnings.filter((line) => line.includes('too many clients'))).toHaveLength(1);
      expect(warnings[0]).toContain('PgBouncer');
    } finally {
      await holder.end().catch(() => undefined);
      await store.close();
      await fleetQuery(`DROP TABLE IF EXISTS "${prefix}_records", "${prefix}_locks", "${prefix}_budgets", "${prefix}_meta" CASCADE`).catch(() => undefined);
    }
  },
  60_000,
);
