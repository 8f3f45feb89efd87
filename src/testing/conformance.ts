// The TokenStore conformance suite: registers vitest tests that check every rule of the contract in
// src/store/token-store.ts against any store factory, one module per capability under ./conformance/,
// each registered only when the store declares that capability.

import type * as Vitest from 'vitest';
import type { StoreCapabilities, TokenStore } from '../store/token-store.js';
import { registerBasicCases } from './conformance/basic.js';
import { registerBudgetCases, registerCrossProcessBudgetCases } from './conformance/budget.js';
import { registerChainCases } from './conformance/chains.js';
import { registerChangeCases, registerCrossProcessChangeCases } from './conformance/changes.js';
import { defaultExecArgv, moduleUrl, StoreChild } from './conformance/child.js';
import { ChildPool } from './conformance/pool.js';
import { registerConditionalCases } from './conformance/conditional.js';
import type { Register, SuiteContext } from './conformance/context.js';
import { registerCrossProcessCases } from './conformance/cross-process.js';
import { registerDeleteCases } from './conformance/deletes.js';
import { registerListCases } from './conformance/lists.js';
import { registerLockReadCases } from './conformance/lock-read.js';
import { registerLockCases } from './conformance/locks.js';

/** How the suite runs a store in other processes; see {@link TokenStoreSuiteOptions.crossProcess}. */
export interface CrossProcessOptions<S extends TokenStore = TokenStore> {
  /**
   * The absolute path (or `file:` URL) of a module whose default export, or whose `createStore`
   * export, is a function `(args) => TokenStore | Promise<TokenStore>` that opens a store on the
   * **same backing data** as the store {@link TokenStoreSuiteOptions.create} returned. The suite
   * loads it in real child processes.
   *
   * The suite keeps its child processes from one test to the next within a `describeTokenStore`
   * block, so one process may call the function several times, once per test, with that test's
   * `args`; before each further call it closes the store the function returned before (`close()`,
   * when the store has one, after releasing the leases taken through it). A function that cannot
   * open a second store in one process (it throws, or returns a store it returned before) makes the
   * suite start a fresh process for every later test instead.
   */
  readonly module: string | URL;
  /**
   * Computes the argument passed to the module's function from the test's store (for example its
   * directory, database schema or key prefix); called with each test's store when the test asks for
   * a child process. The value crosses a process boundary as JSON.
   * @defaultValue `() => undefined`
   */
  readonly args?: ((store: S) => unknown) | undefined;
  /**
   * Node flags for the child processes. `tsx` must then be resolvable from the current directory.
   * @defaultValue `['--import', 'tsx']` when `module` ends in `.ts`, `.mts` or `.cts`; otherwise `[]`
   */
  readonly execArgv?: readonly string[] | undefined;
}

/** Options of {@link describeTokenStore}. */
export interface TokenStoreSuiteOptions<S extends TokenStore = TokenStore> {
  /**
   * Creates a fresh, empty store for one test (called before every test). It must use the real
   * clock: the lease tests wait real time. Unless `capabilities` is given, it is also called once
   * while the tests are registered, to read the store's declared capabilities (that store is then
   * disposed of with `destroy`).
   */
  readonly create: () => S | Promise<S>;
  /**
   * The capabilities the store declares, when creating a store while tests are registered is not
   * wanted (a database that may be down, say). Every test checks that the store it gets declares
   * exactly these.
   * @defaultValue read from a store made by `create`
   */
  readonly capabilities?: StoreCapabilities | undefined;
  /**
   * Disposes of a test's store (drop its tables, remove its directory...).
   * @defaultValue calls `store.close()` when the store has one
   */
  readonly destroy?: ((store: S) => void | Promise<void>) | undefined;
  /**
   * Names of tests to skip, exactly as the suite names them; an unknown name is an error. Cases of a
   * capability the store does not declare are never registered, so they need no entry here.
   */
  readonly skip?: readonly string[] | undefined;
  /**
   * Registers adapter-specific tests inside the suite's `describe` block; `getStore()` returns the
   * current test's store.
   */
  readonly extraTests?: ((getStore: () => S) => void) | undefined;
  /**
   * Enables the cross-process cases (shared records and chains, lock exclusion, crashed holders,
   * racing conditional writes from several processes, and a change feed fed by another process).
   * They are registered only when this is given and the store declares `capabilities.crossProcess`;
   * otherwise the suite prints a notice that they were skipped.
   */
  readonly crossProcess?: CrossProcessOptions<S> | undefined;
  /**
   * The lease TTL of the real-time lock tests, in milliseconds. Raise it for a store whose lock
   * round trip is slow.
   * @defaultValue 200
   */
  readonly leaseTtlMs?: number | undefined;
}

/**
 * Registers the TokenStore conformance suite for one store implementation with vitest.
 *
 * Await it at the top level of a test file (an ES module): it loads vitest, reads the store's
 * declared capabilities, then registers the cases in one `describe` block, a nested block per
 * capability: basic records, conditional writes, deletes and versions, chains, and, when declared,
 * locks, listing, the change feed, the request budget and the cross-process cases. Each test gets a fresh store from
 * `create` and disposes of it with `destroy`. Every assertion names the contract rule it checks.
 *
 * @param name - the name of the `describe` block, such as `'RedisTokenStore'`.
 * @param options - how to create, dispose of and share the store.
 * @returns a promise that settles once the tests are registered.
 *
 * @example
 * ```ts
 * import { describeTokenStore } from 'b24-portal-tokens/testing';
 * import { MyStore } from '../src/my-store.js';
 *
 * await describeTokenStore('MyStore', {
 *   create: () => new MyStore({ url: process.env.DB_URL, prefix: crypto.randomUUID() }),
 *   destroy: (store) => store.dropAndClose(),
 *   crossProcess: {
 *     module: new URL('./open-my-store.ts', import.meta.url),
 *     args: (store) => ({ prefix: store.prefix }),
 *   },
 * });
 * ```
 */
export async function describeTokenStore<S extends TokenStore>(
  name: string,
  options: TokenStoreSuiteOptions<S>,
): Promise<void> {
  // vitest refuses to be loaded outside its runner (and through require), so it is loaded only
  // here: importing `b24-portal-tokens/testing` for FakeBitrix24 works anywhere, CJS included.
  const { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } = await loadVitest();
  if (typeof options.create !== 'function') throw new TypeError('options.create must be a function');
  const ttl = options.leaseTtlMs ?? 200;
  if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError('options.leaseTtlMs must be a positive number');
  const cross = options.crossProcess;
  const crossUrl = cross === undefined ? undefined : moduleUrl(cross.module);
  const skip = new Set(options.skip ?? []);
  const capabilities = options.capabilities ?? (await probeCapabilities(options));
  const crossProcess = capabilities.crossProcess && cross !== undefined;
  const groups = capabilityGroups(capabilities, crossProcess);
  // vitest runs nested describe blocks after their parent's, so the titles are gathered by a dry run.
  const registered = new Set<string>();
  const dryRun = { test: (title: string) => void registered.add(title), capabilities } as unknown as SuiteContext;
  for (const [, register] of groups) register(dryRun);
  const unknown = [...skip].filter((title) => !registered.has(title));
  if (unknown.length > 0) {
    throw new TypeError(`options.skip names tests that do not exist: ${unknown.map((t) => JSON.stringify(t)).join(', ')}`);
  }
  if (!crossProcess) {
    const why = capabilities.crossProcess ? 'no crossProcess option was given' : 'the store declares crossProcess: false';
    console.warn(`[describeTokenStore] ${name}: the cross-process cases were skipped (${why})`);
  }

  // The cross-process cases that will run: a child is warmed for them only when there is one.
  const crossTitles: string[] = [];
  if (crossProcess) {
    const collect = { test: (title: string) => void crossTitles.push(title), capabilities } as unknown as SuiteContext;
    groups.find(([title]) => title === CROSS_PROCESS_GROUP)?.[1](collect);
  }
  const warm = crossTitles.some((title) => !skip.has(title));

  describe(name, () => {
    let current: S | undefined;
    const store = (): S => {
      if (current === undefined) throw new Error('the store is only available inside a test');
      return current;
    };
    // The block's child processes, reused from test to test (each test opens its own store in them).
    const children = new ChildPool(() => {
      if (cross === undefined || crossUrl === undefined) throw new Error('crossProcess is not configured');
      return StoreChild.start({ module: crossUrl, open: false }, cross.execArgv ?? defaultExecArgv(crossUrl));
    });

    // One child starts while the first cases run, so the first cross-process case finds it ready.
    beforeAll(() => {
      if (warm) children.warm();
    });

    afterAll(async () => {
      await children.drain();
    });

    beforeEach(async () => {
      current = await options.create();
      expect(capabilitiesOf(current), 'the store declares the capabilities its cases were registered for').toStrictEqual(
        capabilitiesOf({ capabilities }),
      );
    });

    afterEach(async (context) => {
      // The children close this test's store before it is destroyed; those of a failed test are stopped.
      await children.endTest(context.task.result?.state === 'fail');
      const finished = current;
      current = undefined;
      if (finished === undefined) return;
      if (options.destroy !== undefined) await options.destroy(finished);
      else await finished.close?.();
    });

    const spawnChild = async (): Promise<StoreChild> => {
      if (cross === undefined) throw new Error('crossProcess is not configured');
      return children.take(cross.args?.(store()));
    };

    const test: Register = (title, body, timeout) => {
      if (skip.has(title)) it.skip(title, body);
      else it(title, body, timeout);
    };
    const context: SuiteContext = { test, describe, expect, store, capabilities, ttl, spawnChild };
    for (const [title, register] of groups) describe(title, () => register(context));

    options.extraTests?.(store);
  });
}

const CROSS_PROCESS_GROUP = 'across processes';

type Group = readonly [title: string, register: (suite: SuiteContext) => void];

/** The suite's case modules, each only when the store declares its capability. */
function capabilityGroups(capabilities: StoreCapabilities, crossProcess: boolean): Group[] {
  const groups: Group[] = [
    ['basic records', registerBasicCases],
    ['conditional writes', registerConditionalCases],
    ['deletes and versions', registerDeleteCases],
    ['chains', registerChainCases],
  ];
  if (capabilities.lock) groups.push(['lock', registerLockCases], ['lock and read', registerLockReadCases]);
  if (capabilities.list) groups.push(['list', registerListCases]);
  if (capabilities.changes === true) groups.push(['change feed', registerChangeCases]);
  if (capabilities.budget === true) groups.push(['request budget', registerBudgetCases]);
  if (crossProcess) {
    groups.push([
      CROSS_PROCESS_GROUP,
      (suite) => {
        registerCrossProcessCases(suite);
        if (capabilities.changes === true) registerCrossProcessChangeCases(suite);
        if (capabilities.budget === true) registerCrossProcessBudgetCases(suite);
      },
    ]);
  }
  return groups;
}

/** Creates one store to read what it declares, then disposes of it. */
async function probeCapabilities<S extends TokenStore>(options: TokenStoreSuiteOptions<S>): Promise<StoreCapabilities> {
  const probe = await options.create();
  try {
    return capabilitiesOf(probe);
  } finally {
    if (options.destroy !== undefined) await options.destroy(probe);
    else await probe.close?.();
  }
}

/** A store's capabilities as plain booleans (`changes` absent reads as `false`). */
function capabilitiesOf(target: Pick<TokenStore, 'capabilities'>): Required<{ [K in keyof StoreCapabilities]: boolean }> {
  const { lock, crossProcess, list, changes, budget } = target.capabilities;
  return { lock, crossProcess, list, changes: changes === true, budget: budget === true };
}

async function loadVitest(): Promise<typeof Vitest> {
  return import('vitest');
}
