/**
 * `b24-portal-tokens/stores/redis`: {@link RedisTokenStore}, the token store on Redis. Needs the
 * optional peer dependency `ioredis` (`npm install ioredis`) when built from a `url`; it is loaded
 * only then, so importing the package root or another store never loads it.
 * @packageDocumentation
 */
export { RedisTokenStore } from './store.js';
export type { RedisTokenStoreOptions, RedisTokenStoreCommonOptions } from './options.js';
export type { RedisClientLike } from './connection.js';
export type { RedisReplicaOptions } from './options.js';
export { RedisReplicationError } from './replication.js';
