// `npm run test:timings`: writes test/timings.json, each test file's duration in the last `npm test`
// (its JSON report, .tmp/vitest.json), rounded to 100 ms. test/support/sequencer.ts starts the
// longest files first from it on a machine with no record of its own earlier runs (a fresh clone).
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';

interface Report {
  readonly testResults: readonly { readonly name: string; readonly startTime: number; readonly endTime: number }[];
}

const root = process.cwd();
const report = JSON.parse(readFileSync(`${root}/.tmp/vitest.json`, 'utf8')) as Report;
const timings = Object.fromEntries(
  report.testResults
    .map((file) => [relative(root, file.name), Math.round((file.endTime - file.startTime) / 100) * 100] as const)
    .sort(([a], [b]) => a.localeCompare(b)),
);
writeFileSync(`${root}/test/timings.json`, `${JSON.stringify(timings, null, 2)}\n`);
process.stdout.write(`test/timings.json: ${Object.keys(timings).length} files\n`);
