// Row 7: one portal's Bitrix24 request limit (leaky bucket: drain 2/s, burst 50) kept across worker
// processes, against the stand-in enforcing that bucket (`FakeBitrix24.limitRequests()`).
//
//   loads (one portal):     100 calls at once | 4 calls a second for 45 s (| 200 calls at once with --only=7)
//   floor:                  the bucket's own, (N - burst) / drain, beside each 1-process run
//   processes x strategy:   1 x budget (the baseline) | 4 x budget (same total calls) |
//                           4 x no budget (file store only: the pool before the budget, i.e. the SDK's
//                           own per-process limiter, requestBudget: false)
//   stores:                 file, sqlite, postgres, redis
//   ten portals:            nine loaded at once and one idle, one process (bench/ten-portals.ts)
//
// --short scales the bucket and the budget together (drain and rate x40, same burst: the same shape,
// 40 times faster), halves the calls at once and drops the "no budget" runs. The full run goes at 4x,
// `--only=7` alone at Bitrix24's own numbers (see scaleFor).
// Counts (requests, 503s, failed calls) are what matters; wall times are one run on a shared machine.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';
import { ONLY, progress, row, SHORT, type Row } from './lib.js';
import { createStore, type BenchStore, type StoreKind } from './stores.js';
import { tenPortalsRows } from './ten-portals.js';

/** The server's numbers (standard plan); the pool's budget learns its headroom from them (the default). */
const SERVER = { ratePerSec: 2, burst: 50 };
/**
 * How much faster than Bitrix24's own numbers the runs go: with --short 40x; in the full run 4x
 * (drain 8/s, burst 50: the same shape and the same ratios to the bucket's floor in a quarter of
 * the time, so the whole table fits in 30 minutes); Bitrix24's own numbers with `--only=7` alone.
 */
const scaleFor = (_kind: StoreKind): number => (SHORT ? 40 : ONLY?.has('7') === true && ONLY.size === 1 ? 1 : 4);
const STORES: readonly StoreKind[] = ['file', 'sqlite', 'postgres', 'redis'];
const workerPath = fileURLToPath(new URL('./budget-worker.ts', import.meta.url));

/** A load on one portal: calls at once, or `perSec` paced calls for `seconds`. */
export interface BudgetLoad {
  readonly name: string;
  readonly atOnce?: number;
  readonly perSec?: number;
  readonly seconds?: number;
}

/**
 * The loads at a scale (drain and rate times `scale`, same burst: the same shape, `scale` times
 * faster). 200 calls at once is the 100-at-once shape again at twice the length (the ratio to the
 * bucket's floor does not move), so the full run keeps it only with `--only=7`.
 */
function loadsAt(scale: number): BudgetLoad[] {
  const half = SHORT ? 2 : 1;
  const loads: BudgetLoad[] = [{ name: `${100 / half} calls at once`, atOnce: 100 / half }];
  if (ONLY?.has('7') === true && ONLY.size === 1) loads.push({ name: `${200 / half} calls at once`, atOnce: 200 / half });
  loads.push({ name: `${4 * scale} calls a second for ${(45 / scale).toFixed(scale === 1 ? 0 : 1)} s`, perSec: 4 * scale, seconds: 45 / scale });
  return loads;
}

/**
 * The bucket's own floor for a load, ms: the calls beyond the burst leave at the drain rate
 * ((N - burst) / drain), and a paced load cannot end before its last call is sent.
 */
export function bucketFloorMs(load: BudgetLoad, drainPerSec: number, burst: number): number {
  const total = load.atOnce ?? Math.round((load.perSec ?? 0) * (load.seconds ?? 0));
  const drained = (Math.max(0, total - burst) / drainPerSec) * 1000;
  const paced = load.perSec === undefined ? 0 : ((total - 1) / load.perSec) * 1000;
  return Math.max(drained, paced);
}

/** What a worker is told for one run. */
export interface WorkerTask extends BudgetLoad {
  readonly memberId: string;
  /** This worker's calls. */
  readonly share: number;
  /** Workers sharing the load (a paced load is split between them). */
  readonly workers: number;
}

interface Run {
  requests: number;
  limited: number;
  failed: number;
  calls: number;
  wallMs: number;
}

interface Worker {
  readonly send: (line: string) => void;
  readonly next: () => Promise<string>;
  readonly exit: () => Promise<void>;
}

/** Starts worker processes on a store (spawned once per store: a worker serves every load). */
async function startWorkers(b24: FakeBitrix24, bench: BenchStore, count: number, budget: boolean, scale: number): Promise<Worker[]> {
  const workers = Array.from({ length: count }, (): Worker => {
    const args = [JSON.stringify(bench.location), budget ? 'on' : 'off', String(SERVER.ratePerSec * scale), String(SERVER.burst)];
    const child = spawn(process.execPath, ['--import', 'tsx', workerPath, ...args], {
      env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return {
      send: (line) => child.stdin.write(`${line}\n`),
      next: async () => {
        const { value, done } = await lines.next();
        if (done) throw new Error('a budget worker ended early');
        return value;
      },
      exit: async () => {
        child.stdin.write('exit\n');
        await exited;
      },
    };
  });
  for (const w of workers) if ((await w.next()) !== 'started') throw new Error('a budget worker did not start');
  return workers;
}

async function run(b24: FakeBitrix24, bench: BenchStore, load: BudgetLoad, workers: readonly Worker[]): Promise<Run> {
  const portal = b24.addPortal();
  await seedStore(bench.store, b24, portal.memberId);
  const total = load.atOnce ?? Math.round((load.perSec ?? 0) * (load.seconds ?? 0));
  workers.forEach((w, i) => {
    const share = Math.floor(total / workers.length) + (i < total % workers.length ? 1 : 0);
    const task: WorkerTask = { ...load, memberId: portal.memberId, share, workers: workers.length };
    w.send(JSON.stringify(task));
  });
  for (const w of workers) if ((await w.next()) !== 'ready') throw new Error('a budget worker did not get its client');
  b24.resetStats();
  const started = performance.now();
  for (const w of workers) w.send('go');
  const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.next()) as { ok: number; failed: number }));
  const wallMs = performance.now() - started;
  return {
    requests: b24.stats.restByMethod['profile'] ?? 0,
    limited: b24.stats.rest.queryLimitExceeded,
    failed: outcomes.reduce((sum, o) => sum + o.failed, 0),
    calls: total,
    wallMs,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Row 7: the request budget across 4 processes against 1, on every shared store. */
export async function budgetRows(rows: Row[]): Promise<void> {
  const b24 = await FakeBitrix24.start();
  try {
    // Ten portals in one process: 4 times faster with --short (nine portals at 40 times would be CPU-bound).
    const tenScale = SHORT ? 4 : 1;
    b24.limitRequests({ drainPerSec: SERVER.ratePerSec * tenScale, burst: SERVER.burst });
    await tenPortalsRows(rows, b24, { ratePerSec: SERVER.ratePerSec * tenScale, burst: SERVER.burst });
    progress(`row 7 ten portals: ${JSON.stringify(rows.slice(-2).map((r) => [r.value, r.baseline, r.note]))}`);
    for (const kind of STORES) {
      const scale = scaleFor(kind);
      const drain = SERVER.ratePerSec * scale;
      const bucket = `bucket drain ${drain}/s, burst ${SERVER.burst}`;
      b24.limitRequests({ drainPerSec: drain, burst: SERVER.burst });
      const bench = await createStore(kind);
      const workers = await startWorkers(b24, bench, 4, true, scale);
      const unbudgeted = kind === 'file' && !SHORT ? await startWorkers(b24, bench, 4, false, scale) : [];
      try {
        for (const load of loadsAt(scale)) {
          const floorMs = bucketFloorMs(load, drain, SERVER.burst);
          const one = await run(b24, bench, load, workers.slice(0, 1));
          const four = await run(b24, bench, load, workers);
          progress(`row 7 ${kind}, ${load.name}: 1 process ${JSON.stringify(one)}; 4 processes ${JSON.stringify(four)}`);
          const label = `request budget, ${kind} store, ${load.name} on one portal, 4 processes`;
          rows.push(
            row({
              row: 7,
              measure: `${label}: answered 503`,
              value: four.limited,
              unit: '',
              baseline: one.limited,
              baselineName: '1 process',
              ratio: null,
              target: '0, and 0 failed calls',
              pass: four.limited === 0 && four.failed === 0,
              note: `${four.requests} requests, ${four.failed} of ${four.calls} calls failed; 1 process: ${one.requests} requests, ${one.failed} failed; ${bucket}`,
            }),
            row({
              row: 7,
              measure: `${label}: wall time`,
              value: four.wallMs,
              unit: 'ms',
              baseline: one.wallMs,
              baselineName: '1 process, same calls',
              target: '<= 1.1x',
              pass: four.wallMs <= 1.1 * one.wallMs,
              note: `${seconds(four.wallMs)} against ${seconds(one.wallMs)}`,
            }),
          );
          // Calls within the burst have no floor to compare with (--short halves the calls at once to the burst).
          if (floorMs > 0) rows.push(
            row({
              row: 7,
              measure: `request budget, ${kind} store, ${load.name} on one portal, 1 process: wall time against the bucket's floor`,
              value: one.wallMs,
              unit: 'ms',
              baseline: floorMs,
              baselineName: load.perSec === undefined ? "bucket's floor, (N - burst) / drain" : "bucket's floor, (N - burst) / drain, or the pacing",
              target: '<= 1.1x, 0 answered 503',
              pass: one.wallMs <= 1.1 * floorMs && one.limited === 0,
              note: `${seconds(one.wallMs)} against ${seconds(floorMs)}; ${bucket}; budget headroom learned (default)`,
            }),
          );
          if (unbudgeted.length > 0) {
            const off = await run(b24, bench, load, unbudgeted);
            progress(`row 7 ${kind}, ${load.name}: 4 processes without the budget ${JSON.stringify(off)}`);
            rows.push(
              row({
                row: 7,
                measure: `without the budget (the SDK's own limiter per process), ${load.name} on one portal, 4 processes: answered 503`,
                value: off.limited,
                unit: '',
                baseline: four.limited,
                baselineName: 'with the budget',
                ratio: null,
                target: null,
                pass: null,
                note: `${off.requests} requests, ${off.failed} of ${off.calls} calls failed, ${seconds(off.wallMs)}`,
              }),
            );
          }
        }
      } finally {
        await Promise.all([...workers, ...unbudgeted].map((w) => w.exit()));
        await bench.dispose();
      }
    }
  } finally {
    await b24.close();
  }
}
