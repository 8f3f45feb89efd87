// Request budget: one portal's Bitrix24 limit (leaky bucket, 2/s drain, 50 burst) kept across worker
// processes, against the stand-in enforcing that bucket. Run: npm run bench:budget [-- options]
//
//   scenarios (one portal):  100 calls at once | 200 calls at once | 4 calls a second for 45 s
//   processes x strategy:    1 x budget (the baseline) | 4 x budget | 4 x no budget (the pool before
//                            the budget: the SDK's own per-process limiter, requestBudget: false)
//   stores:                  file, sqlite, postgres, redis (the last two need the services on 127.0.0.1)
//
//   --scale N     multiplies the bucket's drain rate and the paced scenario's rate by N and divides
//                 its duration by N (same shape, N times faster; the table says which scale ran)
//   --stores a,b  the stores to run (default: file,sqlite,postgres,redis)
//   --quick       only the 100-calls scenario
//
// Counts (requests, 503s, failed calls) are what matters; wall times are one run on a shared machine.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PortalClientPool } from '../src/pool/pool.js';
import { FileTokenStore } from '../src/store/file.js';
import type { TokenStore } from '../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';

const self = fileURLToPath(import.meta.url);
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = 'redis://127.0.0.1:6379';
const SERVER = { ratePerSec: 2, burst: 50 };

type StoreKind = 'file' | 'sqlite' | 'postgres' | 'redis';
interface StoreSpec {
  kind: StoreKind;
  args: Record<string, string>;
}
interface Load {
  name: string;
  /** Calls at once, or paced calls: `perSec` for `seconds`. */
  atOnce?: number;
  perSec?: number;
  seconds?: number;
}
interface WorkerOutcome {
  ok: number;
  failed: number;
}

async function openStore(spec: StoreSpec): Promise<TokenStore> {
  switch (spec.kind) {
    case 'file':
      return new FileTokenStore({ directory: spec.args['directory']! });
    case 'sqlite': {
      const { SqliteTokenStore } = await import('../src/store/sqlite/index.js');
      return new SqliteTokenStore({ filename: spec.args['filename']! });
    }
    case 'postgres': {
      const { PostgresTokenStore } = await import('../src/store/postgres/index.js');
      return new PostgresTokenStore({ connectionString: PG_URL, tablePrefix: spec.args['prefix']! });
    }
    case 'redis': {
      const { RedisTokenStore } = await import('../src/store/redis/index.js');
      return new RedisTokenStore({ url: REDIS_URL, keyPrefix: spec.args['prefix']! });
    }
  }
}

/** One worker process: its own pool on the shared store; fires its share of the load on "go". */
async function workerMain(): Promise<void> {
  const [specJson, memberId, loadJson, budget, scale] = process.argv.slice(3) as [string, string, string, string, string];
  const spec = JSON.parse(specJson) as StoreSpec;
  const load = JSON.parse(loadJson) as Load & { share: number; workers: number };
  const rate = SERVER.ratePerSec * Number(scale);
  const pool = new PortalClientPool({
    store: await openStore(spec),
    clientId: process.env['B24_CLIENT_ID']!,
    clientSecret: process.env['B24_CLIENT_SECRET']!,
    requestBudget: budget === 'on' ? { ratePerSec: rate, burst: SERVER.burst } : false,
    // Without the budget: the SDK's own limiter with its defaults for the plan, at the same scale.
    restrictionParams: budget === 'on' ? undefined : { rateLimit: { burstLimit: SERVER.burst, drainRate: rate, adaptiveEnabled: true } },
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  const client = await pool.clientFor(memberId);
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const call = (i: number): Promise<boolean> =>
    client.actions[i % 2 === 0 ? 'v2' : 'v3'].call.make({ method: 'profile' }).then(
      (r) => r.isSuccess,
      () => false,
    );
  const calls: Promise<boolean>[] = [];
  if (load.atOnce !== undefined) {
    for (let i = 0; i < load.share; i++) calls.push(call(i));
  } else {
    const interval = 1000 / ((load.perSec ?? 1) / load.workers);
    const started = Date.now();
    for (let i = 0; i < load.share; i++) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + i * interval - Date.now())));
      calls.push(call(i));
    }
  }
  const results = await Promise.all(calls);
  const ok = results.filter(Boolean).length;
  process.stdout.write(`${JSON.stringify({ ok, failed: results.length - ok })}\n`);
  await pool.close();
  process.exit(0);
}

interface Row {
  store: StoreKind;
  load: string;
  processes: number;
  strategy: string;
  requests: number;
  limited: number;
  failed: number;
  calls: number;
  wallMs: number;
}

async function run(b24: FakeBitrix24, spec: StoreSpec, load: Load, processes: number, budget: boolean, scale: number): Promise<Row> {
  const store = await openStore(spec);
  const portal = b24.addPortal();
  await seedStore(store, b24, portal.memberId);
  await store.close?.();
  const total = load.atOnce ?? Math.round((load.perSec ?? 0) * (load.seconds ?? 0));
  const workers = Array.from({ length: processes }, (_, w) => {
    const share = Math.floor(total / processes) + (w < total % processes ? 1 : 0);
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', self, '--worker', JSON.stringify(spec), portal.memberId, JSON.stringify({ ...load, share, workers: processes }), budget ? 'on' : 'off', String(scale)],
      { env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret }, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const { value, done } = await lines.next();
      if (done) throw new Error('a worker ended early');
      return value;
    };
    return { child, next };
  });
  for (const w of workers) if ((await w.next()) !== 'ready') throw new Error('a worker did not start');
  b24.resetStats();
  const started = performance.now();
  for (const w of workers) w.child.stdin.write('go\n');
  const outcomes = await Promise.all(workers.map(async (w) => JSON.parse(await w.next()) as WorkerOutcome));
  const wallMs = performance.now() - started;
  return {
    store: spec.kind,
    load: load.name,
    processes,
    strategy: budget ? 'budget' : 'no budget',
    requests: b24.stats.restByMethod['profile'] ?? 0,
    limited: b24.stats.rest.queryLimitExceeded,
    failed: outcomes.reduce((sum, o) => sum + o.failed, 0),
    calls: total,
    wallMs,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const option = (name: string): string | undefined => {
    const at = args.indexOf(name);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const scale = Number(option('--scale') ?? 1);
  if (!(scale > 0)) throw new Error('--scale must be a positive number');
  const kinds = (option('--stores') ?? 'file,sqlite,postgres,redis').split(',') as StoreKind[];
  const loads: Load[] = [
    { name: '100 calls at once', atOnce: 100 },
    { name: '200 calls at once', atOnce: 200 },
    { name: `${4 * scale} calls/s for ${45 / scale} s`, perSec: 4 * scale, seconds: 45 / scale },
  ].slice(0, args.includes('--quick') ? 1 : 3);
  const b24 = await FakeBitrix24.start();
  b24.limitRequests({ drainPerSec: SERVER.ratePerSec * scale, burst: SERVER.burst });
  const dir = await mkdtemp(join(tmpdir(), 'b24pt-bench-budget-'));
  const rows: Row[] = [];
  try {
    for (const kind of kinds) {
      const prefix = `bench_budget_${process.pid}_${kind}`;
      const spec: StoreSpec = {
        kind,
        args: { directory: join(dir, 'files'), filename: join(dir, 'store.db'), prefix },
      };
      try {
        await (await openStore(spec)).close?.();
      } catch (error) {
        console.error(`skipping ${kind}: ${(error as Error).message}`);
        continue;
      }
      for (const load of loads) {
        for (const [processes, budget] of [[1, true], [4, true], [4, false]] as const) {
          if (!budget && kind !== 'file') continue; // "no budget" does not depend on the store
          const row = await run(b24, spec, load, processes, budget, scale);
          rows.push(row);
          console.error(JSON.stringify(row));
        }
      }
    }
  } finally {
    await b24.close();
    await rm(dir, { recursive: true, force: true });
  }
  const base = new Map(rows.filter((r) => r.processes === 1).map((r) => [`${r.store} ${r.load}`, r.wallMs]));
  console.log(`\nBitrix24 bucket: drain ${SERVER.ratePerSec * scale}/s, burst ${SERVER.burst} (scale ${scale}); budget: 80% of the rate, burst 40\n`);
  console.log('| store | load on one portal | processes | strategy | requests | answered 503 | failed calls | wall time | vs 1 process |');
  console.log('|---|---|---:|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const one = base.get(`${r.store} ${r.load}`);
    const ratio = one === undefined ? '' : `${(r.wallMs / one).toFixed(2)}x`;
    console.log(`| ${r.store} | ${r.load} | ${r.processes} | ${r.strategy} | ${r.requests} | ${r.limited} | ${r.failed} of ${r.calls} | ${(r.wallMs / 1000).toFixed(1)} s | ${ratio} |`);
  }
}

if (process.argv[2] === '--worker') await workerMain();
else await main();
