// Connections of the Redis store: the ioredis driver loaded only when a URL needs it, the options of
// the connections the store owns, and the translation of driver failures into StoreError.

import { StoreError } from '../../errors.js';

/**
 * The part of an ioredis client the store uses, typed structurally so that these declarations work
 * without ioredis's own types installed. An `ioredis` `Redis` instance satisfies it.
 */
export interface RedisClientLike {
  /** The connection state (`'wait'`, `'connecting'`, `'ready'`, `'reconnecting'`, `'end'`, ...). */
  readonly status: string;
  /** The client's options; the store reads `keyPrefix` to refuse a prefixing client. */
  readonly options?: {
    /** ioredis's own key prefix; a client that has one is refused. */
    readonly keyPrefix?: string | undefined;
    /** A node connection's host (on a cluster's nodes). */
    readonly host?: string | undefined;
    /** A node connection's port (on a cluster's nodes). */
    readonly port?: number | undefined;
  } | undefined;
  /** `true` on an ioredis `Cluster`: the store then uses its cluster key layout. */
  readonly isCluster?: boolean | undefined;
  /** Sends one command. */
  call(command: string, ...args: (string | number)[]): Promise<unknown>;
  /** A new client with the same options (the change feed's subscriber connection). */
  duplicate(override?: object): RedisClientLike;
  /** Subscribes to channels (puts the connection in subscriber mode). */
  subscribe(...channels: string[]): Promise<unknown>;
  /** Adds an event listener. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ioredis's own listener type, so a Redis and a Cluster both fit
  on(event: string, listener: (...args: any[]) => void): unknown;
  /** On a cluster: its node clients (`'master'`: the primaries), the connections it sends commands on. */
  nodes?(role?: 'all' | 'master' | 'slave'): RedisClientLike[];
  /** On a cluster: each hash slot's nodes as `host:port`, the primary first. */
  readonly slots?: readonly (readonly string[] | undefined)[] | undefined;
  /** Closes the connection after pending replies. */
  quit(): Promise<unknown>;
  /** Closes the connection at once. */
  disconnect(): void;
}

/** The ioredis constructor, as the store calls it. */
type RedisConstructor = new (url: string, options: Record<string, unknown>) => RedisClientLike;

/** The ioredis Cluster constructor, as the store calls it. */
type ClusterConstructor = new (nodes: { host: string; port: number }[], options: Record<string, unknown>) => RedisClientLike;

/** The ioredis classes the store opens connections with. */
export interface Driver {
  readonly Redis: RedisConstructor;
  readonly Cluster: ClusterConstructor | undefined;
}

const DRIVER = 'ioredis';

/**
 * Loads ioredis on first use, so importing this package (or another store) never loads it.
 * @param load - how to import the driver; replaced in tests to simulate a missing package.
 */
export async function loadDriver(load: () => Promise<unknown> = () => import(DRIVER)): Promise<RedisConstructor> {
  return (await loadDrivers(load)).Redis;
}

/** Loads ioredis on first use (see {@link loadDriver}), with its Cluster class. */
export async function loadDrivers(load: () => Promise<unknown> = () => import(DRIVER)): Promise<Driver> {
  let loaded: unknown;
  try {
    loaded = await load();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new StoreError(`RedisTokenStore needs the '${DRIVER}' package, which is not installed: npm install ${DRIVER}`, {
        cause: error,
      });
    }
    throw new StoreError(`RedisTokenStore could not load the '${DRIVER}' package`, { cause: error });
  }
  const module = loaded as { Redis?: unknown; Cluster?: unknown; default?: unknown };
  const fallback = module.default as { Redis?: unknown; Cluster?: unknown } | undefined;
  const candidate = module.Redis ?? fallback?.Redis ?? module.default;
  if (typeof candidate !== 'function') throw new StoreError(`The '${DRIVER}' package does not export a Redis class`);
  const cluster = module.Cluster ?? fallback?.Cluster;
  return { Redis: candidate as RedisConstructor, Cluster: typeof cluster === 'function' ? (cluster as ClusterConstructor) : undefined };
}

/**
 * Options for a Cluster the store opens itself from `nodes`: the same fail-fast behaviour as
 * {@link ownedOptions} on every node connection, the credentials and TLS of the first URL, and a
 * short wait for a failover (MOVED, TRYAGAIN, CLUSTERDOWN) before a command is retried.
 */
export function ownedClusterOptions(timeoutMs: number, url: URL): Record<string, unknown> {
  const { lazyConnect, enableOfflineQueue, retryStrategy, ...node } = ownedOptions(timeoutMs);
  const redisOptions: Record<string, unknown> = { ...node };
  if (url.username !== '') redisOptions['username'] = decodeURIComponent(url.username);
  if (url.password !== '') redisOptions['password'] = decodeURIComponent(url.password);
  if (url.protocol === 'rediss:') redisOptions['tls'] = {};
  return {
    lazyConnect,
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 50,
    slotsRefreshTimeout: Math.min(timeoutMs, 2000),
    redisOptions,
  };
}

/** Checks the `nodes` option: a non-empty list of `redis:`/`rediss:` URLs of cluster nodes. */
export function checkNodes(nodes: unknown): URL[] {
  if (!Array.isArray(nodes) || nodes.length === 0) throw new TypeError('options.nodes must be a non-empty array of redis:// URLs');
  return nodes.map((node: unknown) => {
    const url = new URL(checkUrl(node, 'options.nodes[]'));
    if (url.hostname === '' || url.port === '') throw new TypeError('options.nodes[] must name a host and a port');
    return url;
  });
}

/**
 * Options for connections the store opens itself: nothing connects before the first call; a
 * command waits through at most one reconnection attempt and then fails (instead of queueing
 * forever); a reply lost with its connection is not re-sent (the caller sees a transient error and
 * re-reads); reconnection never gives up, so the same store works again once Redis is back.
 */
export function ownedOptions(timeoutMs: number): Record<string, unknown> {
  return {
    lazyConnect: true,
    enableOfflineQueue: true,
    maxRetriesPerRequest: 1,
    autoResendUnfulfilledCommands: false,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 4), 500),
  };
}

/** Checks the `url` option: a `redis:` or `rediss:` URL. The URL itself never appears in a message. */
export function checkUrl(url: unknown, name = 'options.url'): string {
  if (typeof url !== 'string' || url.length === 0) throw new TypeError(`${name} must be a non-empty string`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`${name} is not a valid URL (percent-encode special characters in the user name and password)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`${name} must start with 'redis://' or 'rediss://'`);
  }
  return url;
}

/** Checks the `client` option: an ioredis client or Cluster that does not prefix keys itself. */
export function checkClient(client: unknown): RedisClientLike {
  const given = client as Partial<RedisClientLike> | null;
  if (typeof given !== 'object' || given === null || typeof given.call !== 'function' || typeof given.duplicate !== 'function') {
    throw new TypeError('options.client must be an ioredis client (new Redis(...))');
  }
  const prefix = given.options?.keyPrefix; // a Cluster copies its nodes' keyPrefix here too
  if (typeof prefix === 'string' && prefix.length > 0) {
    throw new TypeError("options.client must not use ioredis's keyPrefix: pass the prefix as RedisTokenStore's keyPrefix instead");
  }
  return given as RedisClientLike;
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
// Redis replies that mean "not now" rather than "wrong": a server loading its data, a busy script,
// a failover in progress.
const TRANSIENT_REPLIES = new Set(['LOADING', 'BUSY', 'TRYAGAIN', 'MASTERDOWN', 'CLUSTERDOWN', 'READONLY']);
const TRANSIENT_MESSAGES = [
  /Connection is closed/i,
  /Command timed out/i,
  /Stream isn't writeable/i,
  /Socket closed unexpectedly/i,
  // A cluster in a failover: ioredis gave up following redirections, or reached no node at all.
  /Too many Cluster redirections/i,
  /Failed to refresh slots cache/i,
  /None of startup nodes is available/i,
];

/** A short, secret-free name for a driver error: its system code, its Redis reply code or its class. */
export function errorSummary(error: unknown): string {
  if (error instanceof StoreError) return error.message;
  const { code, name, message } = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
  const text = typeof message === 'string' ? message : '';
  if (name === 'ReplyError') return /^[A-Z][A-Z_]+/.exec(text)?.[0] ?? 'error reply';
  const known = TRANSIENT_MESSAGES.find((pattern) => pattern.test(text));
  if (known !== undefined) return known.source.replace(/\\/g, '');
  return typeof name === 'string' && name.length > 0 ? name : 'error';
}

/** Whether a driver error is about reaching Redis (retrying later may work). */
export function isTransient(error: unknown): boolean {
  if (error instanceof StoreError) return error.transient;
  const { code, name, message } = (error ?? {}) as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  if (name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError') return true;
  const text = typeof message === 'string' ? message : '';
  if (name === 'ReplyError') return TRANSIENT_REPLIES.has(/^[A-Z]+/.exec(text)?.[0] ?? '');
  return TRANSIENT_MESSAGES.some((pattern) => pattern.test(text));
}

/**
 * Wraps a driver failure as a StoreError saying what failed and why (by code only: a reply's text
 * could quote a value). `lastConnectError` names why the connection is down, when known.
 */
export function storeFailure(operation: string, error: unknown, memberId?: string, lastConnectError?: string): StoreError {
  if (error instanceof StoreError) return error;
  const transient = isTransient(error);
  const summary = errorSummary(error);
  const why = transient && lastConnectError !== undefined && lastConnectError !== summary ? `${summary}; ${lastConnectError}` : summary;
  const what = transient ? 'Redis is unreachable' : 'Redis failed';
  return new StoreError(`${what} during ${operation} (${why})`, { cause: error, memberId, transient });
}

/**
 * Rejects with a transient StoreError when `promise` does not settle within `ms`, so no call can hang
 * on a client that queues commands while disconnected. The command itself may still run later.
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, operation: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new StoreError(`Redis did not answer ${operation} within ${ms} ms`, { transient: true }));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error as Error); // eslint-disable-line @typescript-eslint/no-unnecessary-type-assertion -- rethrown as received
      },
    );
  });
}
