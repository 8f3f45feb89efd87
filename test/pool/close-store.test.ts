// `pool.close({ store: true })`: one call that ends the pool and the store it was given, so a process
// with a PostgreSQL store exits by itself; `pool.close()` alone still leaves the store to its owner.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/errors.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { serviceAvailable, SERVICES } from '../support/services.js';
import { dropTables, enterGate, uniquePrefix } from '../store/fixtures/pg-support.js';

const MEMBER = 'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1';
const root = fileURLToPath(new URL('../..', import.meta.url));
const pgAvailable = await serviceAvailable('postgres');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-close-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const poolOver = (store: SqliteTokenStore): PortalClientPool => new PortalClientPool({ store, clientId: 'app.x', clientSecret: 'secret-x' });

describe('pool.close', () => {
  it('without options leaves the store open for its owner', async () => {
    const store = new SqliteTokenStore({ filename: join(dir, 'open.db') });
    const pool = poolOver(store);
    await pool.ready();
    await pool.close();
    await store.upsert(sampleRecord(MEMBER));
    expect(await store.get(MEMBER)).toMatchObject({ memberId: MEMBER });
    await store.close();
  });

  it('with { store: true } closes the store too, once, however often it is called', async () => {
    const store = new SqliteTokenStore({ filename: join(dir, 'closed.db') });
    let closes = 0;
    const close = store.close.bind(store);
    store.close = async () => {
      closes += 1;
      await close();
    };
    const pool = poolOver(store);
    await pool.ready();
    await pool.close({ store: true });
    await pool.close({ store: true });
    await pool.close();
    expect(closes).toBe(1);
    await expect(store.get(MEMBER)).rejects.toThrow(StoreError);
  });

  it('closes the store even when the pool was closed before without it', async () => {
    const store = new SqliteTokenStore({ filename: join(dir, 'later.db') });
    const pool = poolOver(store);
    await pool.close();
    await pool.close({ store: true });
    await expect(store.get(MEMBER)).rejects.toThrow(/closed/);
  });

  it('called while a plain close() is still running, closes the store only after the pool is done', async () => {
    const store = new MemoryTokenStore();
    const order: string[] = [];
    const subscribe = store.subscribe.bind(store);
    // The change-feed subscription ends slowly: the pool's shutdown is still running meanwhile.
    store.subscribe = async (listener) => {
      const subscription = await subscribe(listener);
      return {
        close: async () => {
          await new Promise((resolve) => setTimeout(resolve, 50));
          order.push('feed closed');
          await subscription.close();
        },
      };
    };
    const closable = Object.assign(store, {
      close: () => {
        order.push('store closed');
        return Promise.resolve();
      },
    });
    const pool = new PortalClientPool({ store: closable, clientId: 'app.x', clientSecret: 'secret-x' });
    await pool.ready();
    await Promise.all([pool.close(), pool.close({ store: true })]);
    expect(order).toEqual(['feed closed', 'store closed']);
  });

  it('refuses an options value that is not an object', async () => {
    const pool = poolOver(new SqliteTokenStore({ filename: join(dir, 'bad.db') }));
    await expect(pool.close('store' as never)).rejects.toThrow(TypeError);
    await pool.close({ store: true });
  });
});

describe.skipIf(!pgAvailable)('a process with a PostgreSQL store', () => {
  let leave: () => Promise<void>;
  const prefix = uniquePrefix('fhclose');
  beforeAll(async () => {
    leave = await enterGate('shared');
  }, 200_000);
  afterAll(async () => {
    await dropTables(prefix);
    await leave();
  });

  it('exits by itself after pool.ready() and pool.close({ store: true })', async () => {
    const script = join(dir, 'exit.mts');
    await writeFile(
      script,
      [
        `import { PortalClientPool } from ${JSON.stringify(join(root, 'src/index.ts'))};`,
        `import { PostgresTokenStore } from ${JSON.stringify(join(root, 'src/store/postgres/index.ts'))};`,
        `const store = new PostgresTokenStore({ connectionString: ${JSON.stringify(SERVICES.postgres.url)}, tablePrefix: ${JSON.stringify(prefix)} });`,
        `const pool = new PortalClientPool({ store, clientId: 'app.x', clientSecret: 'secret-x' });`,
        'await pool.ready();', // connects and LISTENs: sockets that keep a process alive
        'await pool.close({ store: true });',
        "console.log('closed');",
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    clearTimeout(killer);
    expect(out.trim()).toBe('closed');
    expect(signal).toBeNull(); // not killed: nothing held the event loop open
    expect(code).toBe(0);
  }, 40_000);
});
