// Drives the refresh coordinator without the SDK, HTTP or real time: a MemoryTokenStore that a
// test can interpose on, a scripted refresher and a ManualClock.

import { ManualClock } from '../../src/clock.js';
import type { BackoffPolicy } from '../../src/coordinator/backoff.js';
import { RefreshCoordinator } from '../../src/coordinator/coordinator.js';
import type { ChainView, ChangeWait, RefreshFunction } from '../../src/coordinator/types.js';
import type { Logger } from '../../src/logger.js';
import type { TokenResponse } from '../../src/oauth/oauth-client.js';
import type { EvictionReason, PoolEventMap, PoolEventName } from '../../src/pool-events.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { ChainKey, ConditionalWriteResult, LockedRead, PortalRecord, PortalRecordInput, PortalRecordPatch, TokenStore } from '../../src/store/token-store.js';

/** A MemoryTokenStore whose `update` and `get` a test can interpose on. */
export class ScriptedStore extends MemoryTokenStore {
  /** Runs before each update; may throw (a store failure) or write to the store (a racing writer). */
  beforeUpdate: ((key: ChainKey, patch: PortalRecordPatch) => Promise<void> | void) | undefined;
  /** Runs before each get; may throw. */
  beforeGet: ((key: ChainKey) => Promise<void> | void) | undefined;
  updates = 0;

  override async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch): Promise<ConditionalWriteResult> {
    this.updates++;
    await this.beforeUpdate?.(key, patch);
    return super.update(key, expectedVersion, patch);
  }

  override async get(key: ChainKey): Promise<PortalRecord | undefined> {
    await this.beforeGet?.(key);
    return super.get(key);
  }

  /** Through `tryLock` and `get`, so that what a test puts in their place acts on this one too. */
  override async tryLockAndGet(key: ChainKey, ttlMs: number): Promise<LockedRead> {
    const lease = await this.tryLock(key, ttlMs);
    return { lease, record: await this.get(key) };
  }

  /** Takes `tryLockAndGet` away: the coordinator then reads, locks and reads again (a store of someone else's). */
  withoutLockAndGet(): this {
    (this as { tryLockAndGet?: unknown }).tryLockAndGet = undefined;
    return this;
  }
}

export const T0 = 1_700_000_000_000;

/** A portal chain record issued at `issuedAtMs` that expires an hour later. */
export function chainRecord(overrides: Partial<PortalRecordInput> = {}, issuedAtMs = T0): PortalRecordInput {
  return {
    memberId: 'member-a',
    chain: 'portal',
    domain: 'a.example.com',
    clientEndpoint: 'https://a.example.com/rest/',
    serverEndpoint: 'https://oauth.example.com/rest/',
    accessToken: 'access-0',
    refreshToken: 'refresh-0',
    expires: Math.floor(issuedAtMs / 1000) + 3600,
    scope: 'crm',
    status: 'L',
    userId: 1,
    applicationToken: 'app-token',
    state: 'active',
    revokedReason: null,
    installedAt: issuedAtMs,
    updatedAt: issuedAtMs,
    chainUpdatedAt: issuedAtMs,
    revokedAt: null,
    ...overrides,
  };
}

/** A refresh answer for generation `n`, issued at `nowMs`. */
export function tokens(n: number, nowMs: number, overrides: Partial<TokenResponse> = {}): TokenResponse {
  return {
    accessToken: `access-${n}`,
    refreshToken: `refresh-${n}`,
    expires: Math.floor(nowMs / 1000) + 3600,
    expiresIn: 3600,
    scope: 'crm',
    status: 'L',
    memberId: 'member-a',
    clientEndpoint: undefined,
    serverEndpoint: undefined,
    userId: 1,
    domain: undefined,
    ...overrides,
  };
}

/** A logger that records every call. */
export function recordingLogger(): Logger & { lines: { level: string; context: Record<string, unknown>; message?: string }[] } {
  const lines: { level: string; context: Record<string, unknown>; message?: string }[] = [];
  const at =
    (level: string) =>
    (context: Record<string, unknown>, message?: string): void => {
      lines.push({ level, context, ...(message === undefined ? {} : { message }) });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export interface Harness {
  store: ScriptedStore;
  clock: ManualClock;
  coordinator: RefreshCoordinator;
  refresh: RefreshFunction & { calls: PortalRecord[] };
  events: { event: PoolEventName; payload: unknown }[];
  drops: { memberId: string; chain: string; reason: EvictionReason }[];
  logger: ReturnType<typeof recordingLogger>;
  /** Sets what the next refresh calls do, in order; the last one repeats. */
  script(...steps: ((record: PortalRecord) => Promise<TokenResponse> | TokenResponse)[]): void;
}

export function harness(
  options: {
    store?: TokenStore;
    lockWaitMs?: number;
    lockTtlMs?: number;
    backoff?: Partial<BackoffPolicy>;
    suspendRetryMs?: number;
    maxConcurrentRefreshes?: number;
    waitForChange?: ChangeWait;
    answerWaitMs?: number;
  } = {},
): Harness {
  const store = new ScriptedStore({ now: () => clock.now() });
  const clock = new ManualClock(T0);
  const events: Harness['events'] = [];
  const drops: Harness['drops'] = [];
  const logger = recordingLogger();
  let steps: ((record: PortalRecord) => Promise<TokenResponse> | TokenResponse)[] = [];
  let generation = 0;
  const calls: PortalRecord[] = [];
  const refresh = Object.assign(
    async (record: PortalRecord): Promise<TokenResponse> => {
      calls.push(record);
      const step = steps.length > 1 ? steps.shift() : steps[0];
      if (step !== undefined) return step(record);
      generation++;
      return tokens(generation, clock.now());
    },
    { calls },
  );
  const coordinator = new RefreshCoordinator({
    store: options.store ?? store,
    refresh,
    clock,
    logger,
    random: () => 0,
    refreshAheadSec: 300,
    refreshJitterSec: 60,
    lockTtlMs: options.lockTtlMs ?? 15_000,
    lockWaitMs: options.lockWaitMs ?? 20_000,
    backoff: { transientMinMs: 0, transientMaxMs: 0, credentialsMs: 60_000, ...options.backoff },
    suspendRetryMs: options.suspendRetryMs ?? 3_600_000,
    maxConcurrentRefreshes: options.maxConcurrentRefreshes ?? 8,
    ...(options.waitForChange === undefined ? {} : { waitForChange: options.waitForChange }),
    ...(options.answerWaitMs === undefined ? {} : { answerWaitMs: options.answerWaitMs }),
    hooks: {
      // The telemetry events (refresh-attempt, lock-wait) are checked by test/otel; these tests list the others.
      emit: <E extends PoolEventName>(event: E, payload: PoolEventMap[E]) => {
        if (event !== 'refresh-attempt' && event !== 'lock-wait') events.push({ event, payload });
      },
      drop: (memberId, chain, reason) => drops.push({ memberId, chain, reason }),
    },
  });
  return {
    store,
    clock,
    coordinator,
    refresh,
    events,
    drops,
    logger,
    script: (...next) => {
      steps = next;
    },
  };
}

/** A holder's view of a chain, as a cached client keeps it. */
export function view(record: PortalRecord, windowSec = 300): ChainView & { adopted: PortalRecord[] } {
  const adopted: PortalRecord[] = [];
  const v = {
    record,
    windowSec,
    adopted,
    adopt(next: PortalRecord) {
      adopted.push(next);
      v.record = next;
    },
  };
  return v;
}
