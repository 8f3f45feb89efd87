// Runs the README's example, as written, against the stand-in Bitrix24: it must serve a profile
// through the pool, survive a server-side expiry with one refresh, and refuse an install from an
// OAuth host it does not trust (the default allow-list names only the real ones).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FileTokenStore } from '../src/store/file/store.js';
import { FakeBitrix24, seedStore } from '../src/testing/fake-bitrix24.js';

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
  await writeFile(file, block!);

  const store = new FileTokenStore({ directory: dir });
  const portal = b24.addPortal();
  await seedStore(store, b24, portal.memberId);
  const reporter = join(root, 'test', 'fixtures', 'report-port.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', reporter, file], {
    cwd: root,
    env: { ...process.env, PORT: '0', TOKEN_DIR: dir, B24_CLIENT_ID: b24.clientId, B24_CLIENT_SECRET: b24.clientSecret, B24_URL: b24.url },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const base = `http://127.0.0.1:${await boundPort(child)}`;
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
    // The process is still serving.
    expect((await fetch(`${base}/?member_id=${portal.memberId}`)).status).toBe(200);
  } finally {
    child.kill();
  }
}, 60_000);
