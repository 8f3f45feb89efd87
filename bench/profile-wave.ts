// Profiles the expiry wave (row 5) on one store: counts the store's calls and the file system's
// fsyncs per coordinated refresh, beside the floor in the same run. Run under `node --cpu-prof`
// for a CPU profile:
//
//   npx tsx bench/profile-wave.ts postgres 300        (store, portals)
//   npx tsx bench/profile-wave.ts file 300 64         (and maxConcurrentRefreshes)
//   npx tsx bench/profile-wave.ts redis 300 8 without-lock-and-get   (the store's tryLockAndGet hidden:
//                                                     read, lock, re-read, as for a store without it)
//   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profile-wave.ts file 300
//   B24PT_PROFILE_DIR=/tmp/prof npx tsx bench/profile-wave.ts memory 300
//                          (CPU profiles of the floor alone and of the wave alone: floor.cpuprofile, wave.cpuprofile)

import { open, writeFile, type FileHandle } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import type { TokenStore } from '../src/store/token-store.js';
import { expiryFloor, expiryWave } from './expiry.js';
import type { StoreKind } from './stores.js';

const kind = (process.argv[2] ?? 'postgres') as StoreKind;
const portals = Number(process.argv[3] ?? 300);
/** `maxConcurrentRefreshes` of the pool (the library's default: 8). */
const turns = process.argv[4] === undefined ? undefined : Number(process.argv[4]);
/** `without-lock-and-get`: the coordinator's path for a store that has no tryLockAndGet. */
const fused = process.argv[5] !== 'without-lock-and-get';
const counts: Record<string, number> = {};
const count = (name: string): void => void (counts[name] = (counts[name] ?? 0) + 1);
let syncing = 0;

// Every fsync of the process (FileHandle.sync and datasync), whoever calls it.
const handle = await open(process.execPath, 'r');
const proto = Object.getPrototypeOf(handle) as FileHandle;
await handle.close();
{
  for (const name of ['sync', 'datasync'] as const) {
    const original: (this: FileHandle) => Promise<void> = Reflect.get(proto, name);
    proto[name] = async function (this: FileHandle) {
      count(`fsync (${name})`);
      const started = performance.now();
      syncing++;
      counts['fsyncs at once, most'] = Math.max(counts['fsyncs at once, most'] ?? 0, syncing);
      try {
        return await original.call(this);
      } finally {
        syncing--;
        counts['fsync ms, total'] = Math.round((counts['fsync ms, total'] ?? 0) + performance.now() - started);
      }
    };
  }
}

/** Wraps a store's methods (and its leases') with counters. */
function counted(store: TokenStore): TokenStore {
  if (!fused) (store as { tryLockAndGet?: unknown }).tryLockAndGet = undefined;
  for (const name of ['get', 'upsert', 'update', 'tryLock', 'tryLockAndGet', 'acquire', 'list'] as const) {
    const original = (store as unknown as Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>)[name];
    if (original === undefined) continue;
    (store as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      count(name);
      const started = performance.now();
      const result = await original.apply(store, args);
      counts[`${name} ms, total`] = Math.round((counts[`${name} ms, total`] ?? 0) + performance.now() - started);
      const leased = name === 'tryLockAndGet' ? (result as { lease?: unknown }).lease : name === 'tryLock' ? result : undefined;
      if (leased !== undefined) {
        const lease = leased as { release: () => Promise<void>; renew?: (ttl: number) => Promise<boolean> };
        const release = lease.release.bind(lease);
        lease.release = () => (count('release'), release());
        if (lease.renew !== undefined) {
          const renew = lease.renew.bind(lease);
          lease.renew = (ttl) => (count('renew'), renew(ttl));
        }
      }
      return result;
    };
  }
  return store;
}

// The pool's OAuth requests (refreshes), timed: how many at once, and their total time.
let refreshing = 0;
const timedFetch = async (input: string, init: RequestInit): Promise<Response> => {
  refreshing++;
  counts['refresh requests at once, most'] = Math.max(counts['refresh requests at once, most'] ?? 0, refreshing);
  const started = performance.now();
  try {
    return await fetch(input, init);
  } finally {
    refreshing--;
    counts['refresh request ms, total'] = Math.round((counts['refresh request ms, total'] ?? 0) + performance.now() - started);
  }
};

/** CPU time (user + system) this process spent, ms: the floor's and the wave's work, apart from their wall time. */
const cpuMs = (usage: NodeJS.CpuUsage): number => Math.round((usage.user + usage.system) / 1000);

/** Profiles what runs between `start` and `stop` into `<B24PT_PROFILE_DIR>/<name>.cpuprofile` (nothing without the variable). */
const profileDir = process.env['B24PT_PROFILE_DIR'];
const inspector = profileDir === undefined ? undefined : new Session();
inspector?.connect();
await inspector?.post('Profiler.enable');
const profiling = {
  start: async (): Promise<void> => {
    await inspector?.post('Profiler.start');
  },
  stop: async (name: string): Promise<void> => {
    if (inspector === undefined || profileDir === undefined) return;
    const { profile } = await inspector.post('Profiler.stop');
    await writeFile(join(profileDir, `${name}.cpuprofile`), JSON.stringify(profile));
  },
};

const b24 = await FakeBitrix24.start();
try {
  await profiling.start();
  let cpu = process.cpuUsage();
  const floor = await expiryFloor(b24, portals, 5);
  const floorCpuMs = cpuMs(process.cpuUsage(cpu));
  await profiling.stop('floor');
  const wave = await expiryWave(b24, portals, 5, kind, undefined, (store) => {
    counted(store);
    return () => {
      for (const k of Object.keys(counts)) delete counts[k];
      cpu = process.cpuUsage();
      void profiling.start();
    };
  }, { ...(turns === undefined ? {} : { maxConcurrentRefreshes: turns }), fetch: timedFetch });
  const waveCpuMs = cpuMs(process.cpuUsage(cpu));
  await profiling.stop('wave');
  const perRefresh = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, +(v / Math.max(1, wave.refreshRequests)).toFixed(2)]));
  console.log(JSON.stringify({ kind, portals, maxConcurrentRefreshes: turns ?? 8, tryLockAndGet: fused, floorMs: Math.round(floor.wallMs), waveMs: Math.round(wave.wallMs), ratio: +(wave.wallMs / floor.wallMs).toFixed(2), floorCpuMs, waveCpuMs, p99: Math.round(wave.p99Ms), floorP99: Math.round(floor.p99Ms), refreshes: wave.refreshRequests, failed: wave.failed, counts, perRefresh }));
} finally {
  await b24.close();
}
process.exit(0);
