import { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { inProcess, refreshRoundTripMs } from './storm.js';
const b24 = await FakeBitrix24.start();
console.log('rtt', (await refreshRoundTripMs(b24, 20)).toFixed(2));
const kind = (process.argv[2] ?? 'redis') as 'redis';
for (let i = 0; i < 5; i++) {
  const r = await inProcess(b24, kind, 'pool', 1, 50, 'x');
  console.log(kind, r.refreshRequests, r.failed, 'p50', r.p50Ms.toFixed(1), 'p99', r.p99Ms.toFixed(1), 'wall', r.wallMs.toFixed(1));
}
await b24.close();
process.exit(0);
