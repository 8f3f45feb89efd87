import { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { expiryFloor, expiryWave } from './expiry.js';
const b24 = await FakeBitrix24.start();
const kind = (process.argv[2] ?? 'memory') as 'memory';
for (let round = 0; round < 2; round++) {
  const floor = await expiryFloor(b24, 300, 5);
  const out: string[] = [`floor ${floor.wallMs.toFixed(0)}`];
  for (const t of [8, 32, 1000]) {
    const w = await expiryWave(b24, 300, 5, kind, undefined, undefined, t);
    out.push(`${t}: ${w.wallMs.toFixed(0)} (${(w.wallMs / floor.wallMs).toFixed(2)}x, p99 ${w.p99Ms.toFixed(0)}, failed ${w.failed}, refreshes ${w.refreshRequests})`);
  }
  console.log(kind, out.join(' | '));
}
await b24.close();
process.exit(0);
