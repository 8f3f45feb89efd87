// Options of the Redis store and their checks: a URL or a ready client, the key prefix, the deadline.

import { checkOneOf, positiveInteger } from '../adapter-options.js';
import { checkKeyPrefix } from './codec.js';
import { checkClient, checkUrl, type RedisClientLike } from './connection.js';

/** Options of `RedisTokenStore`: a `url` or a ready `client`, plus the key prefix and timeout. */
export type RedisTokenStoreOptions = RedisTokenStoreCommonOptions &
  (
    | {
        /**
         * A `redis://` or `rediss://` URL (`rediss` for TLS), such as
         * `redis://app:p%40ss@10.0.0.5:6379/0`. Percent-encode special characters in the user name
         * and password. The store opens (and closes) its own connections, which fail fast while
         * Redis is down and reconnect by themselves.
         */
        readonly url: string;
        /** Not with `url`. */
        readonly client?: undefined;
      }
    | {
        /**
         * A ready ioredis client. The store uses it and never closes it; the change feed opens its
         * own connection with `client.duplicate()`. An ioredis `Cluster`, or a client with ioredis's
         * own `keyPrefix`, is refused with a `TypeError` (the scripts derive keys inside Redis, which
         * neither would see; use {@link RedisTokenStoreCommonOptions.keyPrefix} instead).
         */
        readonly client: RedisClientLike;
        /** Not with `client`. */
        readonly url?: undefined;
      }
  );

/** The options every `RedisTokenStore` takes. */
export interface RedisTokenStoreCommonOptions {
  /**
   * Prefix of every key and of the change channel (`<prefix>:rec:...`, `<prefix>:changes`), so
   * several apps or environments can share one Redis. 1 to 100 of `A-Z a-z 0-9 _ . : -`.
   * @defaultValue `'b24pt'`
   */
  readonly keyPrefix?: string | undefined;
  /**
   * How long one call may wait for Redis before it rejects with a transient `StoreError`.
   * @defaultValue 5000
   */
  readonly timeoutMs?: number | undefined;
}

/** The options after checking. */
export interface CheckedOptions {
  readonly url: string | undefined;
  readonly client: RedisClientLike | undefined;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
}

/** Checks the constructor's options; every mistake is a TypeError naming the option, never its value. */
export function checkOptions(options: unknown): CheckedOptions {
  const { url, client, keyPrefix, timeoutMs } = checkOneOf(options, 'url', 'client');
  const deadline = positiveInteger(timeoutMs, 'options.timeoutMs') ?? 5_000;
  return {
    url: url === undefined ? undefined : checkUrl(url),
    client: client === undefined ? undefined : checkClient(client),
    keyPrefix: checkKeyPrefix(keyPrefix ?? 'b24pt'),
    timeoutMs: deadline,
  };
}
