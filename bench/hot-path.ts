// Row 1: the hot path. `await pool.clientFor(memberId)` for cached portals against an awaited bare
// lru-cache get holding as many entries, measured side by side with tinybench.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { medianNs } from './lib.js';
import { RecipeJsonStore } from './recipe.js';
import { fillerMemberId, type BenchStore } from './stores.js';

const CREDENTIALS = { clientId: 'local.bench.0000', clientSecret: 'bench-secret-0000000000000000000000' };

/** Median ns of a cached `clientFor` and of an awaited `lru-cache` get, `hot` portals cached. */
export async function hotPath(bench: BenchStore, hot: number): Promise<{ poolNs: number; lruNs: number }> {
  const pool = new PortalClientPool({ store: bench.store, ...CREDENTIALS, max: Math.max(1000, hot), logger: silentLogger });
  const ids = Array.from({ length: hot }, (_, i) => fillerMemberId(i));
  try {
    await pool.ready();
    for (const id of ids) await pool.clientFor(id);
    const lru = new LRUCache<string, { client: object }>({ max: Math.max(1000, hot) });
    for (const id of ids) lru.set(`${id} portal`, { client: {} });
    // The baseline is what clientFor would be with nothing but an LRU behind it: an async function
    // returning the cached client, awaited.
    // eslint-disable-next-line @typescript-eslint/require-await -- an async function on purpose, like clientFor
    const cachedClient = async (memberId: string): Promise<object | undefined> => lru.get(`${memberId} portal`)?.client;
    let i = 0;
    let j = 0;
    const result = await medianNs({
      pool: async () => {
        await pool.clientFor(ids[i++ % hot]!);
      },
      lru: async () => {
        await cachedClient(ids[j++ % hot]!);
      },
    });
    if (pool.stats().clientsBuilt !== hot) throw new Error('the hot path built clients while measured');
    return { poolNs: result['pool']!, lruNs: result['lru']! };
  } finally {
    await pool.close();
  }
}

/** Median ns of the recipe's clientForMember with `stored` portals in its JSON file. */
export async function recipeHotPath(stored: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'b24pt-bench-recipe-'));
  try {
    const recipe = new RecipeJsonStore(join(dir, 'oauth-store.json'));
    await recipe.seed(stored);
    let i = 0;
    const result = await medianNs(
      { recipe: async () => void (await recipe.clientForMember(`r${(i++ % Math.min(stored, 1000)).toString(16).padStart(31, '0')}`, CREDENTIALS)) },
      { timeMs: 300 },
    );
    return result['recipe']!;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
