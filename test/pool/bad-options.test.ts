// Issue 20 case 7: one portal's bad options must not take the process down. A `requestBudget`
// function that throws or returns invalid limits fails that portal's call with a typed error (the
// call settles, nothing escapes as an unhandled rejection, other portals carry on); options that are
// not what they claim to be (a spool that is no spool, a logger without methods) are refused when
// given, with InvalidOptionsError, instead of crashing the process later from a timer.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, InvalidOptionsError, findPortalTokensError } from '../../src/errors.js';
import { createLifecycleHandler } from '../../src/http/handler.js';
import { PortalClientPool, type PortalClientPoolOptions } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger, seedPortal } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

// Whatever escapes to the process while a test runs (the suite-wide check fails the file on these too).
let escaped: unknown[] = [];
const onEscape = (reason: unknown): void => {
  escaped.push(reason);
};
beforeEach(() => {
  escaped = [];
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
});
afterEach(() => {
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
});

async function seeded(store: MemoryTokenStore): Promise<string> {
  const portal = b24.addPortal();
  await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
  return portal.memberId;
}

function newPool(store: MemoryTokenStore, extra: Partial<PortalClientPoolOptions> = {}): PortalClientPool {
  return new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: recordingLogger(), ...extra });
}

/** The call's outcome, or 'pending' when it has not settled within `ms` (real time). */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<PromiseSettledResult<T> | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((resolve) => {
    timer = setTimeout(() => resolve('pending'), ms);
  });
  const outcome = await Promise.race([
    promise.then(
      (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
    ),
    pending,
  ]);
  clearTimeout(timer);
  return outcome;
}

/** Lets timers and pending rejections run (an unhandled rejection is reported after a macrotask). */
const aWhile = (ms = 50): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('a requestBudget(memberId) function that fails for one portal', () => {
  const cases: [string, (memberId: string) => never | { ratePerSec: number; burst: number }][] = [
    [
      'throws',
      () => {
        throw new Error('budget table unavailable');
      },
    ],
    ['returns invalid limits', () => ({ ratePerSec: 0, burst: 10 })],
    ['returns something that is no limits', () => 'fast' as never],
  ];
  for (const [what, bad] of cases) {
    it(`${what}: that portal's calls settle with InvalidOptionsError, nothing escapes, other portals carry on`, async () => {
      const store = new MemoryTokenStore();
      const [badPortal, goodPortal] = [await seeded(store), await seeded(store)];
      const pool = newPool(store, { requestBudget: (memberId) => (memberId === badPortal ? bad(memberId) : { ratePerSec: 50, burst: 50 }) });
      try {
        const client = await pool.clientFor(badPortal);
        const outcomes = await Promise.all(
          Array.from({ length: 3 }, () => settledWithin(client.actions.v2.call.make({ method: 'profile' }), 5_000)),
        );
        for (const outcome of outcomes) {
          expect(outcome).not.toBe('pending');
          if (outcome === 'pending') continue;
          expect(outcome.status).toBe('rejected');
          const typed = outcome.status === 'rejected' ? findPortalTokensError(outcome.reason) : undefined;
          expect(typed).toBeInstanceOf(InvalidOptionsError);
          expect(typed?.code).toBe(ErrorCode.InvalidOptions);
          expect((typed as InvalidOptionsError).option).toBe('requestBudget');
          expect(typed?.memberId).toBe(badPortal);
        }
        const good = await pool.clientFor(goodPortal);
        const answer = await good.actions.v2.call.make({ method: 'profile' });
        expect(answer.isSuccess).toBe(true);
        await aWhile();
        expect(escaped).toEqual([]);
      } finally {
        await pool.close();
      }
    });
  }
});

describe('options are checked when they are given', () => {
  it('a spool that is no spool ({ dir }) is refused by createLifecycleHandler, and no timer crashes later', async () => {
    const pool = newPool(new MemoryTokenStore());
    try {
      let handler: { close(): void } | undefined;
      let thrown: unknown;
      try {
        handler = createLifecycleHandler({ pool, spool: { dir: '/tmp/spool' } as never, spoolReplayMs: 10 });
      } catch (error) {
        thrown = error;
      }
      await aWhile(60);
      handler?.close();
      expect(escaped).toEqual([]);
      expect(thrown).toBeInstanceOf(InvalidOptionsError);
      expect((thrown as InvalidOptionsError).option).toBe('spool');
      expect((thrown as Error).message).toMatch(/drain/);
    } finally {
      await pool.close();
    }
  });

  it('the lifecycle handler refuses hooks and loggers that are not what they claim', async () => {
    const pool = newPool(new MemoryTokenStore());
    try {
      const refused: [string, Record<string, unknown>][] = [
        ['onInstalled', { onInstalled: 'notify-me' }],
        ['onUninstalled', { onUninstalled: {} }],
        ['logger', { logger: { info: () => undefined } }],
        ['spool', { spool: { put: () => undefined } }],
      ];
      for (const [option, extra] of refused) {
        expect(() => createLifecycleHandler({ pool, ...extra }), option).toThrow(InvalidOptionsError);
        expect(() => createLifecycleHandler({ pool, ...extra }), option).toThrow(new RegExp(option));
      }
    } finally {
      await pool.close();
    }
  });

  it('the pool refuses callbacks and objects that are not what they claim', () => {
    const store = new MemoryTokenStore();
    const refused: [string, Partial<PortalClientPoolOptions>][] = [
      ['fetch', { fetch: 'https://proxy' as never }],
      ['logger', { logger: { warn: () => undefined } as never }],
      ['clock', { clock: { now: () => 0 } as never }],
      ['now', { now: 5 as never }],
      ['random', { random: 0.5 as never }],
      ['requestBudget', { requestBudget: 'enterprise' as never }],
      ['requestBudget', { requestBudget: { ratePerSec: 2 } as never }],
      ['backoff', { backoff: 'slow' as never }],
      ['store', { store: { get: () => undefined } as never }],
    ];
    for (const [option, extra] of refused) {
      let thrown: unknown;
      try {
        newPool(store, extra);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, option).toBeInstanceOf(InvalidOptionsError);
      expect((thrown as InvalidOptionsError).option, option).toBe(option);
    }
  });
});
