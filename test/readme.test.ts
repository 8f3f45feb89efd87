// Runs the README's example, as written, against the stand-in Bitrix24: it must serve a profile
// through the pool, survive a server-side expiry with one refresh, refuse an install from an
// OAuth host it does not trust (the default allow-list names only the real ones), and exit by
// itself on SIGTERM (the server, the pool and the store closed).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FileTokenStore } from '../src/store/file/store.js';
import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';
import { DIST_WAIT_MS, distReady } from './support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const root = fileURLToPath(new URL('..', import.meta.url));
let b24: FakeBitrix24;
let dir: string;

beforeAll(async () => {
  b24 = await FakeBitrix24.start();
  dir = await mkdtemp(join(tmpdir(), 'b24pt-readme-'));
});
afterAll(async () => {
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * The port the child's server bound. The child listens on PORT=0 (the kernel picks a free port,
 * nothing to race for) and a preloaded module reports the bound port over IPC.
 */
function boundPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      const port = (message as { listening?: unknown } | null)?.listening;
      if (typeof port === 'number') {
        child.off('exit', onExit);
        child.off('message', onMessage);
        resolve(port);
      }
    };
    const onExit = (code: number | null): void => reject(new Error(`the README example exited (${code}) before listening`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

it('the README example serves profiles through the pool and refuses an unverifiable install', async () => {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const block = /<!-- readme-example:start -->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBeDefined();
  // Inside the package folder, 'b24-portal-tokens' resolves to the built dist (package self-reference).
  await mkdir(join(root, '.tmp'), { recursive: true });
  const file = join(root, '.tmp', 'readme-example.ts');
  // The example trusts Bitrix24's own hosts only, as a user's app does; the run points it at the
  // stand-in the one way a test of your own app would: the stand-in's trust spread into the options.
  const anchor = '  clientSecret: process.env.B24_CLIENT_SECRET!,\n';
  expect(block).toContain(anchor);
  const trusting = block!.replace(anchor, `${anchor}  ...standInTrust(process.env.B24_URL!),\n`);
  await writeFile(file, `import { standInTrust } from 'b24-portal-tokens/testing';\n${trusting}`);

  const store = new FileTokenStore({ directory: dir });
  const portal = b24.addPortal();
  await seedStore(store, b24, portal.memberId);
  const reporter = join(root, 'test', 'fixtures', 'report-port.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', reporter, file], {
    cwd: root,
    env: { ...process.env, PORT: '0', TOKEN_DIR: dir, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
  try {
    const base = `http://127.0.0.1:${await boundPort(child)}`;
    child.disconnect(); // the port is known: the IPC channel must not be what keeps the child alive
    const first = await fetch(`${base}/?member_id=${portal.memberId}`);
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ ID: String(portal.adminUserId) });

    b24.resetStats();
    b24.expireAccessTokens(portal.memberId);
    const again = await fetch(`${base}/?member_id=${portal.memberId}`);
    expect(again.status).toBe(200);
    expect(b24.stats.refreshRequests).toBe(1);

    const before = await store.get(portal.memberId);
    const install = await fetch(`${base}/bitrix24/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: b24.installEvent(portal.memberId).form,
    });
    expect(install.status).toBe(403);
    expect(await store.get(portal.memberId)).toEqual(before);

    // Requests the example must survive: an unknown portal, no member_id at all.
    const unknown = await fetch(`${base}/?member_id=0123456789abcdef0123456789abcdef`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'PORTAL_NOT_INSTALLED' });
    const missing = await fetch(`${base}/`);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: 'INVALID_ARGUMENT' });
    // The process is still serving.
    expect((await fetch(`${base}/?member_id=${portal.memberId}`)).status).toBe(200);

    // SIGTERM: the example closes its server, then the pool and the store, and exits on its own.
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await exited;
    clearTimeout(timer);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  } finally {
    child.kill();
  }
}, 60_000);
