// The chain core's cases run against the real lifecycle handler on loopback HTTP, the stand-in
// Bitrix24, a real pool and a memory store that can fail the way databases do: unreachable, or
// saving a write and losing its answer.

import { createServer } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAppPageRequest } from '../../src/events/parse.js';
import type { AppPageRequest } from '../../src/events/types.js';
import { StoreError } from '../../src/errors.js';
import { createLifecycleHandler, type LifecycleHandler, type LifecycleHandlerOptions } from '../../src/http/handler.js';
import { toNodeHandler } from '../../src/http/node.js';
import { FileInstallSpool } from '../../src/spool/file-spool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { ChainKey, PortalRecordInput, PortalRecordPatch } from '../../src/store/token-store.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { contextOf, listen, post, recordingLogger, SecretLedger, type Rig } from '../http/helpers.js';

/** The http rig's pieces, with a pool that trusts the stand-in's OAuth host (app pages name it). */
async function startRig(store: MemoryTokenStore): Promise<Rig> {
  const b24 = await FakeBitrix24.start();
  const secrets = new SecretLedger();
  secrets.add(b24.clientSecret);
  const logger = recordingLogger();
  const pool = new PortalClientPool({
    store,
    clientId: b24.clientId,
    clientSecret: b24.clientSecret,
    logger,
    fetch: secrets.observingFetch(),
    ...b24.trust,
  });
  return { b24, store, pool, context: contextOf(pool), logger, secrets };
}

/** A memory store that can be unreachable, or save a write and then lose its answer. */
export class FaultyStore extends MemoryTokenStore {
  down = false;
  /** Writes whose answer is lost after the write was saved. */
  loseAnswers = 0;
  /** Runs once, just before an uninstall's delete (its tombstone or `deletePortal`): a stalled worker. */
  beforeDelete: (() => Promise<void>) | undefined;
  async #stall(): Promise<void> {
    const stall = this.beforeDelete;
    this.beforeDelete = undefined;
    await stall?.();
  }
  override async deletePortal(memberId: string) {
    await this.#stall();
    return super.deletePortal(memberId);
  }
  #check(): void {
    if (this.down) throw new StoreError('The store is unreachable', { transient: true });
  }
  #lose(): void {
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new StoreError('The connection dropped before the answer arrived', { transient: true });
    }
  }
  override async get(key: ChainKey) {
    this.#check();
    return super.get(key);
  }
  override async upsert(record: PortalRecordInput) {
    this.#check();
    const stored = await super.upsert(record);
    this.#lose();
    return stored;
  }
  override async update(key: ChainKey, expectedVersion: number, patch: PortalRecordPatch) {
    this.#check();
    if (patch.revokedReason === 'uninstalled') await this.#stall();
    const result = await super.update(key, expectedVersion, patch);
    if (result.ok) this.#lose();
    return result;
  }
}

/** A running rig: the stand-in, pool, store, spool and the handler on loopback. */
export interface ChainRig {
  readonly rig: Rig;
  readonly store: FaultyStore;
  readonly spool: FileInstallSpool;
  readonly spoolDir: string;
  handler: LifecycleHandler;
  /** Posts a lifecycle body to the handler; returns the status. */
  send(body: string): Promise<number>;
  /** Re-creates the handler with other options. */
  mount(options?: Partial<LifecycleHandlerOptions>): Promise<void>;
  /** A parsed app-page request of `userId`. */
  page(memberId: string, userId: number): AppPageRequest;
  close(): Promise<void>;
}

/** Starts a rig with a spool-backed handler. */
export async function startChainRig(): Promise<ChainRig> {
  const store = new FaultyStore();
  const rig = await startRig(store);
  const spoolDir = await mkdtemp(join(tmpdir(), 'b24pt-chains-'));
  const spool = new FileInstallSpool({ directory: spoolDir });
  let server: { url: string; close: () => Promise<void> } | undefined;
  const self: ChainRig = {
    rig,
    store,
    spool,
    spoolDir,
    handler: undefined as unknown as LifecycleHandler,
    async send(body) {
      return (await post(`${server!.url}/bitrix24/events`, body)).status;
    },
    async mount(options = {}) {
      self.handler?.close();
      await server?.close();
      self.handler = createLifecycleHandler({ pool: rig.context, trustedOAuthHosts: [rig.b24.oauthUrl], spool, ...options });
      server = await listen(createServer(toNodeHandler(self.handler)));
    },
    page(memberId, userId) {
      const request = rig.b24.appPageRequest(memberId, { userId });
      return parseAppPageRequest({ query: request.query, body: request.body });
    },
    async close() {
      self.handler?.close();
      await server?.close();
      await rig.pool.close();
      await rig.b24.close();
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
  await self.mount();
  return self;
}
