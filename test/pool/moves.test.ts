// A renamed portal answers 3xx; a hostile one could point its REST traffic (and the token) anywhere.
// A move is followed only to the address the OAuth host confirms for this installation.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPortalTokensError, VerificationFailedError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { FakeBitrix24 } from '../../src/testing/fake-bitrix24.js';
import { seedPortal } from './helpers.js';

let b24: FakeBitrix24;
let collector: Server;
let collected = 0;
let hostile: Server;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  collector = createServer((req, res) => {
    collected++;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"result":{}}');
  });
  const collectorUrl = await listen(collector);
  // A "portal" that says it moved to the collector.
  hostile = createServer((req, res) => {
    req.resume();
    res.writeHead(302, { location: `${collectorUrl}/rest/${(req.url ?? '').split('/rest/')[1] ?? ''}` }).end();
  });
  await listen(hostile);
});
afterAll(async () => {
  collector.close();
  hostile.close();
  await b24.close();
});

describe('moved portals', () => {
  it('refuses a move the OAuth host does not confirm: typed error, nothing sent there, nothing stored', async () => {
    const store = new MemoryTokenStore();
    const portal = b24.addPortal();
    const hostileRoot = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/rest/`;
    const record = await seedPortal(store, b24, portal.memberId, b24.issueChain(portal.memberId), { clientEndpoint: hostileRoot });
    const pool = new PortalClientPool({
      ...b24.trust,
      // Every loopback root may receive the token here, so the move's own check is what is tested.
      restRoots: { allowHttp: true, allowPrivateAddresses: true, allowHost: () => true },
      store,
      clientId: b24.clientId,
      clientSecret: b24.clientSecret,
      logger: silentLogger,
    });
    const failure = await (await pool.clientFor(portal.memberId)).actions.v2.call.make({ method: 'profile' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(findPortalTokensError(failure)).toBeInstanceOf(VerificationFailedError);
    expect(collected).toBe(0);
    expect((await store.get(portal.memberId))?.clientEndpoint).toBe(record.clientEndpoint);
    await pool.close();
  });
});
