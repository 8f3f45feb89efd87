// The child processes of one `describeTokenStore` block: a child that ended a test alive and healthy
// closes its store and waits in the pool, and the next test that wants a child opens that test's
// store in it instead of starting a process (a start costs about a quarter of a CPU-second).

import type { StoreChild } from './child.js';

/** How long a child may take to close its store at the end of a test before it is stopped instead. */
const CLOSE_TIMEOUT_MS = 5_000;

/** Starts children with no store open; see {@link ChildPool}. */
export type ChildLauncher = () => Promise<StoreChild>;

/**
 * The children of one suite block. {@link take} hands out a child with the current test's store
 * open, {@link endTest} takes back what the test used, {@link drain} stops everything at the end.
 *
 * A child goes back to the pool only when the test passed and the child is
 * {@link StoreChild.reusable} (alive, no request pending, none failed or timed out) and then closed
 * its store (releasing and forgetting its leases). A killed child, a failed one, or any child of a
 * failed test is stopped. When a reused child cannot open the next store (the user's function throws,
 * or hands back a store it returned before), the block stops reusing children: every test then gets
 * fresh processes, as if there were no pool.
 */
export class ChildPool {
  readonly #launch: ChildLauncher;
  readonly #idle: StoreChild[] = [];
  /** The children handed out during the current test. */
  readonly #inUse = new Set<StoreChild>();
  #warming: Promise<StoreChild | undefined> | undefined;
  #reuse = true;
  /** Counts ended tests: a child that arrives after its test ended is not handed to that test's code. */
  #test = 0;
  #starts = 0;

  constructor(launch: ChildLauncher) {
    this.#launch = launch;
  }

  /** How many processes the pool has started. */
  get starts(): number {
    return this.#starts;
  }

  /** Starts one child in the background, for the first {@link take}; a failed start is forgotten. */
  warm(): void {
    if (this.#warming !== undefined || this.#idle.length > 0) return;
    this.#warming = this.#start().catch(() => undefined);
  }

  /** A child with the store for `args` open: an idle one reopened, the warmed one, or a new one. */
  async take(args: unknown): Promise<StoreChild> {
    const test = this.#test;
    const pooled = await this.#pooled();
    if (pooled !== undefined) {
      const reopen = pooled.opens > 0;
      try {
        return await this.#open(pooled, args, test);
      } catch (error) {
        // A fresh process that cannot open the store: the test's error. A reused one: the module
        // may be unable to open a second store in one process, so reuse ends for the block and a
        // fresh process tells which it was.
        if (!reopen || test !== this.#test) throw error;
        await this.#stopReusing();
      }
    }
    const child = await this.#start();
    return this.#open(child, args, test);
  }

  /**
   * Takes back the children the test used: each one that is reusable and closes its store in time
   * goes back to the pool, the others are stopped. `failed`: the test failed, so none is reused.
   */
  async endTest(failed: boolean): Promise<void> {
    this.#test++;
    const used = [...this.#inUse];
    this.#inUse.clear();
    await Promise.all(
      used.map(async (child) => {
        if (this.#reuse && !failed && child.reusable) {
          const closed = await child.close(CLOSE_TIMEOUT_MS).then(
            () => true,
            () => false,
          );
          if (closed && child.reusable && this.#reuse) {
            this.#idle.push(child);
            return;
          }
        }
        await child.stop();
      }),
    );
  }

  /** Stops every child, pooled, warming or still in use. */
  async drain(): Promise<void> {
    const warming = this.#warming;
    this.#warming = undefined;
    const all = [...this.#idle.splice(0), ...this.#inUse];
    this.#inUse.clear();
    const warmed = await warming;
    if (warmed !== undefined) all.push(warmed);
    await Promise.all(all.map((child) => child.stop()));
  }

  async #start(): Promise<StoreChild> {
    this.#starts++;
    return this.#launch();
  }

  /** An idle child, or the warmed one once it is up. */
  async #pooled(): Promise<StoreChild | undefined> {
    while (this.#idle.length > 0) {
      const child = this.#idle.pop();
      if (child?.reusable === true) return child;
      await child?.stop();
    }
    const warming = this.#warming;
    this.#warming = undefined;
    return warming === undefined ? undefined : await warming;
  }

  /**
   * Opens the store for `args` in `child` on behalf of test number `test`, and hands it out unless
   * that test ended meanwhile. A child that fails or comes too late is stopped.
   */
  async #open(child: StoreChild, args: unknown, test: number): Promise<StoreChild> {
    if (test === this.#test) {
      this.#inUse.add(child);
      try {
        await child.open(args);
      } catch (error) {
        this.#inUse.delete(child);
        await child.stop();
        throw error;
      }
      if (test === this.#test) return child;
      this.#inUse.delete(child);
    }
    await child.stop();
    throw new Error('the test ended before its child process was ready');
  }

  async #stopReusing(): Promise<void> {
    this.#reuse = false;
    await Promise.all(this.#idle.splice(0).map((child) => child.stop()));
  }
}
