// npm run bench [-- --short] [-- --json] [-- --only=7]: every benchmark of the library in one run, one table.
// Ratios are measured side by side in the same run; see the README's "Performance" section.

import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { expiryFloor, expiryWave, sweepIdle, SWEEP_CONCURRENCY } from './expiry.js';
import { hotPath, recipeHotPath } from './hot-path.js';
import { JSON_OUT, machine, ONLY, progress, row, SHORT, table, type Row } from './lib.js';
import { installCost, recipeInstallCost } from './install.js';
import { memoryUse } from './memory.js';
import { budgetRows } from './rate-budget.js';
import { clusterStormRows } from './redis-cluster.js';
import { restOverhead } from './rest-overhead.js';
import { inProcess, multiProcess, refreshRoundTripMs, STRATEGIES, type StormResult } from './storm.js';
import { createStore, fill, type StoreKind } from './stores.js';

const wanted = (n: number) => ONLY === undefined || ONLY.has(String(n));
const n = (x: number) => x.toLocaleString('en-US');

/** Sizes: the issue's, or small ones with --short. */
const SIZE = SHORT
  ? { small: 100, large: 1_000, recipeLarge: 1_000, hot: 100, distinct: 500, installs: 10, wave: 50, sweep: 200 }
  : { small: 1_000, large: 100_000, recipeLarge: 10_000, hot: 1_000, distinct: 10_000, installs: 100, wave: 1_000, sweep: 10_000 };

// `--stored=N` replaces the large number of stored portals of rows 1, 3 and 4 (seeding 100,000
// portals through each store's own fsynced upsert is most of a full run's time).
const storedArg = process.argv.find((a) => a.startsWith('--stored='));
if (storedArg !== undefined) {
  const large = Number(storedArg.slice('--stored='.length));
  if (!Number.isSafeInteger(large) || large < SIZE.small + SIZE.hot + SIZE.distinct) throw new TypeError(`--stored must be an integer of at least ${SIZE.small + SIZE.hot + SIZE.distinct}`);
  SIZE.large = large;
}

const STORES: readonly StoreKind[] = ['memory', 'file', 'sqlite', 'postgres', 'redis'];

async function storeRows(rows: Row[], b24: FakeBitrix24): Promise<void> {
  // Rows 1 (and 3, 4 below) share one filling of each store: measure at the small size, fill up to
  // the large one through the store's own upsert, measure again.
  for (const kind of STORES) {
    const bench = await createStore(kind);
    try {
      const at: Record<number, { poolNs: number; lruNs: number }> = {};
      const installs: Record<string, number> = {};
      let stored = 0;
      for (const size of [SIZE.small, SIZE.large]) {
        const started = performance.now();
        await fill(bench.store, stored, size);
        progress(`${kind}: ${n(size)} portals stored (${((performance.now() - started) / 1000).toFixed(1)} s to add ${n(size - stored)})`);
        stored = size;
        if (wanted(1)) {
          const r = (at[size] = await hotPath(bench, Math.min(SIZE.hot, size)));
          rows.push(
            row({
              row: 1,
              measure: `hot path: await pool.clientFor(), ${kind} store, ${n(size)} stored`,
              value: r.poolNs,
              unit: 'ns',
              baseline: r.lruNs,
              baselineName: 'awaited lru-cache get',
              target: '<= 1.25x',
              pass: r.poolNs <= 1.25 * r.lruNs,
            }),
          );
        }
        if (wanted(3) && kind !== 'memory') {
          for (const verify of [true, false]) installs[`${verify} ${size}`] = await installCost(bench, b24, verify, SIZE.installs);
        }
      }
      if (wanted(3) && kind !== 'memory') {
        for (const verify of [true, false]) {
          const small = installs[`${verify} ${SIZE.small}`]!;
          const large = installs[`${verify} ${SIZE.large}`]!;
          rows.push(
            row({
              row: 3,
              measure: `install over HTTP, ${kind} store, verification ${verify ? 'on' : 'off'}: ${n(SIZE.large)} stored`,
              value: large,
              unit: 'ms',
              baseline: small,
              baselineName: `${n(SIZE.small)} stored`,
              target: '<= 1.5x',
              pass: large <= 1.5 * small,
              note: `median of ${SIZE.installs}`,
            }),
          );
        }
      }
      if (wanted(4) && kind !== 'memory') {
        const mem = await memoryUse(bench.location, SIZE.hot, SIZE.distinct);
        const mib = (x: number) => `${x.toFixed(1)} MiB`;
        rows.push(
          row({
            row: 4,
            measure: `memory, ${kind} store holding ${n(SIZE.large)}: heap with ${n(SIZE.hot)} hot clients`,
            value: mem.hot.heapMiB,
            unit: 'MiB',
            baseline: mem.before.heapMiB,
            baselineName: 'pool with no client',
            target: null,
            pass: null,
            note: `RSS ${mib(mem.hot.rssMiB)}, ${mem.perClientKiB.toFixed(1)} KiB per cached client`,
          }),
          row({
            row: 4,
            measure: `memory, ${kind} store: heap after ${n(SIZE.distinct)} more distinct portals requested, max ${n(SIZE.hot)}`,
            value: mem.after.heapMiB,
            unit: 'MiB',
            baseline: mem.hot.heapMiB,
            baselineName: `${n(SIZE.hot)} hot`,
            target: '<= 1.25x (bounded by max)',
            pass: mem.after.heapMiB <= 1.25 * mem.hot.heapMiB && mem.cached <= SIZE.hot,
            note: `RSS ${mib(mem.after.rssMiB)}; ${mem.cached} clients cached`,
          }),
        );
      }
    } finally {
      await bench.dispose();
    }
  }
  if (wanted(3)) {
    const small = await recipeInstallCost(b24, SIZE.small, SIZE.installs);
    const large = await recipeInstallCost(b24, SIZE.recipeLarge, SIZE.installs);
    rows.push(
      row({
        row: 3,
        measure: `install baseline: the recipe's one JSON file, ${n(SIZE.recipeLarge)} stored`,
        value: large,
        unit: 'ms',
        baseline: small,
        baselineName: `${n(SIZE.small)} stored`,
        target: null,
        pass: null,
        note: `median of ${SIZE.installs}; no verification`,
      }),
    );
  }
}

/** The pool's lock waits in a storm: how many, and the longest (first try to adoption). */
function lockWaitNote(waits: readonly number[]): string {
  return waits.length === 0 ? 'no lock wait' : `${waits.length} lock wait(s), longest ${Math.max(...waits).toFixed(0)} ms`;
}

async function stormRows(rows: Row[], b24: FakeBitrix24): Promise<void> {
  const rtt = await refreshRoundTripMs(b24, SHORT ? 5 : 30);
  progress(`one refresh round trip at the stand-in: ${rtt.toFixed(2)} ms`);
  const callsOne = SHORT ? 10 : 50;
  const workers = SHORT ? 2 : 4;
  const callsEach = SHORT ? 5 : 25;
  const plan: { kind: StoreKind; run: (s: (typeof STRATEGIES)[number]) => Promise<StormResult> }[] = [];
  for (const kind of ['file', 'postgres', 'redis'] as const) {
    plan.push({ kind, run: (s) => inProcess(b24, kind, s, 1, callsOne, `1 process, 1 portal x ${callsOne} calls`) });
    if (kind === 'file' && !SHORT) plan.push({ kind, run: (s) => inProcess(b24, kind, s, 10, 20, '1 process, 10 portals x 20 calls') });
    if (!SHORT || kind === 'file') plan.push({ kind, run: (s) => multiProcess(b24, kind, s, workers, callsEach, `${workers} processes x ${callsEach} calls, 1 portal`) });
  }
  for (const step of plan) {
    const results: Partial<Record<(typeof STRATEGIES)[number], StormResult>> = {};
    for (const strategy of STRATEGIES) results[strategy] = await step.run(strategy);
    const pool = results.pool!;
    const shared = results.shared!;
    const perRequest = results['per-request']!;
    progress(
      `storm ${step.kind} ${pool.scenario}: refreshes pool ${pool.refreshRequests} / shared ${shared.refreshRequests} / per-request ${perRequest.refreshRequests}; ` +
        `failed ${pool.failed} / ${shared.failed} / ${perRequest.failed} of ${pool.calls}; p99 ${pool.p99Ms.toFixed(1)} / ${shared.p99Ms.toFixed(1)} / ${perRequest.p99Ms.toFixed(1)} ms`,
    );
    const label = `storm, ${step.kind} store, ${pool.scenario}`;
    rows.push(
      row({
        row: 6,
        measure: `${label}: refresh requests, pool`,
        value: pool.refreshRequests,
        unit: '',
        baseline: shared.refreshRequests,
        baselineName: `shared B24OAuth; per-request ${perRequest.refreshRequests}`,
        target: `= ${pool.portals} (one per portal)`,
        pass: pool.refreshRequests === pool.portals && pool.reuse === 0,
        note: `refresh-token reuse ${pool.reuse} / ${shared.reuse} / ${perRequest.reuse}`,
      }),
      row({
        row: 6,
        measure: `${label}: failed calls of ${pool.calls}, pool`,
        value: pool.failed,
        unit: '',
        baseline: shared.failed,
        baselineName: `shared B24OAuth; per-request ${perRequest.failed}`,
        ratio: null,
        target: '0',
        pass: pool.failed === 0,
      }),
      row({
        row: 6,
        measure: `${label}: p99 call latency, pool`,
        value: pool.p99Ms,
        unit: 'ms',
        baseline: pool.liveP99Ms,
        baselineName: 'same storm, tokens live',
        target: step.kind === 'file' ? null : `<= live + round trip (${rtt.toFixed(1)} ms) + 25 ms`,
        pass: step.kind === 'file' ? null : pool.p99Ms <= pool.liveP99Ms + rtt + 25,
        note: `p50 ${pool.p50Ms.toFixed(1)} ms; wall ${pool.wallMs.toFixed(0)} ms; shared p99 ${shared.p99Ms.toFixed(1)} ms; ${lockWaitNote(pool.lockWaits)}`,
      }),
    );
    // The storm's floor: every request of this storm is refused once (each left before any 401
    // came back: bench/storm-profile.ts), so each call costs at least two requests in a row.
    if (pool.twoWavesP99Ms !== undefined) {
      rows.push(
        row({
          row: 6,
          measure: `${label}: p99 call latency, pool, against the storm's floor`,
          value: pool.p99Ms,
          unit: 'ms',
          baseline: pool.twoWavesP99Ms,
          baselineName: 'floor: same storm, tokens live, each call twice in a row',
          target: step.kind === 'file' ? null : `<= floor + round trip (${rtt.toFixed(1)} ms) + 25 ms`,
          pass: step.kind === 'file' ? null : pool.p99Ms <= pool.twoWavesP99Ms + rtt + 25,
          note: `401s re-sent per process: ${(pool.resends ?? []).join(', ')}`,
        }),
      );
    }
  }
}

async function main(): Promise<void> {
  const m = machine();
  const rows: Row[] = [];
  const b24 = await FakeBitrix24.start();
  const started = performance.now();
  try {
    if (wanted(1)) {
      progress('row 1: the recipe baseline');
      for (const size of [SIZE.small, SIZE.recipeLarge]) {
        const ns = await recipeHotPath(size);
        rows.push(
          row({
            row: 1,
            measure: `hot path baseline: the recipe's clientForMember, ${n(size)} portals in its JSON file`,
            value: ns / 1e6,
            unit: 'ms',
            baseline: null,
            baselineName: null,
            target: null,
            pass: null,
          }),
        );
      }
    }
    if (wanted(2)) {
      for (const kind of STORES) {
        progress(`row 2: overhead per REST call, ${kind} store, budget on but never binding`);
        for (const o of await restOverhead(b24, kind)) {
          rows.push(
            row({
              row: 2,
              measure: `REST call overhead: profile (${o.version}) through the pool's client, ${kind} store, budget on (never binding), median of ${n(o.rounds)} interleaved`,
              value: o.poolUs,
              unit: 'us',
              baseline: o.bareUs,
              baselineName: 'bare B24OAuth, same token',
              target: '<= 1.05x',
              pass: o.poolUs <= 1.05 * o.bareUs && o.budgetWaits === 0,
              note: `${o.budgetWaits} budget waits`,
            }),
          );
        }
      }
    }
    if (wanted(1) || wanted(3) || wanted(4)) await storeRows(rows, b24);
    if (wanted(5)) {
      for (const kind of STORES) {
        // The floor right before each store's wave, so both see the same machine.
        progress(`row 5: expiry wave of ${n(SIZE.wave)} portals, floor (raw node:http, perfect single-flight)`);
        const floor = await expiryFloor(b24, SIZE.wave, 5);
        progress(`row 5: expiry wave of ${n(SIZE.wave)} portals on ${kind}`);
        const w = await expiryWave(b24, SIZE.wave, 5, kind);
        const label = `expiry wave, ${kind} store, ${n(w.portals)} portals x 5 concurrent calls`;
        const floorNote = `floor: ${floor.refreshRequests} refreshes, ${floor.failed} failed, p50 ${floor.p50Ms.toFixed(0)} ms`;
        rows.push(
          row({ row: 5, measure: `${label}: refresh requests`, value: w.refreshRequests, unit: '', baseline: null, baselineName: null, target: `= ${n(w.portals)}, no reuse`, pass: w.refreshRequests === w.portals && w.reuse === 0, note: `reuse ${w.reuse}; pool: ${w.refreshFailures} refresh failures, ${w.revocations} chains revoked` }),
          row({ row: 5, measure: `${label}: failed calls of ${n(w.calls)}`, value: w.failed, unit: '', baseline: null, baselineName: null, target: '0', pass: w.failed === 0 }),
          row({ row: 5, measure: `${label}: wall time`, value: w.wallMs, unit: 'ms', baseline: floor.wallMs, baselineName: 'floor: raw node:http, per-portal single-flight', target: '<= 1.1x', pass: w.wallMs <= 1.1 * floor.wallMs, note: `p50 ${w.p50Ms.toFixed(0)} ms; ${floorNote}` }),
          row({ row: 5, measure: `${label}: call latency p99`, value: w.p99Ms, unit: 'ms', baseline: floor.p99Ms, baselineName: 'floor p99', target: '<= 1.1x', pass: w.p99Ms <= 1.1 * floor.p99Ms }),
        );
      }
      progress(`row 5: sweep over ${n(SIZE.sweep)} idle portals on PostgreSQL`);
      const s = await sweepIdle(b24, SIZE.sweep);
      const sweepLabel = `pool.sweep() over ${n(s.portals)} idle portals, PostgreSQL, concurrency ${SWEEP_CONCURRENCY}`;
      rows.push(
        row({ row: 5, measure: `${sweepLabel}: refreshes`, value: s.refreshRequests, unit: '', baseline: null, baselineName: null, target: `= ${n(s.portals)}`, pass: s.refreshRequests === s.portals && s.refreshed === s.portals && s.failed === 0 }),
        row({ row: 5, measure: `${sweepLabel}: wall time`, value: s.wallMs, unit: 'ms', baseline: null, baselineName: null, target: null, pass: null }),
        row({
          row: 5,
          measure: `${sweepLabel}: live heap at each of its ${n(s.pages)} page reads, peak (after a full GC; peak heap with garbage ${s.peakHeapMiB.toFixed(0)} MiB)`,
          value: s.peakLiveHeapMiB,
          unit: 'MiB',
          baseline: s.heapBeforeMiB,
          baselineName: 'before the sweep, after a full GC',
          target: 'pages (growth well below the records read)',
          pass: null,
        }),
      );
    }
    if (wanted(6)) {
      progress('row 6: refresh storms');
      await stormRows(rows, b24);
      await clusterStormRows(rows, b24, SHORT);
    }
    if (wanted(7)) {
      progress('row 7: one request budget per portal across processes');
      await budgetRows(rows);
    }
  } finally {
    await b24.close();
  }
  const order = (r: Row) => r.row;
  rows.sort((a, b) => order(a) - order(b));
  console.log(`Machine: ${m.cores} cores, ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}${SHORT ? ' (--short: reduced sizes)' : ''}`);
  console.log(`Run took ${((performance.now() - started) / 1000).toFixed(0)} s.\n`);
  console.log(table(rows));
  if (JSON_OUT) {
    const path = fileURLToPath(new URL('./results.json', import.meta.url));
    const out = {
      machine: m,
      date: new Date().toISOString(),
      rows: rows.map((r) => ({ ...r, unit: r.unit === '' ? 'count' : r.unit })),
    };
    await writeFile(path, `${JSON.stringify(out, null, 2)}\n`);
    progress(`wrote ${path}`);
  }
}

await main();
process.exit(0);
