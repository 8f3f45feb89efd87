// The order the test files start in: longest first, so that a long file does not start last and
// hold the run open alone (vitest's own order on a fresh clone, with no record of earlier runs, is
// the larger file first, and some of the longest files are small: a lease waited out, a failover).
// A file's duration is this machine's last run (vitest's cache under node_modules/.vite) or else
// the committed test/timings.json (`npm run test:timings` rewrites it from this machine's last
// run); files known to neither come after, larger first. Files that failed last time go first.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

type Timings = Readonly<Record<string, number>>;

function committedTimings(root: string): Timings {
  try {
    return JSON.parse(readFileSync(`${root}/test/timings.json`, 'utf8')) as Timings;
  } catch {
    return {};
  }
}

export default class LongestFirst extends BaseSequencer {
  override sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const timings = committedTimings(root);
    const known = (spec: TestSpecification): { failed: boolean; duration: number | undefined; size: number } => {
      const path = relative(root, spec.moduleId);
      const key = `${spec.project.name}:${path}`;
      const last = this.ctx.cache.getFileTestResults(key);
      return {
        failed: last?.failed ?? false,
        duration: last?.duration ?? timings[path],
        size: this.ctx.cache.getFileStats(key)?.size ?? 0,
      };
    };
    const facts = new Map(files.map((spec) => [spec, known(spec)]));
    return Promise.resolve(
      [...files].sort((a, b) => {
        const x = facts.get(a)!;
        const y = facts.get(b)!;
        if (x.failed !== y.failed) return x.failed ? -1 : 1;
        if (x.duration !== undefined && y.duration !== undefined) return y.duration - x.duration;
        if (x.duration !== undefined || y.duration !== undefined) return x.duration !== undefined ? -1 : 1;
        return y.size - x.size;
      }),
    );
  }
}
