import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';
import { caller, storm } from './storm.js';
import { createStore } from './stores.js';
const b24 = await FakeBitrix24.start();
const kind = (process.argv[2] ?? 'redis') as 'redis';
const bs = await createStore(kind);
const portal = b24.addPortal();
await seedStore(bs.store, b24, portal.memberId);
const { call, close } = await caller('pool', bs.store, b24);
await call(portal.memberId, 0);
for (let i = 0; i < 6; i++) {
  const expire = i % 2 === 1;
  if (expire) b24.expireAccessTokens(portal.memberId);
  const t = performance.now();
  const r = await storm(Array.from({ length: 50 }, (_, j) => () => call(portal.memberId, j)));
  const s = [...r.latencies].sort((a, b) => a - b);
  console.log(expire ? 'expired' : 'live   ', r.failed, 'p50', s[25]!.toFixed(1), 'p99', s[49]!.toFixed(1), 'wall', (performance.now() - t).toFixed(1));
}
await close(); await bs.dispose(); await b24.close(); process.exit(0);
