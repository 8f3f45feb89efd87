// Issue 22 case 5 (the answer-size cap): an on-premise portal's REST root, run by the tenant,
// answers ordinary calls with 64 MiB each. The pooled client stops reading at the cap, fails typed,
// and the process's memory does not grow by anything like the answers' size. Real HTTP on loopback.

import type { ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findPortalTokensError } from '../../src/errors.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import type { PortalClientPoolOptions } from '../../src/pool/options.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24, seedStore } from '../../src/testing/fake-bitrix24.js';
import { listen } from '../http/helpers.js';

const MiB = 1024 * 1024;
const ANSWER_BYTES = 64 * MiB;

/** Streams a 64 MiB JSON answer, a MiB at a time with back-pressure, never holding it whole. */
function hugeAnswer(response: ServerResponse): void {
  const chunk = Buffer.alloc(MiB, 0x78); // 'x'
  const head = Buffer.from('{"result":"');
  const tail = Buffer.from('"}');
  response.writeHead(200, { 'content-type': 'application/json' });
  response.write(head);
  let sent = head.length + tail.length;
  const more = (): void => {
    while (sent < ANSWER_BYTES) {
      const part = chunk.subarray(0, Math.min(MiB, ANSWER_BYTES - sent));
      sent += part.length;
      if (!response.write(part)) {
        response.once('drain', more);
        return;
      }
    }
    response.end(tail);
  };
  response.on('error', () => undefined);
  more();
}

let b24: FakeBitrix24;
let onPremise: { url: string; close: () => Promise<void> };
let pool: PortalClientPool;
let requests = 0;

beforeEach(async () => {
  b24 = await FakeBitrix24.start();
  requests = 0;
  onPremise = await listen(
    createServer((request, response) => {
      requests++;
      request.resume();
      request.on('end', () => hugeAnswer(response));
    }),
  );
});

afterEach(async () => {
  await pool.close();
  await onPremise.close();
  await b24.close();
});

/** A pool over a store holding one portal whose REST root is the on-premise server. */
async function start(options: Partial<PortalClientPoolOptions> = {}): Promise<string> {
  const store = new MemoryTokenStore();
  // The on-premise portal runs on loopback over http: the pool is told to send its tokens there.
  const onPremiseRoots = { allowHttp: true, allowPrivateAddresses: true, allowHost: (root: URL) => root.origin === new URL(onPremise.url).origin };
  pool = new PortalClientPool({ ...b24.trust, restRoots: onPremiseRoots, store, clientId: b24.clientId, clientSecret: b24.clientSecret, requestBudget: false, ...options });
  const portal = b24.addPortal();
  await seedStore(store, b24, portal.memberId, { record: { clientEndpoint: `${onPremise.url}/rest/` } });
  return portal.memberId;
}

setFlagsFromString('--expose-gc');
/** A full collection, so each measurement starts from what is really held. */
const collect = runInNewContext('gc') as () => void;

/** heapUsed plus memory held outside the heap (Buffers), bytes. */
function held(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

describe('the size of the answers pooled clients read is capped', () => {
  it('three 64 MiB answers: each call fails with ResponseTooLargeError, memory grows far less than one answer', async () => {
    const memberId = await start();
    const client = await pool.clientFor(memberId);
    const outcomes: unknown[] = [];
    const growths: number[] = [];
    for (let i = 0; i < 3; i++) {
      collect();
      const before = held();
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, held())), 1);
      try {
        outcomes.push(await client.actions.v2.call.make({ method: 'profile' }).then(() => 'read', (error: unknown) => error));
        peak = Math.max(peak, held());
      } finally {
        clearInterval(sampler);
      }
      growths.push(peak - before);
    }
    console.log(`[answer-cap] peak growth per call ${growths.map((g) => (g / MiB).toFixed(1)).join(', ')} MiB for 64 MiB answers (cap 8 MiB)`);
    // Before: every answer was read whole and memory grew by more than 64 MiB a call.
    const codes = outcomes.map((outcome) => (outcome === 'read' ? 'read' : findPortalTokensError(outcome)?.code));
    expect(codes).toEqual(['RESPONSE_TOO_LARGE', 'RESPONSE_TOO_LARGE', 'RESPONSE_TOO_LARGE']);
    expect(findPortalTokensError(outcomes[0])).toMatchObject({ limitBytes: 8 * MiB, memberId });
    expect(requests).toBe(3);
    const growth = Math.max(...growths);
    // At most the cap plus what arrived before the client stopped reading, and first-call set-up: half an answer at most.
    expect(growth).toBeLessThan(32 * MiB);
  });

  it('maxResponseBytes is an option: 1 MiB refuses what 8 MiB would, and a bad value is a TypeError', async () => {
    const memberId = await start({ maxResponseBytes: MiB });
    const client = await pool.clientFor(memberId);
    const error = await client.actions.v2.call.make({ method: 'profile' }).then(() => undefined, (e: unknown) => e);
    expect(findPortalTokensError(error)).toMatchObject({ code: 'RESPONSE_TOO_LARGE', limitBytes: MiB });
    expect(() => new PortalClientPool({ store: new MemoryTokenStore(), clientId: 'a', clientSecret: 'b', maxResponseBytes: 0 })).toThrow(TypeError);
  });
});
