// Shared pieces of the benchmark: arguments, the machine, rows of the one table, medians and
// percentiles, and a tinybench wrapper that returns the median latency of one task.

import { cpus, totalmem } from 'node:os';
import { Bench } from 'tinybench';

/** `--short` shrinks every size (CI proves the benchmark runs; it asserts nothing about time). */
export const SHORT = process.argv.includes('--short');
/** `--json` also writes bench/results.json. */
export const JSON_OUT = process.argv.includes('--json');
/** `--only=1,2,6` runs some rows only. */
export const ONLY = (() => {
  const arg = process.argv.find((a) => a.startsWith('--only='));
  return arg === undefined ? undefined : new Set(arg.slice(7).split(','));
})();

/** One line of the table (and one object of results.json). */
export interface Row {
  /** Which row of the table (1..7). */
  readonly row: number;
  readonly measure: string;
  readonly value: number;
  readonly unit: string;
  /** What the value is compared with (same unit), or null. */
  readonly baseline: number | null;
  /** Names the baseline. */
  readonly baselineName: string | null;
  /** value / baseline, or null. */
  readonly ratio: number | null;
  /** The target in words, or null when the row only informs. */
  readonly target: string | null;
  /** Whether the target is met; null when there is none. */
  readonly pass: boolean | null;
  /** A note (sizes, p50 beside a p99, ...). */
  readonly note?: string | undefined;
}

export function row(r: Omit<Row, 'ratio'> & { ratio?: number | null }): Row {
  const ratio = r.ratio !== undefined ? r.ratio : r.baseline === null || r.baseline === 0 ? null : r.value / r.baseline;
  return { ...r, ratio };
}

export function machine(): { cores: number; cpu: string; node: string; memoryGiB: number; short: boolean } {
  const list = cpus();
  return {
    cores: list.length,
    cpu: list[0]?.model.trim() ?? 'unknown',
    node: process.version,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    short: SHORT,
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

export const median = (values: readonly number[]): number => percentile(values, 50);

/**
 * Runs tasks with tinybench (warm-up, then timed samples) and returns each task's median latency
 * in nanoseconds. Tasks run one after the other in the same process, so their ratio is fair.
 */
export async function medianNs(tasks: Record<string, () => unknown>, options: { timeMs?: number } = {}): Promise<Record<string, number>> {
  const bench = new Bench({
    time: options.timeMs ?? (SHORT ? 50 : 400),
    warmupTime: SHORT ? 20 : 150,
    warmupIterations: 100,
  });
  for (const [name, fn] of Object.entries(tasks)) bench.add(name, fn);
  await bench.run();
  const out: Record<string, number> = {};
  for (const task of bench.tasks) {
    const result = task.result as { latency?: { p50: number }; error?: unknown };
    if (result.latency === undefined) throw new Error(`benchmark task ${task.name} failed: ${String(result.error)}`);
    out[task.name] = result.latency.p50 * 1e6;
  }
  return out;
}

function fmt(value: number | null, unit = ''): string {
  if (value === null || Number.isNaN(value)) return '-';
  const abs = Math.abs(value);
  const text = abs >= 100 || Number.isInteger(value) ? value.toFixed(0) : abs >= 10 ? value.toFixed(1) : value.toFixed(2);
  return unit === '' ? text : `${text} ${unit}`;
}

/** The one table, as Markdown. */
export function table(rows: readonly Row[]): string {
  const lines = ['| # | measure | value | baseline | ratio | target | pass |', '|---|---|---:|---:|---:|---|---|'];
  for (const r of rows) {
    const baseline = r.baseline === null ? '-' : `${fmt(r.baseline, r.unit)}${r.baselineName === null ? '' : ` (${r.baselineName})`}`;
    const measure = r.note === undefined ? r.measure : `${r.measure} (${r.note})`;
    const pass = r.pass === null ? 'info' : r.pass ? 'pass' : 'FAIL';
    lines.push(`| ${r.row} | ${measure} | ${fmt(r.value, r.unit)} | ${baseline} | ${r.ratio === null ? '-' : `${fmt(r.ratio)}x`} | ${r.target ?? '-'} | ${pass} |`);
  }
  return lines.join('\n');
}

/** Logs progress on stderr, so stdout holds only the table. */
export function progress(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function concurrently<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await fn(items[index]!, index);
    }
  });
  await Promise.all(workers);
}
