// Opening any of the library's stores from a plain description, so one worker fixture (a child
// process) can open the same store as the test that started it.
import { FileTokenStore } from '../../src/store/file/store.js';
import { PostgresTokenStore } from '../../src/store/postgres/index.js';
import { RedisTokenStore } from '../../src/store/redis/index.js';
import { SqliteTokenStore } from '../../src/store/sqlite/index.js';
import type { TokenStore } from '../../src/store/token-store.js';

/** Which store, and where its data lives (a directory, a file, a URL with a prefix). */
export type StoreSpec =
  | { readonly kind: 'file'; readonly directory: string }
  | { readonly kind: 'sqlite'; readonly filename: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly prefix: string }
  | { readonly kind: 'redis'; readonly url: string; readonly prefix: string; readonly nodes?: readonly string[] };

/** A new store instance on the data `spec` names. */
export function openStore(spec: StoreSpec): TokenStore {
  switch (spec.kind) {
    case 'file':
      return new FileTokenStore({ directory: spec.directory });
    case 'sqlite':
      return new SqliteTokenStore({ filename: spec.filename });
    case 'postgres':
      return new PostgresTokenStore({ connectionString: spec.url, tablePrefix: spec.prefix });
    case 'redis':
      return spec.nodes === undefined
        ? new RedisTokenStore({ url: spec.url, keyPrefix: spec.prefix })
        : new RedisTokenStore({ nodes: spec.nodes, keyPrefix: spec.prefix }); // a Redis Cluster
  }
}
