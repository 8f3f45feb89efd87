// The leak check itself (test/support/leak-setup.ts runs it after every file of the suite): here it
// is shown to fail on a leak, through the same channels, with values the stand-in did not mint (so
// the suite-wide check of this very file stays green).

import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { OAuthUnavailableError, StoreError } from '../src/errors.js';
import { jsonResponse } from '../src/plain.js';
import { OBSERVE_CHANNEL, type Observation } from '../src/observe.js';
import { observedLogger, silentLogger } from '../src/logger.js';
import { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { MINTED_SECRETS_CHANNEL, type MintedSecret } from '../src/testing/fake-bitrix24/minted.js';
import { describeLeaks, findLeaks, SecretIndex } from './support/leak-check.js';

const token = (): string => randomBytes(35).toString('hex');

function indexOf(...values: string[]): SecretIndex {
  const index = new SecretIndex();
  for (const value of values) index.add({ kind: 'access_token', value });
  return index;
}

/** Runs `act` with a private subscriber and returns what it observed. */
function observing(act: () => void): Observation[] {
  const seen: Observation[] = [];
  const listener = (message: unknown): void => {
    seen.push(message as Observation);
  };
  subscribe(OBSERVE_CHANNEL, listener);
  try {
    act();
  } finally {
    unsubscribe(OBSERVE_CHANNEL, listener);
  }
  return seen;
}

describe('the leak check', () => {
  it('fails on a token in a log context, an event payload, an answer header or body, and stats', () => {
    const secret = token();
    const observations: Observation[] = [
      { kind: 'log', level: 'warn', context: { memberId: 'm', nested: { deep: [`Bearer ${secret}`] } }, message: 'x' },
      { kind: 'event', event: 'refreshed', payload: { memberId: 'm', token: secret.toUpperCase() } },
      { kind: 'response', status: 400, headers: { 'x-debug': secret }, body: { error: 'x' } },
      { kind: 'response', status: 400, headers: {}, body: { error: `near${secret}` } },
      { kind: 'pool', pool: { stats: () => ({ last: secret }) } },
    ];
    const leaks = findLeaks(observations, indexOf(secret));
    expect(leaks.map((leak) => leak.source)).toEqual(
      expect.arrayContaining(['log warn context', 'event refreshed', 'response 400 headers', 'response 400 body', 'stats']),
    );
    // The report names where, never the value.
    expect(describeLeaks(leaks)).not.toContain(secret);
    expect(describeLeaks(leaks)).toContain('<SECRET>');
  });

  it('follows an error through message, String, JSON, inspect and a cause chain, with hidden properties', () => {
    const [inMessage, inCause, hidden, inJson] = [token(), token(), token(), token()];
    const root = new Error(`refused ${inCause}`);
    Object.defineProperty(root, 'config', { value: { data: `refresh_token=${hidden}` }, enumerable: false });
    const middle = Object.assign(new Error('wrapped', { cause: root }), { toJSON: () => ({ body: inJson }) });
    const error = new StoreError(`store said ${inMessage}`, { cause: new AggregateError([middle], 'several') });
    const leaks = findLeaks([{ kind: 'error', error }], indexOf(inMessage, inCause, hidden, inJson));
    const renderings = new Set(leaks.map((leak) => leak.rendering));
    expect(renderings).toContain('message');
    expect(renderings).toContain('String');
    expect([...renderings].some((r) => r.includes('inspect'))).toBe(true);
    expect([...renderings].some((r) => r.startsWith('cause['))).toBe(true);
    const found = new Set(leaks.map((leak) => leak.excerpt));
    expect(found.size).toBeGreaterThan(0);
    for (const value of [inMessage, inCause, hidden, inJson]) {
      expect(findLeaks([{ kind: 'error', error }], indexOf(value)).length, value.slice(0, 6)).toBeGreaterThan(0);
    }
  });

  it('ignores values that were not minted and short values', () => {
    const index = new SecretIndex();
    index.add({ kind: 'client_secret', value: 'secret' });
    const observations: Observation[] = [{ kind: 'log', level: 'info', context: { client_secret: token() }, message: 'secret' }];
    expect(findLeaks(observations, index)).toEqual([]);
  });

  it('sees what the library publishes: its errors, its loggers and its answers', () => {
    const secret = token();
    const observations = observing(() => {
      void new OAuthUnavailableError('timed out', 0, { cause: new Error(`POST body refresh_token=${secret}`) });
      observedLogger(silentLogger).error({ err: secret }, 'failed');
      jsonResponse(400, { error: 'INVALID_EVENT', echo: secret });
    });
    const leaks = findLeaks(observations, indexOf(secret));
    expect(new Set(leaks.map((leak) => leak.source.split(' ')[0]))).toEqual(new Set(['error', 'log', 'response']));
  });

  it('is told every secret the stand-in mints', async () => {
    const minted: MintedSecret[] = [];
    const listener = (message: unknown): void => {
      minted.push(message as MintedSecret);
    };
    subscribe(MINTED_SECRETS_CHANNEL, listener);
    const b24 = await FakeBitrix24.start({ clientSecret: 'a-client-secret-long-enough-to-count' });
    try {
      const portal = b24.addPortal();
      const chain = b24.issueChain(portal.memberId);
      const code = b24.authorize(portal.memberId).code;
      const values = new Map(minted.map((secret) => [secret.value, secret.kind]));
      expect(values.get(chain.accessToken)).toBe('access_token');
      expect(values.get(chain.refreshToken)).toBe('refresh_token');
      expect(values.get(portal.applicationToken)).toBe('application_token');
      expect(values.get(code)).toBe('authorization_code');
      expect(values.get('a-client-secret-long-enough-to-count')).toBe('client_secret');
    } finally {
      unsubscribe(MINTED_SECRETS_CHANNEL, listener);
      await b24.close();
    }
  });
});

describe('the suite-wide check', () => {
  it('fails a test file that leaks a minted token (a deliberately leaking fixture, run by vitest)', async () => {
    const { spawnSync } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const root = fileURLToPath(new URL('..', import.meta.url));
    const run = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url)), 'run', '--config', 'test/fixtures/leak/vitest.config.ts'],
      { cwd: root, encoding: 'utf8', env: { ...process.env, B24PT_LEAK_CHECK: '' }, timeout: 60_000 },
    );
    const output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).not.toBe(0);
    expect(output).toContain('refresh_token in error StoreError');
    expect(output).toContain('<SECRET>');
  }, 60_000);
});
