// The suite's file order (test/support/sequencer.ts): the longest files start first, from this
// machine's last run when it has one, else from the committed test/timings.json.
import { expect, it } from 'vitest';
import type { TestSpecification, Vitest } from 'vitest/node';
import LongestFirst from './support/sequencer.js';

const root = process.cwd();

function spec(path: string): TestSpecification {
  return { moduleId: `${root}/${path}`, project: { name: '' } } as unknown as TestSpecification;
}

function sequencer(last: Record<string, { duration: number; failed: boolean }>, sizes: Record<string, number> = {}): LongestFirst {
  const ctx = {
    config: { root },
    cache: {
      getFileTestResults: (key: string) => last[key.slice(1)],
      getFileStats: (key: string) => ({ size: sizes[key.slice(1)] ?? 0 }),
    },
  };
  return new LongestFirst(ctx as unknown as Vitest);
}

const names = (specs: TestSpecification[]): string[] => specs.map((s) => s.moduleId.slice(root.length + 1));

it('starts the files of the committed timings longest first when this machine has no record (a fresh clone)', async () => {
  // The slowest files of test/timings.json, and a file it does not know (it comes last).
  const order = await sequencer({}).sort([spec('test/unknown-file.test.ts'), spec('test/events/parse.test.ts'), spec('test/store/encrypted-sql.test.ts')]);
  expect(names(order)).toEqual(['test/store/encrypted-sql.test.ts', 'test/events/parse.test.ts', 'test/unknown-file.test.ts']);
});

it("prefers this machine's last run, and starts the files that failed there first", async () => {
  const last = {
    'test/a.test.ts': { duration: 10, failed: false },
    'test/b.test.ts': { duration: 500, failed: false },
    'test/c.test.ts': { duration: 1, failed: true },
  };
  const order = await sequencer(last).sort([spec('test/a.test.ts'), spec('test/b.test.ts'), spec('test/c.test.ts')]);
  expect(names(order)).toEqual(['test/c.test.ts', 'test/b.test.ts', 'test/a.test.ts']);
});

it('orders files known nowhere by size, larger first', async () => {
  const order = await sequencer({}, { 'test/x.test.ts': 10, 'test/y.test.ts': 900 }).sort([spec('test/x.test.ts'), spec('test/y.test.ts')]);
  expect(names(order)).toEqual(['test/y.test.ts', 'test/x.test.ts']);
});
