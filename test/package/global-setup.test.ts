// The global setup's staleness check: dist/ is rebuilt when missing, incomplete or older than the
// sources, and left alone otherwise (so a run right after a build does not build again).
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { staleReason } from '../global-setup.js';

const OUTPUTS = ['cli.js', 'index.js', 'index.cjs', 'testing/index.js', 'testing/index.cjs'];
let base: string;

async function touch(path: string, seconds: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, '');
  await utimes(path, seconds, seconds);
}

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'b24pt-setup-'));
  await touch(join(base, 'src', 'store', 'file.ts'), 1000);
  await touch(join(base, 'package.json'), 1000);
  await touch(join(base, 'tsup.config.ts'), 1000);
});

afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('global setup: staleReason', () => {
  it('asks for a build when dist/ is missing or incomplete', async () => {
    expect(staleReason(base)).toMatch(/missing/);
    for (const file of OUTPUTS.slice(0, -1)) await touch(join(base, 'dist', file), 2000);
    expect(staleReason(base)).toMatch(/missing or incomplete/);
  });

  it('leaves a complete dist/ newer than every source alone', async () => {
    for (const file of OUTPUTS) await touch(join(base, 'dist', file), 2000);
    expect(staleReason(base)).toBeNull();
  });

  it('asks for a build when a source, nested or not, is newer than the oldest output', async () => {
    for (const file of OUTPUTS) await touch(join(base, 'dist', file), 2000);
    await touch(join(base, 'dist', 'index.js'), 1500);
    await touch(join(base, 'src', 'testing', 'fake-bitrix24', 'ledger.ts'), 1600);
    expect(staleReason(base)).toMatch(/older than the sources/);
    await touch(join(base, 'src', 'testing', 'fake-bitrix24', 'ledger.ts'), 1400);
    expect(staleReason(base)).toBeNull();
    await touch(join(base, 'package.json'), 1700);
    expect(staleReason(base)).toMatch(/older/);
  });
});
