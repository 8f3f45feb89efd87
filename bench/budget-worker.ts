// One worker process of row 7 (bench/rate-budget.ts): its own pool on the shared store, reused for
// every load. Each JSON line on stdin names a portal and a share of a load: the worker gets the
// portal's client, says "ready", fires its share on "go" and prints {ok, failed} as one JSON line.

import { createInterface } from 'node:readline';
import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { standInTrust } from '../src/testing/fake-bitrix24.js';
import type { WorkerTask } from './rate-budget.js';
import { openStore, type StoreLocation } from './stores.js';

const [location, budget, rate, burst] = process.argv.slice(2) as [string, string, string, string];
const limits = { ratePerSec: Number(rate), burst: Number(burst) };
const pool = new PortalClientPool({ ...standInTrust(process.env['B24_URL']!),
  store: openStore(JSON.parse(location) as StoreLocation),
  clientId: process.env['B24_CLIENT_ID']!,
  clientSecret: process.env['B24_CLIENT_SECRET']!,
  requestBudget: budget === 'on' ? limits : false,
  // Without the budget: the SDK's own limiter with its defaults for the plan, at the same scale.
  restrictionParams: budget === 'on' ? undefined : { rateLimit: { burstLimit: limits.burst, drainRate: limits.ratePerSec, adaptiveEnabled: true } },
  logger: silentLogger,
});
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
process.stdout.write('started\n');
for (;;) {
  const { value, done } = await lines.next();
  if (done || value === 'exit') break;
  const task = JSON.parse(value) as WorkerTask;
  const client = await pool.clientFor(task.memberId);
  process.stdout.write('ready\n');
  await lines.next(); // "go"
  const call = (i: number): Promise<boolean> =>
    client.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' }).then(
      (r) => r.isSuccess,
      () => false,
    );
  const calls: Promise<boolean>[] = [];
  if (task.perSec === undefined) {
    for (let i = 0; i < task.share; i++) calls.push(call(i));
  } else {
    const interval = 1000 / (task.perSec / task.workers);
    const started = Date.now();
    for (let i = 0; i < task.share; i++) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + i * interval - Date.now())));
      calls.push(call(i));
    }
  }
  const results = await Promise.all(calls);
  const ok = results.filter(Boolean).length;
  process.stdout.write(`${JSON.stringify({ ok, failed: results.length - ok })}\n`);
}
await pool.close();
process.exit(0);
