// Row 4: memory. Runs bench/memory-worker.ts in a fresh process against a filled store.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { StoreLocation } from './stores.js';

export interface MemoryResult {
  readonly before: { heapMiB: number; rssMiB: number };
  readonly hot: { heapMiB: number; rssMiB: number };
  readonly after: { heapMiB: number; rssMiB: number };
  readonly cached: number;
  readonly perClientKiB: number;
}

export async function memoryUse(location: StoreLocation, hot: number, distinct: number): Promise<MemoryResult> {
  const worker = fileURLToPath(new URL('./memory-worker.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '--import', 'tsx', worker, JSON.stringify(location), String(hot), String(distinct)], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as MemoryResult;
}
