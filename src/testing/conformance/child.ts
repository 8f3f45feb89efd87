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
  readonly args: unknown;
}

// Plain JavaScript on purpose: it runs before (and without) any TypeScript loader.
const CHILD_SCRIPT = String.raw`
const spec = JSON.parse(process.env.B24PT_CONFORMANCE_CHILD);
const send = (message) => new Promise((done) => process.send(message, () => done()));
let store;
try {
  const loaded = await import(spec.module);
  let factory = loaded.createStore ?? loaded.default;
  // A CommonJS module (or TypeScript compiled as one) arrives as its exports object.
  if (factory !== null && typeof factory === 'object') factory = factory.createStore ?? factory.default;
  if (typeof factory !== 'function') throw new Error('the module exports neither a default function nor createStore');
  store = await factory(spec.args);
} catch (error) {
  await send({ type: 'fatal', message: String((error && error.stack) || error) });
  process.exit(1);
}
const leases = new Map();
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
    await store.close?.();
    return null;
  },
};
process.on('message', async (message) => {
  let reply;
  try {
    reply = { id: message.id, ok: true, value: await ops[message.op](message) };
  } catch (error) {
    reply = { id: message.id, ok: false, error: String((error && error.message) || error) };
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

  private constructor(child: ChildProcess) {
    this.#process = child;
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

  /** Spawns a child and waits until its store is open. */
  static async start(spec: ChildSpec, execArgv: readonly string[], startTimeoutMs = 20_000): Promise<StoreChild> {
    const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', CHILD_SCRIPT], {
      cwd: process.cwd(),
      env: { ...process.env, B24PT_CONFORMANCE_CHILD: JSON.stringify(spec) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const handle = new StoreChild(child);
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

  /** Runs one operation in the child. */
  async call<T>(op: string, params: Record<string, unknown> = {}): Promise<T> {
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
    return (await result) as T;
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
