// `npm run test:timings`: writes test/timings.json, each test file's duration (hooks included) in
// the last vitest run on this machine, from vitest's own record of it (node_modules/.vite/vitest),
// rounded to 100 ms. test/support/sequencer.ts starts the longest files first from it on a machine
// with no record of its own earlier runs (a fresh clone).
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Cache {
  readonly results: readonly (readonly [key: string, result: { readonly duration: number }])[];
}

const root = process.cwd();
const cacheDir = join(root, 'node_modules', '.vite', 'vitest');
const files = existsSync(cacheDir) ? readdirSync(cacheDir).map((dir) => join(cacheDir, dir, 'results.json')).filter((file) => existsSync(file)) : [];
if (files.length === 0) {
  process.stderr.write('test:timings: no record of a vitest run here (node_modules/.vite/vitest); run `npm test` first\n');
  process.exit(2);
}
const timings: Record<string, number> = {};
for (const file of files) {
  for (const [key, result] of (JSON.parse(readFileSync(file, 'utf8')) as Cache).results) {
    const path = key.slice(key.indexOf(':') + 1); // "<project>:<file>"
    if (path.endsWith('.test.ts') && !path.endsWith('.soak.test.ts')) timings[path] = Math.round(result.duration / 100) * 100;
  }
}
const sorted = Object.fromEntries(Object.entries(timings).sort(([a], [b]) => a.localeCompare(b)));
writeFileSync(join(root, 'test', 'timings.json'), `${JSON.stringify(sorted, null, 2)}\n`);
process.stdout.write(`test/timings.json: ${Object.keys(sorted).length} files\n`);
