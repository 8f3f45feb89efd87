// The PostgreSQL store through PgBouncer in transaction mode (.ci/services/pgbouncer.sh, 127.0.0.1:6432
// before the shared server): the conformance suite (the feed on its own direct connection), the
// cross-process refresh storm, the coherence case with and without a direct feed connection, and the
// store finding out by itself that LISTEN through the pooler hears nothing (one warning, the feed
// reported lost, cached clients re-read before reuse).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/logger.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import type { StoreChange } from '../../src/store/token-store.js';
import { describeTokenStore } from '../../src/testing/conformance.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { expectCoherence, startWorker } from '../pool/worker-process.js';
import { serviceAvailable, SERVICES } from '../support/services.js';
import { expectOneRefreshAcrossProcesses } from '../support/storm.js';
import { dropTables, enterGate, PG_URL, uniquePrefix } from './fixtures/pg-support.js';
import { childModule } from '../support/children.js';

const available = (await serviceAvailable('postgres')) && (await serviceAvailable('pgbouncer'));
const BOUNCER_URL = SERVICES.pgbouncer.url;

/** A logger that keeps its warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = (): void => undefined;
  return { debug: noop, info: noop, error: noop, warn: (_context: object, message: string) => void warnings.push(message), warnings } as Logger & {
    warnings: string[];
  };
}

if (!available) {
  it.skip('PostgresTokenStore through PgBouncer (PgBouncer is not reachable)', () => undefined);
} else {
  let leave: () => Promise<void> = () => Promise.resolve();
  let b24: FakeBitrix24;
  beforeAll(async () => {
    leave = await enterGate('shared');
    b24 = await FakeBitrix24.start();
  }, 200_000);
  afterAll(async () => {
    await b24.close();
    await leave();
  });

  await describeTokenStore('PostgresTokenStore through PgBouncer (transaction mode, feed on a direct connection)', {
    create: () => new PostgresTokenStore({ connectionString: BOUNCER_URL, listenConnectionString: PG_URL, tablePrefix: uniquePrefix('pgb') }),
    destroy: async (store) => {
      await store.close();
      await dropTables(store.tablePrefix);
    },
    crossProcess: {
      ...childModule(new URL('./fixtures/open-postgres-store.ts', import.meta.url)),
      args: (store) => ({ connectionString: BOUNCER_URL, listenConnectionString: PG_URL, tablePrefix: store.tablePrefix }),
    },
  });

  describe('the change feed through the pooler', () => {
    it('finds out at subscribe that LISTEN hears nothing, warns once naming listenConnectionString, reports the feed lost', async () => {
      const logger = recordingLogger();
      const prefix = uniquePrefix('deaf');
      const store = new PostgresTokenStore({ connectionString: BOUNCER_URL, tablePrefix: prefix, logger, feedProbeTimeoutMs: 500, feedProbeIntervalMs: 300 });
      const statuses: string[] = [];
      const changes: StoreChange[] = [];
      try {
        const subscription = await store.subscribe({ onChange: (change) => changes.push(change), onStatus: (status) => statuses.push(status) });
        // subscribe resolves after the first probe: the feed already knows.
        expect(statuses).toEqual(['lost']);
        await store.upsert(sampleRecord('m1'));
        await sleep(1_500); // several periodic probes
        expect(changes, 'no change arrives through a transaction pooler').toEqual([]);
        expect(statuses, 'reported once, not once per probe').toEqual(['lost']);
        expect(logger.warnings.filter((line) => line.includes('listenConnectionString'))).toHaveLength(1);
        await subscription.close();
      } finally {
        await store.close();
        await dropTables(prefix);
      }
    }, 30_000);

    it('with listenConnectionString the feed hears every write made through the pooler, and nothing is reported lost', async () => {
      const logger = recordingLogger();
      const prefix = uniquePrefix('live');
      const store = new PostgresTokenStore({ connectionString: BOUNCER_URL, listenConnectionString: PG_URL, tablePrefix: prefix, logger, feedProbeIntervalMs: 200 });
      const statuses: string[] = [];
      const changes: StoreChange[] = [];
      try {
        const subscription = await store.subscribe({ onChange: (change) => changes.push(change), onStatus: (status) => statuses.push(status) });
        await store.upsert(sampleRecord('m1'));
        await store.deletePortal('m1');
        const deadline = Date.now() + 5_000;
        while (changes.length < 2 && Date.now() < deadline) await sleep(20);
        await sleep(600);
        expect(changes.map((change) => [change.memberId, change.deleted])).toEqual([
          ['m1', false],
          ['m1', true],
        ]);
        expect(statuses).toEqual([]);
        expect(logger.warnings).toEqual([]);
        await subscription.close();
      } finally {
        await store.close();
        await dropTables(prefix);
      }
    }, 30_000);
  });

  describe('the refresh storm through the pooler', () => {
    it('4 worker processes x 25 concurrent calls on one expired portal: 1 refresh, 0 reuse, 100 of 100 succeed', async () => {
      const prefix = uniquePrefix('pgbstorm');
      try {
        await expectOneRefreshAcrossProcesses(b24, { kind: 'postgres', url: BOUNCER_URL, prefix });
      } finally {
        await dropTables(prefix);
      }
    }, 200_000);
  });

  describe('coherence across two processes through the pooler', () => {
    for (const [name, listenUrl] of [
      ['with the feed dead (no listenConnectionString): re-read before reuse', undefined],
      ['with the feed on a direct connection (listenConnectionString)', PG_URL],
    ] as const) {
      it(`follows worker A's refresh and uninstall in worker B, no refused call, ${name}`, async () => {
        const prefix = uniquePrefix('pgbcoh');
        const store = new PostgresTokenStore({ connectionString: BOUNCER_URL, listenConnectionString: listenUrl, tablePrefix: prefix, logger: recordingLogger() });
        try {
          await expectCoherence(b24, store, (memberId) => startWorker(b24, 'postgres', BOUNCER_URL, prefix, memberId, listenUrl));
        } finally {
          await store.close();
          await dropTables(prefix);
        }
      }, 60_000);
    }
  });
}
