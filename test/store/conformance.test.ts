// The conformance suite itself: run in a child vitest against deliberately broken stores, it must
// fail the cases that pin those bugs, register only the capabilities a store declares (saying so
// for the cross-process cases), and honour `skip`.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

interface JsonReport {
  testResults: { name: string; status: string; message: string; assertionResults: { title: string; status: string }[] }[];
}

interface Run {
  readonly report: JsonReport;
  readonly output: string;
}

const run = promisify(execFile);
let scratch: string;

/** Runs every broken store's suite (test/store/fixtures/broken/) in one child vitest: each file's run, by file name. */
async function runBrokenSuites(): Promise<Map<string, Run>> {
  const outputFile = join(scratch, 'report.json');
  const env: NodeJS.ProcessEnv = { ...process.env };
  const vitest = join(process.cwd(), 'node_modules', 'vitest', 'vitest.mjs');
  const config = 'test/store/fixtures/vitest.broken.config.ts';
  // The JSON report for the statuses; the default reporter's output for what the suites printed.
  const args = [vitest, 'run', '--config', config, '--reporter=json', '--reporter=default', `--outputFile.json=${outputFile}`];
  // The child run is expected to fail; its exit code says nothing, the report says everything.
  const outcome = await run(process.execPath, args, { env, cwd: process.cwd(), maxBuffer: 16 * 1024 * 1024 }).catch(
    (error: { stdout?: string; stderr?: string }) => error,
  );
  const report = JSON.parse(await readFile(outputFile, 'utf8')) as JsonReport;
  const output = `${outcome.stdout ?? ''}${outcome.stderr ?? ''}`;
  return new Map(report.testResults.map((file) => [basename(file.name, '.suite.ts'), { report: { testResults: [file] }, output }]));
}

function statuses({ report }: Run): Map<string, string> {
  return new Map(report.testResults.flatMap((file) => file.assertionResults.map((test) => [test.title, test.status])));
}

function expectStatus(runResult: Run, titles: readonly string[], status: string): void {
  const results = statuses(runResult);
  for (const title of titles) expect([title, results.get(title)], `the suite reports "${title}" ${status}`).toStrictEqual([title, status]);
}

describe('describeTokenStore against broken stores', () => {
  let classic: Run;
  let skipped: Run;
  let misspelt: Run;
  let chainBlind: Run;
  let leakyFeed: Run;
  let staleLockRead: Run;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'b24pt-suite-'));
    const runs = await runBrokenSuites();
    const of = (name: string): Run => {
      const found = runs.get(name);
      if (found === undefined) throw new Error(`the child vitest reported no file ${name}.suite.ts`);
      return found;
    };
    [classic, skipped, misspelt, chainBlind, leakyFeed, staleLockRead] = ['classic', 'skipped', 'misspelt', 'chain-blind', 'leaky-feed', 'stale-lock-read'].map(of) as [Run, Run, Run, Run, Run, Run];
  }, 120_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('fails the cases that pin lost updates and a lock that does not exclude', () => {
    expectStatus(
      classic,
      [
        'update with a stale version is a conflict that returns the current record and changes nothing',
        'of 20 parallel conditional writes from one version exactly one wins',
        'a held lock excludes a second holder until it is released',
        'releasing a lapsed lease that was taken over does not free the new holder',
      ],
      'failed',
    );
    expectStatus(classic, ['get of a portal that was never stored returns undefined'], 'passed');
  });

  it('names the contract rule a failing assertion checks', () => {
    const messages = classic.report.testResults.map((file) => file.message).join('\n') + classic.output;
    expect(messages, 'the failure names the broken rule').toMatch(/a conflict never overwrites|exactly one of racing conditional writes wins/);
  });

  it('fails the chain cases for a store that ignores chains', () => {
    expectStatus(
      chainBlind,
      [
        'a user chain is its own record: upsert and get per chain, versions counted per chain',
        "writes to a user chain never change the portal chain's record or version",
        'deletePortal removes every chain of the portal, returns the count and is idempotent',
      ],
      'failed',
    );
    expectStatus(chainBlind, ['upsert of a new portal stores version 1 and get returns every field unchanged'], 'passed');
  });

  it('fails the change-feed case for a feed that leaks tokens, and passes the others', () => {
    expectStatus(leakyFeed, ['no change carries a token, and a closed subscription hears nothing more'], 'failed');
    expectStatus(leakyFeed, ['deletePortal reaches a subscriber as the deletion of every chain of the portal'], 'passed');
  });

  it('fails the lock-and-read case for a tryLockAndGet that reads before it locks, and passes the others', () => {
    expectStatus(staleLockRead, ['holders taking turns through tryLockAndGet each read the previous holder’s write (no conditional write conflicts)'], 'failed');
    expectStatus(
      staleLockRead,
      [
        'tryLockAndGet takes a free lock and answers the stored record; the lease excludes until released',
        'tryLockAndGet of a chain with no record takes the lock, answers undefined and creates nothing',
        'a held lock excludes a second holder until it is released',
      ],
      'passed',
    );
  });

  it('registers no case of a capability the store does not declare, and says the cross-process cases were skipped', () => {
    const results = statuses(classic);
    for (const title of [
      'list returns records in ascending memberId order, a page at a time',
      'a lock held in another process excludes this one, and the reverse',
      'no change carries a token, and a closed subscription hears nothing more',
    ]) {
      expect(results.has(title), `"${title}" is not registered for a store without its capability`).toBe(false);
    }
    expect(results.has('a held lock excludes a second holder until it is released'), 'declared lock cases are registered').toBe(true);
    expect(statuses(chainBlind).has('chains of one portal lock independently'), 'no lock, no lock cases').toBe(false);
    expect(classic.output, 'a notice says the cross-process cases were skipped').toMatch(
      /broken store \(classic\): the cross-process cases were skipped \(the store declares crossProcess: false\)/,
    );
  });

  it('skips a test named in options.skip', () => {
    expectStatus(skipped, ['a held lock excludes a second holder until it is released'], 'skipped');
  });

  it('refuses a skip entry that names no test', () => {
    const file = misspelt.report.testResults[0];
    expect(file?.status, 'the file fails to collect').toBe('failed');
    expect(file?.message, 'the error names the unknown entry').toMatch(/options\.skip names tests that do not exist: "no such test"/);
  });
});
