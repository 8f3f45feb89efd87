// The lifecycle handler on a hand-built PortalTokensContext, without HTTP or a stand-in: the hook
// timeout runs on the context's clock (a ManualClock here, so nothing sleeps), an uninstall removes
// every chain of the portal, and refusals are LifecycleAnswerErrors.

import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { LifecycleChange, OAuthHostClient, PortalTokensContext } from '../../src/context.js';
import { ErrorCode, PortalTokensError } from '../../src/errors.js';
import { LifecycleAnswerError } from '../../src/http/answers.js';
import { createLifecycleHandler, type LifecycleHandlerOptions } from '../../src/http/handler.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { userChain } from '../../src/store/token-store.js';
import { fixture } from '../events/helpers.js';
import { recordingLogger } from './helpers.js';

const MEMBER_ID = '010b6886ebc205e43ae65000ee00addb';

/** An OAuth host client that must not be called (verification is off in these tests). */
const unusedOAuth: OAuthHostClient = {
  clientId: 'local.app',
  appInfo: () => Promise.reject(new Error('app.info must not be called')),
  exchangeCode: () => Promise.reject(new Error('exchangeCode must not be called')),
  refresh: () => Promise.reject(new Error('refresh must not be called')),
  userAdmin: () => Promise.reject(new Error('userAdmin must not be called')),
};

function rig(options: Partial<LifecycleHandlerOptions> = {}) {
  const clock = new ManualClock(1_762_090_000_000);
  const store = new MemoryTokenStore();
  const logger = recordingLogger();
  const changes: LifecycleChange[] = [];
  // The OAuth host confirms every stored chain dead: the app is gone when its uninstall arrives.
  const context: PortalTokensContext = {
    store,
    oauth: unusedOAuth,
    logger,
    clock,
    notify: (change) => void changes.push(change),
    confirmChain: () => Promise.resolve('dead'),
  };
  const handler = createLifecycleHandler({ pool: context, verify: false, ...options });
  const post = (body: string) =>
    handler({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
  return { clock, store, logger, changes, handler, post };
}

/** Lets pending microtasks and I/O callbacks run until `done()` or a bound of rounds. */
async function settle(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('the hook timeout runs on the context clock', () => {
  it('answers once hookTimeoutMs has passed by that clock, while the hook is still running', async () => {
    let answered = false;
    const { clock, logger, post } = rig({ hookTimeoutMs: 1000, onInstalled: () => new Promise<void>(() => undefined) });
    const answer = post(fixture('install.txt').trim()).then((response) => ((answered = true), response));

    await settle(() => clock.pending === 1);
    expect(clock.pending).toBe(1);
    await clock.advance(999);
    expect(answered).toBe(false);
    await clock.advance(1);

    expect((await answer).status).toBe(200);
    expect(logger.lines.some((line) => line.includes('Lifecycle hook still running'))).toBe(true);
  });

  it('answers as soon as a quick hook finishes and leaves no timer behind', async () => {
    const { clock, logger, post } = rig({ hookTimeoutMs: 1000, onInstalled: () => undefined });
    expect((await post(fixture('install.txt').trim())).status).toBe(200);
    expect(clock.pending).toBe(0);
    expect(logger.lines.some((line) => line.includes('Lifecycle hook still running'))).toBe(false);
  });

  it('stamps the record with the context clock', async () => {
    const { clock, store, post } = rig();
    await post(fixture('install.txt').trim());
    expect((await store.get(MEMBER_ID))?.installedAt).toBe(clock.now());
  });
});

describe('uninstall', () => {
  it("deletes every chain of the portal (its own and its users'), then tells the context", async () => {
    const { store, changes, post } = rig();
    expect((await post(fixture('install.txt').trim())).status).toBe(200);
    const portal = (await store.get(MEMBER_ID))!;
    const { version: _version, chain: _chain, ...input } = portal;
    await store.upsert({ ...input, chain: userChain(7), userId: 7 });
    expect(await store.get({ memberId: MEMBER_ID, chain: userChain(7) })).toBeDefined();

    expect((await post(fixture('uninstall.txt').trim())).status).toBe(200);

    expect(await store.get(MEMBER_ID)).toBeUndefined();
    expect(await store.get({ memberId: MEMBER_ID, chain: userChain(7) })).toBeUndefined();
    expect(changes.map((change) => change.type)).toEqual(['installed', 'uninstalled']);
  });
});

describe('LifecycleAnswerError', () => {
  it('is an Error of the library with a stable code, and still names every answer code as a constant', () => {
    const error = new LifecycleAnswerError(LifecycleAnswerError.VerificationFailed, 403, 'refused');
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(PortalTokensError);
    expect(error.name).toBe('LifecycleAnswerError');
    expect(error.toResponse()).toMatchObject({ status: 403, body: { error: 'VERIFICATION_FAILED' } });
    expect(LifecycleAnswerError.MethodNotAllowed).toBe('METHOD_NOT_ALLOWED');
    expect(LifecycleAnswerError.PayloadTooLarge).toBe('PAYLOAD_TOO_LARGE');
    expect(LifecycleAnswerError.UnsupportedMediaType).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(LifecycleAnswerError.OAuthUnavailable).toBe(ErrorCode.OAuthUnavailable);
    expect(LifecycleAnswerError.OAuthInvalidResponse).toBe(ErrorCode.OAuthInvalidResponse);
    expect(LifecycleAnswerError.StoreFailure).toBe(ErrorCode.StoreFailure);
    expect(LifecycleAnswerError.Internal).toBe('INTERNAL_ERROR');
  });

  it('refuses a pool option that is not a context', () => {
    expect(() => createLifecycleHandler({ pool: {} as PortalTokensContext })).toThrow(/options\.pool/);
  });
});
