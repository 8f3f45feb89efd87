// The binary loads @bitrix24/b24jssdk (and the pool, the OAuth client: dist/cli-chunks/bitrix24-*)
// only for the commands that call Bitrix24: `--help`, `status` and the other store-only commands
// start without it. A module hook in the child records every module it resolves.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTokenStore } from '../../src/store/file/store.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';
import { recordInput, runBinary, type CliRun } from './helpers.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const SDK = /[\\/]node_modules[\\/]@bitrix24[\\/]b24jssdk[\\/]/;
const BITRIX24_CHUNK = /[\\/]dist[\\/]cli-chunks[\\/]bitrix24-[^/\\]+\.js$/;

let dir: string;
let register: string;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-cli-lazy-'));
  // Hooks run on a thread of their own: each resolved URL is appended to the file the child's
  // B24PT_LOAD_LOG names.
  await writeFile(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(process.env.B24PT_LOAD_LOG, result.url + '\\n');
  return result;
}
`,
  );
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`);
  register = pathToFileURL(join(dir, 'register.mjs')).href;
  const store = new FileTokenStore({ directory: join(dir, 'store') });
  await store.upsert(recordInput(1));
  await store.upsert(recordInput(2));
  await mkdir(join(dir, 'empty'));
  const r = recordInput(3);
  const recipe = { [r.memberId]: { memberId: r.memberId, accessToken: r.accessToken, refreshToken: r.refreshToken, expires: r.expires, expiresIn: 3600, scope: r.scope, domain: r.domain, clientEndpoint: r.clientEndpoint, serverEndpoint: r.serverEndpoint, status: 'L', userId: 1 } };
  await writeFile(join(dir, 'recipe.json'), JSON.stringify(recipe));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the binary under the hook: its result and every module URL it resolved. */
async function traced(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun & { loaded: string[] }> {
  const log = join(dir, `loaded-${++runs}.txt`);
  await writeFile(log, '');
  const run = await runBinary(args, { ...env, NODE_OPTIONS: `--import=${register}`, B24PT_LOAD_LOG: log });
  const loaded = (await readFile(log, 'utf8')).split('\n').filter((line) => line !== '');
  return { ...run, loaded };
}

function sdkIn(loaded: readonly string[]): string[] {
  return loaded.filter((url) => SDK.test(url) || BITRIX24_CHUNK.test(url));
}

describe('the binary loads the SDK only for the commands that call Bitrix24', () => {
  const store = (): string => `file:${join(dir, 'store')}`;
  const keys = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
  const lean: { name: string; args: () => string[]; env?: Record<string, string>; code: number; out: RegExp }[] = [
    { name: '--help', args: () => ['--help'], code: 0, out: /Usage: b24-portal-tokens/ },
    { name: '--version', args: () => ['--version'], code: 0, out: /^\d+\.\d+\.\d+/ },
    { name: 'status', args: () => ['status', '--store', store()], code: 0, out: /active/ },
    { name: 'status of a missing store', args: () => ['status', '--store', `file:${join(dir, 'missing')}`], code: 2, out: /^$/ },
    { name: 'sweep --dry-run', args: () => ['sweep', '--dry-run', '--idle-days', '0', '--store', store()], code: 0, out: /2 chains checked, 2 would be refreshed/ },
    { name: 'migrate --dry-run', args: () => ['migrate', '--dry-run', '--from', store(), '--to', `file:${join(dir, 'copy')}`], code: 0, out: /2/ },
    { name: 'import-recipe --dry-run', args: () => ['import-recipe', join(dir, 'recipe.json'), '--dry-run', '--to', `file:${join(dir, 'empty')}`], code: 0, out: /1 entries: would import 1/ },
    { name: 'forget', args: () => ['forget', recordInput(9).memberId, '--yes', '--store', `file:${join(dir, 'empty')}`], code: 0, out: /0 records deleted/ },
    { name: 'rekey', args: () => ['rekey', '--store', `file:${join(dir, 'empty')}`], env: { B24PT_KEYS: keys }, code: 0, out: /rekey with k1: 0 scanned/ },
  ];

  it.each(lean)('$name loads no @bitrix24/b24jssdk module', async ({ args, env, code, out }) => {
    const run = await traced(args(), env);
    expect(run.code, run.stderr).toBe(code);
    expect(run.stdout).toMatch(out);
    // The hook saw the binary itself: an empty list would prove nothing.
    expect(run.loaded.some((url) => url.endsWith('/dist/cli.js'))).toBe(true);
    expect(sdkIn(run.loaded)).toEqual([]);
  });

  it('sweep, which calls Bitrix24, loads the SDK (the hook would see it)', async () => {
    const run = await traced(['sweep', '--store', `file:${join(dir, 'empty')}`], { B24PT_CLIENT_ID: 'app.lazy', B24PT_CLIENT_SECRET: 'lazy-secret' });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('sweep: 0 chains checked');
    expect(run.loaded.some((url) => SDK.test(url))).toBe(true);
    expect(run.loaded.some((url) => BITRIX24_CHUNK.test(url))).toBe(true);
  });
});
