// Runs a store in a real child process for the conformance suite's cross-process cases, driven over
// Node's IPC channel. The child's script is inline (node -e), so it ships inside any build of this file.

import { spawn, type ChildProcess } from 'node:child_process';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What the child is told to load. */
export interface ChildSpec {
  /** A file: URL of the user's module. */
  readonly module: string;
  /** The JSON argument for the module's factory. */
  readonly args?: unknown;
  /**
   * Whether the child opens a store (with `args`) before it reports ready; `false` starts it with no
   * store, to be opened later by {@link StoreChild.open}.
   * @defaultValue true
   */
  readonly open?: boolean | undefined;
}

// Plain JavaScript on purpose: it runs before (and without) any TypeScript loader.
const CHILD_SCRIPT = String.raw`
const spec = JSON.parse(process.env.B24PT_CONFORMANCE_CHILD);
const send = (message) => new Promise((done) => process.send(message, () => done()));
let factory;
let store;
// Every store the factory returned in this process: a factory that hands back one it returned
// before (a cached, closed store) cannot open a second store here.
const returned = new WeakSet();
// The leases taken through the current store, by token.
const leases = new Map();
async function openStore(args) {
  await closeStore(true);
  const next = await factory(args);
  if ((typeof next !== 'object' && typeof next !== 'function') || next === null) throw new Error('the opener function returned no store');
  if (returned.has(next)) throw new Error('the opener function returned a store it had returned before: it cannot open a second store in one process');
  returned.add(next);
  store = next;
}
// Closes the current store; with release, first gives back every lease still held through it
// (best effort), so nothing this store took outlives it in the process or the backing data.
async function closeStore(release) {
  const closing = store;
  const held = [...leases.values()];
  store = undefined;
  leases.clear();
  if (closing === undefined) return;
  if (release) for (const lease of held) await Promise.resolve().then(() => lease.release()).catch(() => undefined);
  await closing.close?.();
}
try {
  const loaded = await import(spec.module);
  factory = loaded.createStore ?? loaded.default;
  // A CommonJS module (or TypeScript compiled as one) arrives as its exports object.
  if (factory !== null && typeof factory === 'object') factory = factory.createStore ?? factory.default;
  if (typeof factory !== 'function') throw new Error('the module exports neither a default function nor createStore');
  if (spec.open !== false) await openStore(spec.args);
} catch (error) {
  await send({ type: 'fatal', message: String((error && error.stack) || error) });
  process.exit(1);
}
// Every op names its record by key (a memberId string or { memberId, chain }); memberId is the older spelling.
const keyOf = (message) => message.key ?? message.memberId;
const ops = {
  async tryLock(message) {
    const lease = await store.tryLock(keyOf(message), message.ttlMs);
    if (lease === undefined) return null;
    leases.set(lease.token, lease);
    return { token: lease.token, expiresAt: lease.expiresAt };
  },
  async renew({ token, ttlMs }) {
    const lease = leases.get(token);
    if (lease === undefined || typeof lease.renew !== 'function') return null;
    return { renewed: await lease.renew(ttlMs), expiresAt: lease.expiresAt };
  },
  async release({ token }) {
    await leases.get(token)?.release();
    leases.delete(token);
    return null;
  },
  async get(message) {
    return (await store.get(keyOf(message))) ?? null;
  },
  async upsert({ record }) {
    return store.upsert(record);
  },
  async update(message) {
    const result = await store.update(keyOf(message), message.expectedVersion, message.patch);
    return result.ok ? result : { ok: false, current: result.current ?? null };
  },
  async delete(message) {
    return store.delete(keyOf(message));
  },
  async deletePortal({ memberId }) {
    return store.deletePortal(memberId);
  },
  async race(message) {
    const { expectedVersion, attempts, startAt, tag } = message;
    // Sleep to just before the shared start, then spin: timers alone scatter the processes by
    // milliseconds, which is longer than a whole write and would hide a missing lock.
    await new Promise((done) => setTimeout(done, Math.max(0, startAt - Date.now() - 5)));
    while (Date.now() < startAt) {}
    return Promise.all(
      Array.from({ length: attempts }, async (_, i) => {
        const result = await store.update(keyOf(message), expectedVersion, { accessToken: tag + '-' + i });
        return result.ok ? { ok: true, record: result.record } : { ok: false, current: result.current ?? null };
      }),
    );
  },
  async acquireRace({ budgetKey, spec, count, startAt }) {
    await new Promise((done) => setTimeout(done, Math.max(0, startAt - Date.now() - 5)));
    while (Date.now() < startAt) {}
    return Promise.all(
      Array.from({ length: count }, async () => {
        const grant = await store.acquire(budgetKey, spec);
        return { waitMs: grant.waitMs, granted: grant.granted, at: Date.now() };
      }),
    );
  },
  async exit() {
    await closeStore(false);
    return null;
  },
};
// What works with no store open: opening one, closing it, leaving.
const lifecycle = {
  async open({ args }) {
    await openStore(args);
    return null;
  },
  async close() {
    await closeStore(true);
    return null;
  },
  exit: ops.exit,
};
process.on('message', async (message) => {
  let reply;
  try {
    let op = lifecycle[message.op];
    if (op === undefined) {
      if (!Object.hasOwn(ops, message.op)) throw new Error('unknown operation ' + message.op);
      if (store === undefined) throw new Error('no store is open in this child');
      op = ops[message.op];
    }
    reply = { id: message.id, ok: true, value: await op(message) };
  } catch (error) {
    // An open that fails says where (the user's factory), as a failed start does.
    const text = message.op === 'open' ? (error && error.stack) || error : (error && error.message) || error;
    reply = { id: message.id, ok: false, error: String(text) };
  }
  await send(reply);
  if (message.op === 'exit') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
await send({ type: 'ready' });
`;

const TYPESCRIPT_MODULE = /\.(?:c|m)?tsx?$/i;

/** Turns the suite's `module` option into a file: URL, insisting on an absolute path. */
export function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (module.startsWith('file:')) return module;
  if (!isAbsolute(module)) throw new TypeError('crossProcess.module must be an absolute path or a file: URL');
  return pathToFileURL(module).href;
}

/** The Node flags a child needs to load `url`: a TypeScript loader for .ts modules. */
export function defaultExecArgv(url: string): string[] {
  return TYPESCRIPT_MODULE.test(new URL(url).pathname) ? ['--import', 'tsx'] : [];
}

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
type Message = { type: 'ready' } | { type: 'fatal'; message: string } | Reply;

/** A store handle living in a child process. */
export class StoreChild {
  readonly #process: ChildProcess;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #exited: Promise<void>;
  #nextId = 1;
  #opens: number;
  #failed = false;

  private constructor(child: ChildProcess, opens: number) {
    this.#process = child;
    this.#opens = opens;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.on('message', (message: Message) => {
      if (!('id' in message)) return;
      const waiter = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.ok) waiter?.resolve(message.value);
      else waiter?.reject(new Error(`child store failed: ${message.error}`));
    });
    // Without a listener, a send on a closed channel would be an uncaught 'error' event.
    child.on('error', () => undefined);
    void this.#exited.then(() => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error('child process exited'));
      this.#pending.clear();
    });
  }

  /** Spawns a child and waits until it is ready: its store open, unless `spec.open` is `false`. */
  static async start(spec: ChildSpec, execArgv: readonly string[], startTimeoutMs = 20_000): Promise<StoreChild> {
    const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', CHILD_SCRIPT], {
      cwd: process.cwd(),
      env: { ...process.env, B24PT_CONFORMANCE_CHILD: JSON.stringify(spec) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const handle = new StoreChild(child, spec.open === false ? 0 : 1);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`child store did not start within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      const settle = (error?: Error): void => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onMessage = (message: Message): void => {
        if ('type' in message && message.type === 'ready') settle();
        else if ('type' in message) settle(new Error(`child store failed to open: ${message.message}`));
      };
      const onExit = (code: number | null): void => settle(new Error(`child process exited (${code}) before it was ready`));
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', (error) => settle(error));
    });
    return handle;
  }

  /** The child's process id. */
  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** How many stores this child has opened (the one it started with included). */
  get opens(): number {
    return this.#opens;
  }

  /**
   * Whether the child can serve another test: it is alive, answers nothing late (no request is
   * pending) and no request of it ever failed or timed out.
   */
  get reusable(): boolean {
    return !this.#failed && this.#pending.size === 0 && this.#process.exitCode === null && this.#process.signalCode === null && this.#process.connected;
  }

  /**
   * Runs one operation in the child. A failed operation, or one that has not answered within
   * `timeoutMs` (no limit when absent), rejects and leaves the child not {@link reusable}.
   */
  async call<T>(op: string, params: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    const id = this.#nextId++;
    let pendingReject: (error: Error) => void = () => undefined;
    const result = new Promise<unknown>((resolve, reject) => {
      pendingReject = reject;
      this.#pending.set(id, { resolve, reject });
    });
    this.#process.send({ ...params, id, op }, (error) => {
      if (error === null) return;
      this.#pending.delete(id);
      pendingReject(error);
    });
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      // The entry stays pending, so the child is not reusable even if the answer comes later.
      timer = setTimeout(() => pendingReject(new Error(`child store did not answer ${op} within ${timeoutMs} ms`)), timeoutMs);
    }
    try {
      return (await result) as T;
    } catch (error) {
      this.#failed = true;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Opens a store for `args` through the module's function, closing (and releasing the leases of)
   * the store the child had open first.
   */
  async open(args: unknown, timeoutMs = 20_000): Promise<void> {
    this.#opens++;
    await this.call('open', { args }, timeoutMs);
  }

  /** Releases the leases the child still holds, forgets them and closes its store; the child stays. */
  async close(timeoutMs = 5_000): Promise<void> {
    await this.call('close', {}, timeoutMs);
  }

  /** Kills the child the hard way (no cleanup runs) and waits until it is gone. */
  async kill(): Promise<void> {
    if (this.#process.exitCode === null && this.#process.signalCode === null) this.#process.kill('SIGKILL');
    await this.#exited;
  }

  /** Asks the child to close its store and exit; kills it if it does not within `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return;
    const timer = setTimeout(() => this.#process.kill('SIGKILL'), timeoutMs);
    try {
      await this.call('exit').catch(() => undefined);
      await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
