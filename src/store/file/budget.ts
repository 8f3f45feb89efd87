// The file store's request budgets: one GCRA number per key in `budgets/`, stepped under a lock file.

import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../clock.js';
import { PortalTokensError, StoreError } from '../../errors.js';
import { budgetStep, checkBudgetKey, gcra } from '../budget-math.js';
import type { StoreDirectory } from './directory.js';
import { errorCode, FileLock } from './lock.js';
import { isTransient, WRITE_LEASE_MS, WRITE_LOCK_WAIT_MS } from './names.js';
import type { BudgetGrant, BudgetSpec } from '../token-store.js';

/** The budgets of one store directory. */
export class FileBudgets {
  readonly #directory: StoreDirectory;
  readonly #now: () => number;
  readonly #clock: Clock;
  readonly #fileMode: number;
  // Serialises this process's steps per budget key, so they queue in memory instead of spinning on the lock file.
  readonly #queues = new Map<string, Promise<void>>();
  #budgetDir: Promise<string> | undefined;

  constructor(directory: StoreDirectory, now: () => number, clock: Clock, fileMode: number) {
    this.#directory = directory;
    this.#now = now;
    this.#clock = clock;
    this.#fileMode = fileMode;
  }

  /** One GCRA step of `key`'s budget; see `FileTokenStore.acquire`. */
  async acquire(key: string, spec: BudgetSpec): Promise<BudgetGrant> {
    checkBudgetKey(key);
    const step = budgetStep(spec);
    const stem = createHash('sha256').update(key, 'utf8').digest('hex');
    const previous = this.#queues.get(stem) ?? Promise.resolve();
    let done = (): void => undefined;
    const tail = previous.then(() => new Promise<void>((resolveTurn) => (done = resolveTurn)));
    this.#queues.set(stem, tail);
    try {
      await previous;
      const directory = await this.#budgets();
      const lock = new FileLock(join(directory, `${stem}.lock`), this.#now, this.#fileMode);
      const deadline = this.#clock.now() + WRITE_LOCK_WAIT_MS;
      let lease;
      for (let pause = 0.5; ; pause = Math.min(pause * 2, 10)) {
        lease = await lock.tryAcquire(WRITE_LEASE_MS);
        if (lease !== undefined) break;
        if (this.#clock.now() > deadline) throw new StoreError('Timed out waiting for a budget lock', { transient: true });
        await this.#clock.sleep(pause + Math.random() * pause);
      }
      try {
        const path = join(directory, `${stem}.json`);
        const stored = await readFile(path, 'utf8').then(
          (text) => Number(text),
          (error: unknown) => {
            if (errorCode(error) === 'ENOENT') return undefined;
            throw error;
          },
        );
        const now = this.#now();
        const { tat, grant } = gcra(stored !== undefined && Number.isFinite(stored) ? stored : undefined, now, step);
        if (tat !== stored) {
          const temp = join(directory, `.${stem}.${lease.token}.tmp`);
          await writeFile(temp, String(tat), { mode: this.#fileMode });
          await rename(temp, path);
        }
        return grant;
      } finally {
        await lock.release(lease.token).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof PortalTokensError || error instanceof TypeError) throw error;
      throw new StoreError('File token store failed to take a budget step', { cause: error, transient: isTransient(error) });
    } finally {
      done();
      if (this.#queues.get(stem) === tail) this.#queues.delete(stem);
    }
  }

  /** The budgets subdirectory, created once. */
  async #budgets(): Promise<string> {
    this.#budgetDir ??= (async () => {
      await this.#directory.prepare();
      const directory = join(this.#directory.path, 'budgets');
      await mkdir(directory, { recursive: true, mode: 0o700 });
      return directory;
    })().catch((error: unknown) => {
      this.#budgetDir = undefined;
      throw error;
    });
    return this.#budgetDir;
  }
}
