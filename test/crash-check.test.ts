// The crash check itself (test/support/crash-check.ts runs it in every file of the suite): fixture
// files run by a child vitest, with vitest's own report of unhandled errors turned off, show that
// it fails a file on an unhandled rejection and on an uncaught exception, and passes a file whose
// rejections are all handled (one of them late).

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('the suite-wide crash check', () => {
  it('fails the file with an unhandled rejection and the one with an uncaught exception, not the clean one', () => {
    const run = spawnSync(
      process.execPath,
      [fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url)), 'run', '--config', 'test/fixtures/crash/vitest.config.ts'],
      { cwd: root, encoding: 'utf8', env: { ...process.env, B24PT_CRASH_CHECK: '', B24PT_LEAK_CHECK: 'off', NO_COLOR: '1', FORCE_COLOR: '0' }, timeout: 60_000 },
    );
    const output = `${run.stdout}${run.stderr}`;
    expect(run.status, output).not.toBe(0);
    expect(output).toMatch(/FAIL\s+test\/fixtures\/crash\/rejection\.fixture\.ts/);
    expect(output).toMatch(/FAIL\s+test\/fixtures\/crash\/exception\.fixture\.ts/);
    expect(output).not.toMatch(/FAIL\s+test\/fixtures\/crash\/clean\.fixture\.ts/);
    expect(output).toContain('unhandled rejection during "leaves a rejection unhandled": Error: fixture: nobody waits for this');
    expect(output).toContain('uncaught exception during "lets a timer throw": TypeError: fixture: spool.drain is not a function');
    expect(output).toMatch(/Test Files\s+2 failed \| 1 passed \(3\)/);
  }, 60_000);
});
