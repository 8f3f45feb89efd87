// Issue 20 case 8: the CLI printed database passwords. Store URLs whose password holds `@` or `/`,
// and any `?password=` parameter, reached stderr (CI and cron logs). Run through the real binary.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { redactUrl } from '../../src/cli/store-url.js';
import { CLI, runBinary } from './helpers.js';
import { DIST_WAIT_MS, distReady } from '../support/dist.js';

beforeAll(distReady, DIST_WAIT_MS); // dist/ may still be building (test/global-setup.ts)

const SECRET = 'Sx9kQ2';

beforeAll(() => {
  if (!existsSync(CLI)) execFileSync('npm', ['run', 'build'], { stdio: 'ignore' });
}, 120_000);

// Port 1 on loopback refuses at once: each command fails with the store's label and hint on stderr.
const urls = [
  `postgres://app:${SECRET}@pw@127.0.0.1:1/db`,
  `postgres://app:${SECRET}/pw@127.0.0.1:1/db`,
  `postgresql://app:pw@${SECRET}@127.0.0.1:1/db?tablePrefix=t`,
  `postgres://app@127.0.0.1:1/db?password=${SECRET}&tablePrefix=t`,
  `postgres://app@127.0.0.1:1/db?sslmode=disable&password=${SECRET}%40x`,
  `redis://:${SECRET}@/x@127.0.0.1:1`,
  `redis://default:${SECRET}@127.0.0.1:1/0?keyPrefix=k&password=${SECRET}`,
  `postgres://app:${SECRET}?@127.0.0.1:1/db`,
];

describe('store URLs are masked on every output (case 8)', () => {
  it.each(urls)('status --store %s never prints the password', async (url) => {
    const run = await runBinary(['status', '--store', url]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/error: /);
    expect(run.stderr + run.stdout).not.toContain(SECRET);
  }, 30_000);

  it('migrate with both URLs bad prints neither password', async () => {
    const run = await runBinary(['migrate', '--from', urls[0]!, '--to', urls[3]!]);
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).not.toContain(SECRET);
  }, 30_000);

  it('a URL from B24PT_STORE is masked too', async () => {
    const run = await runBinary(['status'], { B24PT_STORE: urls[1]! });
    expect(run.code).not.toBe(0);
    expect(run.stderr + run.stdout).not.toContain(SECRET);
  }, 30_000);

  it('redactUrl keeps the user, host and harmless parameters', () => {
    expect(redactUrl('postgres://app:p@ss/w@db.internal:5432/tokens?tablePrefix=t&password=x')).toBe(
      'postgres://app:***@db.internal:5432/tokens?tablePrefix=t&password=***',
    );
    expect(redactUrl('redis://127.0.0.1:6379?keyPrefix=k')).toBe('redis://127.0.0.1:6379?keyPrefix=k');
    expect(redactUrl('file:./tokens')).toBe('file:./tokens');
    // The label alone masks every case (the tool's output filter is only the net under it).
    for (const url of urls) expect(redactUrl(url)).not.toContain(SECRET);
    expect(redactUrl('postgres://h/db?password=se@cret')).not.toMatch(/se/);
  });
});
