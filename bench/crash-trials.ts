// Crashes, measured: trials of a cross-process refresh storm on a shared store (the file store or
// PostgreSQL), one random worker killed with SIGKILL at a random moment in each. After each trial,
// every portal's stored chain is checked at the stand-in Bitrix24: a portal is lost when its record
// is gone or no longer active, or its stored refresh token no longer refreshes.
//
//   npm run bench:crash                          100 trials on each store
//   npm run bench:crash -- --trials 20 --store file
//   options: --trials N  --store file|postgres|both  --portals N  --workers N  --rounds N  --calls N  --seed N
//
// Each trial: fresh portals seeded in the store; `rounds` times: every access token expired at the
// stand-in, then every live worker storms every portal (`calls` concurrent calls each). In one random
// round, one random worker is killed after a random delay within the round's usual duration. The
// killed worker is replaced before the next trial. Lost chains are classified by their stored
// refresh token at the stand-in: `spent` means the OAuth host answered a refresh whose new pair
// never reached the store (the kill fell between the answer and the commit); anything else would
// be a defect. `uncommitted` counts refresh answers of the trial not matched by a committed write.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileTokenStore } from '../src/store/file/store.js';
import type { TokenStore } from '../src/store/token-store.js';
import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';

const WORKER = fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url));
const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

export type CrashStoreKind = 'file' | 'postgres';

export interface CrashTrialOptions {
  readonly store: CrashStoreKind;
  readonly trials: number;
  readonly portals?: number;
  readonly workers?: number;
  readonly rounds?: number;
  readonly calls?: number;
  /** Seeds the choice of victim, round and delay (the timing itself is the machine's). */
  readonly seed?: number;
  /** This many first trials run without a kill (the control: every chain survives, every answer is committed). */
  readonly controlTrials?: number;
  readonly pgUrl?: string;
  readonly onTrial?: (trial: CrashTrialResult) => void;
}

export interface CrashTrialResult {
  readonly trial: number;
  /** Which worker was killed, in which round, after how many ms (undefined in a control run). */
  readonly kill: { worker: number; round: number; afterMs: number } | undefined;
  /** Portals whose stored chain no longer refreshes, by cause (`spent`, `dead`, `revoked`, `missing`, ...). */
  readonly lost: Readonly<Record<string, number>>;
  readonly lostTotal: number;
  /** Refresh answers of the stand-in in this trial not matched by a write that reached the store. */
  readonly uncommitted: number;
  readonly refreshes: number;
  readonly refreshReuse: number;
  readonly failedCalls: number;
  readonly calls: number;
}

export interface CrashSummary {
  readonly store: CrashStoreKind;
  readonly trials: number;
  readonly portals: number;
  readonly portalsLost: number;
  readonly trialsWithLoss: number;
  readonly lostByCause: Readonly<Record<string, number>>;
  readonly uncommitted: number;
  readonly refreshes: number;
  readonly refreshReuse: number;
  readonly failedCalls: number;
  readonly calls: number;
  readonly results: readonly CrashTrialResult[];
}

/** mulberry32: a small seeded generator, so a run's choices can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Worker {
  readonly child: ChildProcessWithoutNullStreams;
  readonly next: () => Promise<string | undefined>;
  killed: boolean;
}

function startWorker(spec: object, b24: FakeBitrix24): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(spec)], {
    env: { ...process.env, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: 'pipe',
  });
  child.stderr.resume();
  const iterator = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    child,
    killed: false,
    next: async () => {
      const { value, done } = await iterator.next();
      return done ? undefined : (value);
    },
  };
}

async function ready(worker: Worker): Promise<void> {
  const line = await worker.next();
  if (line !== 'ready') throw new Error(`a crash worker did not start (exit ${worker.child.exitCode})`);
}

async function stop(worker: Worker): Promise<void> {
  if (worker.killed || worker.child.exitCode !== null) return;
  const exited = new Promise((resolve) => worker.child.once('exit', resolve));
  worker.child.stdin.end(`${JSON.stringify({ id: 0, quit: true })}\n`);
  await Promise.race([exited, sleep(5000).then(() => worker.child.kill('SIGKILL'))]);
}

interface StoreHandle {
  readonly store: TokenStore;
  readonly spec: object;
  readonly dispose: () => Promise<void>;
}

async function openStore(kind: CrashStoreKind, pgUrl: string): Promise<StoreHandle> {
  if (kind === 'file') {
    const directory = await mkdtemp(join(tmpdir(), 'b24pt-crash-'));
    return {
      store: new FileTokenStore({ directory }),
      spec: { kind: 'file', directory },
      dispose: () => rm(directory, { recursive: true, force: true }),
    };
  }
  const { PostgresTokenStore } = await import('../src/store/postgres/index.js');
  const tablePrefix = `t_crash_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const store = new PostgresTokenStore({ connectionString: pgUrl, tablePrefix });
  return {
    store,
    spec: { kind: 'postgres', connectionString: pgUrl, tablePrefix },
    dispose: async () => {
      await store.close();
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      try {
        await client.query(`DROP TABLE IF EXISTS "${tablePrefix}_records", "${tablePrefix}_locks", "${tablePrefix}_meta" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

/** Runs the trials on one store kind and returns their summary. */
export async function runCrashTrials(options: CrashTrialOptions): Promise<CrashSummary> {
  const portals = options.portals ?? 4;
  const workerCount = options.workers ?? 3;
  const rounds = options.rounds ?? 3;
  const calls = options.calls ?? 6;
  const rand = random(options.seed ?? 1);
  const b24 = await FakeBitrix24.start();
  const handle = await openStore(options.store, options.pgUrl ?? process.env['B24PT_PG_URL'] ?? DEFAULT_PG_URL);
  const workers: Worker[] = [];
  const results: CrashTrialResult[] = [];
  let command = 0;
  let roundMs = 150; // running mean of a round's duration, where the kill delay is drawn
  try {
    for (let i = 0; i < workerCount; i++) workers.push(startWorker(handle.spec, b24));
    await Promise.all(workers.map(ready));

    for (let trial = 1; trial <= options.trials; trial++) {
      const memberIds: string[] = [];
      const seededVersion = new Map<string, number>();
      for (let p = 0; p < portals; p++) {
        const { memberId } = b24.addPortal();
        const { record } = await seedStore(handle.store, b24, memberId);
        memberIds.push(memberId);
        seededVersion.set(memberId, record.version);
      }
      b24.resetStats();
      const kill =
        trial <= (options.controlTrials ?? 0)
        ? undefined
        : { worker: Math.floor(rand() * workerCount), round: Math.floor(rand() * rounds), fraction: rand() };
      let killInfo: CrashTrialResult['kill'];
      let failedCalls = 0;
      let totalCalls = 0;
      for (let round = 0; round < rounds; round++) {
        for (const memberId of memberIds) b24.expireAccessTokens(memberId);
        const id = ++command;
        const started = Date.now();
        const live = workers.filter((w) => !w.killed);
        const answers = live.map(async (worker) => {
          worker.child.stdin.write(`${JSON.stringify({ id, memberIds, calls })}\n`);
          const line = await worker.next();
          if (line === undefined) return undefined; // killed mid-storm
          return JSON.parse(line) as { ok: number; failed: number };
        });
        if (kill !== undefined && kill.round === round) {
          const victim = workers[kill.worker]!;
          const afterMs = Math.round(kill.fraction * roundMs * 1.2);
          await sleep(afterMs);
          victim.killed = true;
          victim.child.kill('SIGKILL');
          killInfo = { worker: kill.worker, round, afterMs };
        }
        for (const outcome of await Promise.all(answers)) {
          if (outcome === undefined) continue;
          failedCalls += outcome.failed;
          totalCalls += outcome.ok + outcome.failed;
        }
        if (kill === undefined || kill.round !== round) roundMs = roundMs * 0.8 + (Date.now() - started) * 0.2;
      }

      const lost: Record<string, number> = {};
      let committed = 0;
      for (const memberId of memberIds) {
        const record = await handle.store.get(memberId);
        let cause: string | undefined;
        if (record === undefined) cause = 'missing';
        else {
          const writes = record.version - seededVersion.get(memberId)!;
          committed += record.state === 'active' ? writes : Math.max(0, writes - 1);
          const status = b24.tokenStatus(record.refreshToken);
          if (status !== 'live') cause = status;
          else if (record.state !== 'active') cause = record.state;
        }
        if (cause !== undefined) lost[cause] = (lost[cause] ?? 0) + 1;
      }
      const result: CrashTrialResult = {
        trial,
        kill: killInfo,
        lost,
        lostTotal: Object.values(lost).reduce((a, b) => a + b, 0),
        uncommitted: b24.stats.refreshSuccess - committed,
        refreshes: b24.stats.refreshSuccess,
        refreshReuse: b24.stats.refreshReuse,
        failedCalls,
        calls: totalCalls,
      };
      results.push(result);
      options.onTrial?.(result);

      for (let i = 0; i < workers.length; i++) {
        if (!workers[i]!.killed) continue;
        await new Promise((resolve) => (workers[i]!.child.exitCode !== null || workers[i]!.child.signalCode !== null ? resolve(null) : workers[i]!.child.once('exit', resolve)));
        workers[i] = startWorker(handle.spec, b24);
        await ready(workers[i]!);
      }
    }
  } finally {
    await Promise.all(workers.map(stop));
    await b24.close();
    await handle.dispose();
  }

  const lostByCause: Record<string, number> = {};
  for (const r of results) for (const [cause, n] of Object.entries(r.lost)) lostByCause[cause] = (lostByCause[cause] ?? 0) + n;
  const sum = (pick: (r: CrashTrialResult) => number): number => results.reduce((total, r) => total + pick(r), 0);
  return {
    store: options.store,
    trials: results.length,
    portals: results.length * portals,
    portalsLost: sum((r) => r.lostTotal),
    trialsWithLoss: results.filter((r) => r.lostTotal > 0).length,
    lostByCause,
    uncommitted: sum((r) => r.uncommitted),
    refreshes: sum((r) => r.refreshes),
    refreshReuse: sum((r) => r.refreshReuse),
    failedCalls: sum((r) => r.failedCalls),
    calls: sum((r) => r.calls),
    results,
  };
}

function flag(args: readonly string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  return at >= 0 ? args[at + 1] : undefined;
}

async function main(args: readonly string[]): Promise<void> {
  const trials = Number(flag(args, 'trials') ?? 100);
  if (!Number.isSafeInteger(trials) || trials < 1) throw new TypeError('--trials must be a positive integer');
  const which = flag(args, 'store') ?? 'both';
  const kinds: CrashStoreKind[] = which === 'both' ? ['file', 'postgres'] : [which as CrashStoreKind];
  const num = (name: string): number | undefined => (flag(args, name) === undefined ? undefined : Number(flag(args, name)));
  const seed = num('seed') ?? Math.floor(Math.random() * 2 ** 31);
  console.log(`crash trials: ${trials} per store, seed ${seed} (replay the choices with --seed ${seed})`);
  for (const kind of kinds) {
    // PostgreSQL: enter the test suite's gate, so its outage test never stops the server mid-trial
    // (an outage in the window would be counted as a crash loss).
    const leave = kind === 'postgres' ? await (await import('../test/store/fixtures/pg-support.js')).enterGate('shared') : undefined;
    const summary = await runCrashTrials({
      store: kind,
      trials,
      seed,
      ...(num('portals') === undefined ? {} : { portals: num('portals')! }),
      ...(num('workers') === undefined ? {} : { workers: num('workers')! }),
      ...(num('rounds') === undefined ? {} : { rounds: num('rounds')! }),
      ...(num('calls') === undefined ? {} : { calls: num('calls')! }),
      onTrial: (r) => {
        if (r.lostTotal > 0 || r.uncommitted !== 0 || r.trial % 10 === 0) {
          console.log(
            `  ${kind} trial ${r.trial}: kill ${JSON.stringify(r.kill)} lost ${JSON.stringify(r.lost)} uncommitted ${r.uncommitted} refreshes ${r.refreshes} reuse ${r.refreshReuse} failed calls ${r.failedCalls}/${r.calls}`,
          );
        }
      },
    });
    await leave?.();
    const { results: _results, ...figures } = summary;
    console.log(JSON.stringify(figures));
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
