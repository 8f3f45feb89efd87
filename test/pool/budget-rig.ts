// What the request-budget test files share: one stand-in Bitrix24 and one temp directory per file,
// the small limits, and pools built on them. The bindings are live: `b24` and `dir` are set once the
// file's beforeAll has run.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { PortalClientPool } from '../../src/pool/pool.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { recordingLogger, seedPortal } from './helpers.js';

/** The stand-in's bucket and the pool's budget: small numbers so a test takes a second or two. */
export const LIMITS = { ratePerSec: 10, burst: 10 };

export let b24: FakeBitrix24;
export let dir: string;

/** Registers the file's hooks: the stand-in and the directory up and down, the bucket reset after each test. */
export function useBudgetRig(): void {
  beforeAll(async () => {
    b24 = await FakeBitrix24.start();
    dir = await mkdtemp(join(tmpdir(), 'b24pt-budget-'));
  });
  afterAll(async () => {
    await b24.close();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    b24.limitRequests(null);
    b24.resetStats();
  });
}

/** A pool on `store` with the small budget (`extra` overrides). */
export function newPool(store: TokenStore, extra: Partial<ConstructorParameters<typeof PortalClientPool>[0]> = {}): PortalClientPool {
  return new PortalClientPool({ ...b24.trust, store, clientId: b24.clientId, clientSecret: b24.clientSecret, requestBudget: LIMITS, logger: recordingLogger(), ...extra });
}

/** A new portal of the stand-in, seeded into `store`: its member id. */
export async function seeded(store: TokenStore): Promise<string> {
  const portal = b24.addPortal();
  await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId));
  return portal.memberId;
}
