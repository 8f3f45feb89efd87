// Shared set-up for pool tests: a stand-in Bitrix24, stores seeded with its chains, a logger that
// records every line so tests can prove no token ever reaches it.
import type { FakeBitrix24, FakeChain } from '../../src/testing/fake-bitrix24.js';
import { seedStore } from '../../src/testing/fake-bitrix24.js';
import type { Logger } from '../../src/logger.js';
import type { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { PortalRecord, PortalRecordInput, TokenStore } from '../../src/store/token-store.js';

/**
 * Stores the chain as the current record of the portal, as a verified install would. A thin
 * wrapper of `seedStore` (b24-portal-tokens/testing) for the tests written before it.
 */
export async function seedPortal(
  store: TokenStore,
  b24: FakeBitrix24,
  memberId: string,
  chain: FakeChain,
  overrides: Partial<PortalRecordInput> = {},
): Promise<PortalRecord> {
  return (await seedStore(store, b24, memberId, { chain, record: overrides })).record;
}

/** A logger that keeps every line as JSON text. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (level: string) => (context: Record<string, unknown>, message?: string) => {
    lines.push(JSON.stringify({ level, message, ...context }));
  };
  return { lines, debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Every token value a set of chains and records holds. */
export function tokensOf(...sources: { accessToken: string; refreshToken: string }[]): string[] {
  return sources.flatMap((s) => [s.accessToken, s.refreshToken]);
}

/**
 * The memory store with only the basic capabilities (lock, and listing when `list` is true): no
 * change feed, no shared budget. The pool's fallback paths run on it.
 */
export function basicStore(inner: MemoryTokenStore, { list }: { list: boolean }): TokenStore {
  const store: TokenStore = {
    capabilities: { lock: true, crossProcess: false, list },
    get: (k) => inner.get(k),
    upsert: (r) => inner.upsert(r),
    update: (k, v, p) => inner.update(k, v, p),
    delete: (k) => inner.delete(k),
    deletePortal: (m) => inner.deletePortal(m),
    tryLock: (k, t) => inner.tryLock(k, t),
  };
  return list ? { ...store, list: (o) => inner.list(o), listChains: (m) => inner.listChains(m) } : store;
}
