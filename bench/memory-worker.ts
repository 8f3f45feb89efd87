// Row 4, in its own process (node --expose-gc): heap and RSS of a pool whose store holds many
// portals, with `hot` clients cached, then after `distinct` other portals were requested (max 1000).

import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { fillerMemberId, openStore, type StoreLocation } from './stores.js';

const [location, hotArg, distinctArg] = process.argv.slice(2) as [string, string, string];
const hot = Number(hotArg);
const distinct = Number(distinctArg);
const gc = (globalThis as { gc?: () => void }).gc;
// Sizes: `hot` portals stay cached (the pool's max is `hot`); `distinct` others are requested afterwards.
if (gc === undefined) throw new Error('run with --expose-gc');

function measure(): { heapMiB: number; rssMiB: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { heapMiB: m.heapUsed / 2 ** 20, rssMiB: m.rss / 2 ** 20 };
}

const store = openStore(JSON.parse(location) as StoreLocation);
const pool = new PortalClientPool({ store, clientId: 'local.bench.0000', clientSecret: 'bench-secret-0000000000000000000000', max: hot, logger: silentLogger }); // max = the hot set, as in the issue (1,000 and 1,000)
await pool.ready();
// Warm the code paths on a few portals, then drop them, so the baseline holds the compiled code.
for (let i = 0; i < 20; i++) await pool.clientFor(fillerMemberId(i));
for (let i = 0; i < 20; i++) pool.evict(fillerMemberId(i));
const before = measure();
for (let i = 0; i < hot; i++) await pool.clientFor(fillerMemberId(i));
const hotM = measure();
for (let i = hot; i < hot + distinct; i++) await pool.clientFor(fillerMemberId(i));
const after = measure();
const cached = pool.stats().cachedClients;
process.stdout.write(`${JSON.stringify({ before, hot: hotM, after, cached, perClientKiB: ((hotM.heapMiB - before.heapMiB) * 1024) / hot })}\n`);
await pool.close();
await store.close?.();
process.exit(0);
