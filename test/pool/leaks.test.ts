// Errors that pass through a pooled client carry no token: not in the message, not in the SDK's
// hidden original error (axios config, body), not under util.inspect with showHidden.
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedPortal } from './helpers.js';

let b24: FakeBitrix24;
beforeAll(async () => {
  b24 = await FakeBitrix24.start();
});
afterAll(async () => {
  await b24.close();
});

function views(error: unknown): string[] {
  return [
    String(error),
    (error as Error).message ?? '',
    JSON.stringify(error, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value)) ?? '',
    inspect(error, { depth: 10, showHidden: true }),
  ];
}

describe('errors from pooled clients', () => {
  it.each([
    ['an unknown method', { method: 'no.such.method' }],
    ['a refused token', { method: 'profile', kill: true }],
  ] as const)('carry no token for %s', async (_label, options: { method: string; kill?: boolean }) => {
    const { method, kill } = options;
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    const chain = b24.issueChain(portal.memberId);
    const record = await seedPortal(store, b24, portal.memberId, chain);
    const pool = new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
    const client = await pool.clientFor(portal.memberId);
    if (kill === true) b24.revoke(portal.memberId);
    const failure = await client.actions.v2.call.make({ method }).then(
      (result) => (result.isSuccess ? undefined : result.getErrors()),
      (error: unknown) => error,
    );
    expect(failure).toBeDefined();
    for (const text of views(failure)) {
      expect(text).not.toContain(record.accessToken);
      expect(text).not.toContain(record.refreshToken);
    }
    await pool.close();
  });
});
