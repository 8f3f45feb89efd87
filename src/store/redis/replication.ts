// Durability of chain writes on a Redis with replicas: how many replicas are connected (INFO
// replication), and the error of a write the replicas did not confirm in time.

import { StoreError } from '../../errors.js';
import { isTransient, type RedisClientLike } from './connection.js';

/**
 * A chain write was applied on the Redis primary, but fewer replicas than `replicas.wait` confirmed
 * it within `replicas.timeoutMs` (Redis `WAIT`). The write is NOT undone: the new record is on the
 * primary and every reader sees it; only its survival of a failover in the next moments is unknown.
 *
 * `transient` is `true`. A caller that retries the same conditional write meets a conflict whose
 * `current` is the record it wrote (the token pool's coordinator adopts it and goes on with the
 * new pair). If the primary dies before a replica has the write, the promoted replica does not
 * have it: for a refresh, that chain is lost (the portal must reinstall the app).
 */
export class RedisReplicationError extends StoreError {
  /** Always `true`: the write is on the primary. */
  readonly applied = true;
  /** How many replicas confirmed in time. */
  readonly acknowledged: number;
  /** How many were asked for (`replicas.wait`). */
  readonly wanted: number;
  constructor(operation: string, details: { memberId: string | undefined; acknowledged: number; wanted: number; timeoutMs: number }) {
    super(
      `Redis applied ${operation}${details.memberId === undefined ? '' : ` of portal ${details.memberId}`} on the primary, but ${details.acknowledged} of ${details.wanted} replica(s) confirmed it within ${details.timeoutMs} ms`,
      { memberId: details.memberId, transient: true },
    );
    this.acknowledged = details.acknowledged;
    this.wanted = details.wanted;
  }
}

/** `connected_slaves` from an `INFO replication` reply; 0 when absent. */
export function connectedReplicas(info: unknown): number {
  const text = Buffer.isBuffer(info) ? info.toString('utf8') : String(info);
  const found = /^connected_slaves:(\d+)/m.exec(text);
  return found === null ? 0 : Number(found[1]);
}

/**
 * The fewest replicas connected to any primary the client writes to: the primary itself, or on a
 * cluster every primary. Decides whether chain writes wait for a replica by default; 0 when Redis
 * refuses INFO (an ACL without it).
 */
export async function fewestReplicas(client: RedisClientLike): Promise<number> {
  const primaries = client.isCluster === true && client.nodes !== undefined ? client.nodes('master') : [client];
  if (primaries.length === 0) return 0;
  try {
    const counts = await Promise.all(primaries.map(async (node) => connectedReplicas(await node.call('INFO', 'replication'))));
    return Math.min(...counts);
  } catch (error) {
    // A user the ACL does not let run INFO (or a managed Redis that renamed it): nothing is known,
    // so nothing waits; `replicas.wait` says it instead.
    if (isTransient(error)) throw error;
    return 0;
  }
}

/** CRC16 (XMODEM), the hash Redis Cluster maps keys to slots with. */
function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The hash slot of `key` (its hash tag, the part between the first `{` and the next `}`, when not empty). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key;
  return crc16(Buffer.from(hashed, 'utf8')) % 16384;
}

/**
 * The connection a write of `key` went through: the client itself, or on a cluster the connection
 * of the primary the cluster maps the key's slot to (`undefined` when it knows none). `WAIT` must be
 * sent there: it waits for the writes of its own connection.
 */
export function connectionOf(client: RedisClientLike, key: string): RedisClientLike | undefined {
  if (client.isCluster !== true) return client;
  const owner = client.slots?.[keySlot(key)]?.[0];
  if (owner === undefined) return undefined;
  return (client.nodes?.('master') ?? []).find((node) => `${node.options?.host ?? ''}:${node.options?.port ?? ''}` === owner);
}
