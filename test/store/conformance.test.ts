// The conformance suite itself: run in a child vitest against a deliberately broken store, it must
// fail the cases that pin those bugs, skip what the store declares missing, and honour `skip`.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface JsonReport {
  testResults: { status: string; message: string; assertionResults: { title: string; status: string }[] }[];
}

const run = promisify(execFile);
let scratch: string;

async function runBrokenSuite(skip: string | undefined): Promise<JsonReport> {
  const outputFile = join(scratch, `${Math.random().toString(36).slice(2)}.json`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (skip === undefined) delete env['B24PT_SKIP'];
  else env['B24PT_SKIP'] = skip;
  const vitest = join(process.cwd(), 'node_modules', 'vitest', 'vitest.mjs');
  const args = [vitest, 'run', '--config', 'test/store/fixtures/vitest.broken.config.ts', '--reporter=json'];
  // The child run is expected to fail; its exit code says nothing, the report says everything.
  await run(process.execPath, [...args, `--outputFile=${outputFile}`], { env, cwd: process.cwd() }).catch(() => undefined);
  return JSON.parse(await readFile(outputFile, 'utf8')) as JsonReport;
}

function statuses(report: JsonReport): Map<string, string> {
  return new Map(report.testResults.flatMap((file) => file.assertionResults.map((test) => [test.title, test.status])));
}

describe('describeTokenStore against a broken store', () => {
  let plain: JsonReport;
  let skipped: JsonReport;
  let misspelt: JsonReport;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'b24pt-suite-'));
    [plain, skipped, misspelt] = await Promise.all([
      runBrokenSuite(undefined),
      runBrokenSuite('a held lock excludes a second holder until it is released'),
      runBrokenSuite('no such test'),
    ]);
  }, 60_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('fails the cases that pin lost updates and a lock that does not exclude', () => {
    const results = statuses(plain);
    for (const title of [
      'update with a stale version is a conflict that returns the current record and changes nothing',
      'of 20 parallel conditional writes from one version exactly one wins',
      'a held lock excludes a second holder until it is released',
      'releasing a lapsed lease that was taken over does not free the new holder',
    ]) {
      expect([title, results.get(title)]).toStrictEqual([title, 'failed']);
    }
    expect(results.get('get of a portal that was never stored returns undefined')).toBe('passed');
  });

  it('skips the list and cross-process cases a store declares it lacks', () => {
    const results = statuses(plain);
    expect(results.get('list returns records in ascending memberId order, a page at a time')).toBe('skipped');
    expect(results.get('a lock held in another process excludes this one, and the reverse')).toBe('skipped');
  });

  it('skips a test named in options.skip', () => {
    expect(statuses(skipped).get('a held lock excludes a second holder until it is released')).toBe('skipped');
  });

  it('refuses a skip entry that names no test', () => {
    const file = misspelt.testResults[0];
    expect(file?.status).toBe('failed');
    expect(file?.message).toMatch(/options\.skip names tests that do not exist: "no such test"/);
  });
});
