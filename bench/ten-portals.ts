// Row 7, ten portals at once in one process: nine under a burst each, one idle portal making paced
// calls. Each loaded portal's time is what its own budget allows; the idle portal waits for no slot
// and its latency is compared with the same calls made before the load.

import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import { seedStore, type FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { median, percentile, row, SHORT, type Row } from './lib.js';
import { createStore } from './stores.js';

/** Ten portals (nine loaded with `calls` at once each, one idle) under a budget of `limits`. */
export async function tenPortalsRows(rows: Row[], b24: FakeBitrix24, limits: { ratePerSec: number; burst: number }): Promise<void> {
  const calls = SHORT ? 50 : 100;
  const bench = await createStore('memory');
  const pool = new PortalClientPool({ ...b24.trust, store: bench.store, clientId: b24.clientId, clientSecret: b24.clientSecret, requestBudget: limits, logger: silentLogger });
  try {
    const members: string[] = [];
    for (let i = 0; i < 10; i++) {
      const portal = b24.addPortal();
      await seedStore(bench.store, b24, portal.memberId);
      members.push(portal.memberId);
    }
    const clients = await Promise.all(members.map((m) => pool.clientFor(m)));
    const idle = clients[9]!;
    const pace = 1000 / limits.ratePerSec; // the idle portal calls well within its own budget
    const idleCalls = async (): Promise<number[]> => {
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        await idle.actions.v2.call.make({ method: 'profile' });
        latencies.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, pace));
      }
      return latencies;
    };
    const alone = await idleCalls();
    const idleMember = members[9]!;
    const waitsBefore = pool.stats().budgets[idleMember]?.waits ?? 0;
    const started = performance.now();
    const loaded = clients.slice(0, 9).map(async (b) => {
      await Promise.all(Array.from({ length: calls }, () => b.actions.v2.call.make({ method: 'profile' })));
      return performance.now() - started;
    });
    const [underLoad, portalMs] = await Promise.all([idleCalls(), Promise.all(loaded)]);
    const idleWaits = (pool.stats().budgets[idleMember]?.waits ?? 0) - waitsBefore;
    // One portal alone: its burst at once, the rest one interval apart (80% headroom).
    const rate = limits.ratePerSec * 0.8;
    const ownMs = ((calls - Math.floor(limits.burst * 0.8)) / rate) * 1000;
    const label = `request budget, ten portals in one process (nine x ${calls} calls at once, one idle)`;
    rows.push(
      row({
        row: 7,
        measure: `${label}: slowest loaded portal's time for its calls`,
        value: Math.max(...portalMs),
        unit: 'ms',
        baseline: ownMs,
        baselineName: 'its own budget alone',
        target: '<= 1.1x',
        pass: Math.max(...portalMs) <= 1.1 * ownMs,
        note: `fastest ${(Math.min(...portalMs) / 1000).toFixed(1)} s; ${b24.stats.rest.queryLimitExceeded} answered 503`,
      }),
      row({
        row: 7,
        measure: `${label}: idle portal's call latency under the load, p50`,
        value: median(underLoad),
        unit: 'ms',
        baseline: median(alone),
        baselineName: 'same calls before the load',
        target: '0 budget waits',
        pass: idleWaits === 0,
        note: `p99 ${percentile(underLoad, 99).toFixed(1)} ms against ${percentile(alone, 99).toFixed(1)} ms; ${idleWaits} budget waits; the load shares this process's CPU`,
      }),
    );
  } finally {
    await pool.close();
    await bench.dispose();
  }
}
