// Row 3: install cost growth. Install events of new portals posted over loopback HTTP to the node
// handler (verification against the stand-in on, and off), one after another, with the store
// already holding many portals; and the recipe's single-JSON-file route, measured the same way.

import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLifecycleHandler } from '../src/http/handler.js';
import { toNodeHandler } from '../src/http/node.js';
import { silentLogger } from '../src/logger.js';
import { PortalClientPool } from '../src/pool/pool.js';
import type { FakeBitrix24 } from '../src/testing/fake-bitrix24.js';
import { median } from './lib.js';
import { RecipeJsonStore } from './recipe.js';
import type { BenchStore } from './stores.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}/install`;
}

/** Posts `count` install events of new stand-in portals (after `warmup` unmeasured ones); median ms. */
async function postInstalls(b24: FakeBitrix24, url: string, count: number, warmup: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const portal = b24.addPortal();
    const body = b24.installEvent(portal.memberId).form;
    const started = performance.now();
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`install answered ${response.status}`);
    if (i >= warmup) times.push(performance.now() - started);
  }
  return median(times);
}

/** Median ms of one install into `bench`'s store, with verification on or off. */
export async function installCost(bench: BenchStore, b24: FakeBitrix24, verify: boolean, count: number): Promise<number> {
  const pool = new PortalClientPool({ ...b24.trust, store: bench.store, clientId: b24.clientId, clientSecret: b24.clientSecret, logger: silentLogger });
  const handler = toNodeHandler(createLifecycleHandler({ pool, trustedOAuthHosts: [b24.oauthUrl], verify, logger: silentLogger }));
  const server = createServer((req, res) => void handler(req, res));
  try {
    return await postInstalls(b24, await listen(server), count, Math.max(5, Math.floor(count / 10)));
  } finally {
    server.close();
    await pool.close();
  }
}

/** Median ms of one install through the recipe's route, `stored` portals already in its file. */
export async function recipeInstallCost(b24: FakeBitrix24, stored: number, count: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'b24pt-bench-recipe-'));
  const recipe = new RecipeJsonStore(join(dir, 'oauth-store.json'));
  await recipe.seed(stored);
  const { server, url } = await recipe.listen();
  try {
    return await postInstalls(b24, url, count, Math.max(5, Math.floor(count / 10)));
  } finally {
    server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
