// The Lua scripts of the Redis store. Each write is one script, so its version check, its write, the
// index upkeep and the PUBLISH of the change happen atomically. Sent by SHA1, with EVAL on NOSCRIPT.

import { createHash } from 'node:crypto';
import type { RedisClientLike } from './connection.js';

/** The key layout this release reads and writes on a single Redis; `ready()` records it under `<prefix>:layout`. */
export const LAYOUT_VERSION = '1';
/**
 * The key layout on a Redis Cluster (the same names behind a hash tag per index bucket, see
 * `Keys`), recorded under `<prefix>:layout` and under every bucket's own layout key.
 */
export const CLUSTER_LAYOUT_VERSION = 'cluster-1';

/** What a script answers when the keys it was given no longer match the portal's chains index: read again and retry. */
export const STALE = -1;

/** Marker errors raised by the scripts (found in the reply's message). */
export const VERSION_LIMIT = 'B24PT_VERSION_LIMIT';
export const LAYOUT_MISMATCH = 'B24PT_LAYOUT';

// Shared by every write: refuse keys of another layout (a newer release migrating them), record ours
// when missing (a fresh or restarted Redis), and publish a change without any token.
// Numbers are formatted with %d: Lua's tostring would write 2^53 - 1 as 9.007199254741e+15.
const PRELUDE = `
local function fmt(n) if type(n) == 'number' then return string.format('%d', n) end return n end
local function layout(key, want)
  local have = redis.call('GET', key)
  if not have then redis.call('SET', key, want)
  elseif have ~= want then return redis.error_reply('${LAYOUT_MISMATCH} ' .. have) end
  return nil
end
local function publish(channel, member, chain, version, deleted)
  redis.call('PUBLISH', channel, '{"memberId":' .. cjson.encode(member)
    .. ',"chain":' .. (chain and cjson.encode(chain) or 'null')
    .. ',"version":' .. (version and fmt(version) or 'null')
    .. ',"deleted":' .. (deleted and 'true' or 'false') .. '}')
end
local MAX = 9007199254740991
`;

/** A script and its SHA1, for EVALSHA. */
export interface Script {
  readonly lua: string;
  readonly sha: string;
  /** How many keys it takes; `'any'` for the scripts that take a list of record keys. */
  readonly keys: number | 'any';
}

function script(keys: number | 'any', body: string, prelude = true): Script {
  const lua = prelude ? PRELUDE + body : body;
  return { lua, sha: createHash('sha1').update(lua).digest('hex'), keys };
}

/** KEYS: layout. ARGV: wanted layout. Returns the layout now recorded. */
export const LAYOUT = script(
  1,
  `local have = redis.call('GET', KEYS[1])
if not have then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end
return have`,
  false,
);

/**
 * KEYS: layout, record, tombstones, portals, chains. ARGV: layout, memberId, chain, channel, fields...
 * Replaces the record; its version continues from the record or the tombstone. Returns the version.
 */
export const UPSERT = script(
  5,
  `local bad = layout(KEYS[1], ARGV[1]) if bad then return bad end
local prev = redis.call('HGET', KEYS[2], 'version') or redis.call('HGET', KEYS[3], ARGV[3]) or '0'
if tonumber(prev) >= MAX then return redis.error_reply('${VERSION_LIMIT}') end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'version', prev, unpack(ARGV, 5))
local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
redis.call('HDEL', KEYS[3], ARGV[3])
if ARGV[3] == 'portal' then redis.call('ZADD', KEYS[4], 0, ARGV[2]) else redis.call('ZADD', KEYS[5], 0, ARGV[3]) end
publish(ARGV[4], ARGV[2], ARGV[3], version, false)
return version`,
);

/**
 * KEYS: layout, record. ARGV: layout, expected version, memberId, chain, channel, fields...
 * Returns `{1, record}` when applied, `{0, current}` on a conflict (an empty list when missing).
 */
export const UPDATE = script(
  2,
  `local bad = layout(KEYS[1], ARGV[1]) if bad then return bad end
local current = redis.call('HGET', KEYS[2], 'version')
if current ~= ARGV[2] then return {0, redis.call('HGETALL', KEYS[2])} end
if tonumber(current) >= MAX then return redis.error_reply('${VERSION_LIMIT}') end
if #ARGV > 5 then redis.call('HSET', KEYS[2], unpack(ARGV, 6)) end
local version = redis.call('HINCRBY', KEYS[2], 'version', 1)
publish(ARGV[5], ARGV[3], ARGV[4], version, false)
return {1, redis.call('HGETALL', KEYS[2])}`,
);

/**
 * KEYS: layout, record, tombstones, portals, chains. ARGV: layout, memberId, chain, channel.
 * Keeps the version in the tombstone hash, drops the record and its index entry. Returns 1 or 0.
 */
export const DELETE = script(
  5,
  `local bad = layout(KEYS[1], ARGV[1]) if bad then return bad end
local version = redis.call('HGET', KEYS[2], 'version')
if not version then return 0 end
redis.call('HSET', KEYS[3], ARGV[3], version)
redis.call('DEL', KEYS[2])
if ARGV[3] == 'portal' then redis.call('ZREM', KEYS[4], ARGV[2]) else redis.call('ZREM', KEYS[5], ARGV[3]) end
publish(ARGV[4], ARGV[2], ARGV[3], version, true)
return 1`,
);

// Every script names every key it touches in KEYS (none is computed inside a script), and all of a
// script's keys are in one hash slot on a cluster. The scripts that act on a portal's user chains
// are given the record keys the caller read from the chains index, and answer STALE (the caller
// reads again) when the index changed in between.

/** Lua: whether the chains index KEYS[n] still holds exactly the chain names ARGV[from..]. */
const SAME_CHAINS = `
local function same_chains(index, from)
  local chains = redis.call('ZRANGE', index, 0, -1)
  if #chains ~= #ARGV - from + 1 then return nil end
  for i, chain in ipairs(chains) do if chain ~= ARGV[from + i - 1] then return nil end end
  return chains
end
`;

/**
 * KEYS: layout, tombstones, portals, chains, the portal chain's record, each user chain's record.
 * ARGV: layout, memberId, channel, the user chains' names (as ZRANGE of the chains index gave them).
 * Deletes every chain of the portal. Returns how many records were deleted, or STALE.
 */
export const DELETE_PORTAL = script(
  'any',
  `${SAME_CHAINS}
local bad = layout(KEYS[1], ARGV[1]) if bad then return bad end
local chains = same_chains(KEYS[4], 4)
if not chains then return ${STALE} end
table.insert(chains, 1, 'portal')
local deleted = 0
for i, chain in ipairs(chains) do
  local key = KEYS[4 + i]
  local version = redis.call('HGET', key, 'version')
  if version then
    redis.call('HSET', KEYS[2], chain, version)
    redis.call('DEL', key)
    deleted = deleted + 1
  end
end
redis.call('DEL', KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[2])
if deleted > 0 then publish(ARGV[3], ARGV[2], false, false, true) end
return deleted`,
);

/** KEYS: records of one slot. `{record...}`, each the hash as a flat list (empty when missing). */
export const READ_RECORDS = script(
  'any',
  `local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out`,
  false,
);

/**
 * KEYS: chains, each user chain's record. ARGV: the user chains' names (as ZRANGE gave them).
 * `{record...}` in chain order, or STALE when the index changed since it was read.
 */
export const READ_CHAINS = script(
  'any',
  `${SAME_CHAINS}
if not same_chains(KEYS[1], 1) then return ${STALE} end
local out = {}
for i = 2, #KEYS do out[i - 1] = redis.call('HGETALL', KEYS[i]) end
return out`,
  false,
);

/** KEYS: lock. ARGV: token. Deletes the lock only if this token holds it. */
export const UNLOCK = script(
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
  false,
);

/**
 * KEYS: lock, record (one slot: both after the portal's hash tag on a cluster). ARGV: token, ttl ms.
 * tryLockAndGet: takes the lease as tryLock's `SET NX PX` does, then reads the record; a script runs
 * alone, so the record holds every write made before the lease. Returns {1 if taken else 0, record
 * hash (an empty list when missing)}.
 */
export const LOCK_AND_GET = script(
  2,
  `local taken = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return {taken and 1 or 0, redis.call('HGETALL', KEYS[2])}`,
  false,
);

/** KEYS: lock. ARGV: token, ttl ms. Extends the lease only if this token still holds it. */
export const RENEW = script(
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`,
  false,
);

/**
 * KEYS: layout, budget. ARGV: layout, interval ms, cost, span ms, longest granted wait ms, floor offset ms.
 * One GCRA step (the arithmetic of gcra() in src/store/budget-math.ts) timed by Redis's own clock (TIME), so
 * workers with skewed clocks share one budget. The arrival time expires when it no longer matters.
 * Returns {wait ms as a string, 1 if granted else 0}.
 */
export const ACQUIRE = script(
  2,
  `local bad = layout(KEYS[1], ARGV[1]) if bad then return bad end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval, cost, span, maxw, floor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local tat = tonumber(redis.call('GET', KEYS[2]) or '') or now
local base = math.max(tat, now, now + floor)
local nt = base + cost * interval
local wait = math.max(0, nt - span - now)
local granted = wait <= maxw
local keep = base
if granted then keep = nt end
if keep > now then redis.call('SET', KEYS[2], string.format('%.3f', keep), 'PX', math.ceil(keep - now)) end
return {string.format('%.3f', wait), granted and 1 or 0}`,
);

/**
 * Runs a script by SHA1 from Redis's script cache; on NOSCRIPT (first use, or a restarted or flushed
 * server) sends the source with EVAL, which caches it for the next call.
 */
export async function runScript(
  client: RedisClientLike,
  target: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  checkKeyCount(target, keys);
  try {
    return await client.call('EVALSHA', target.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return await client.call('EVAL', target.lua, keys.length, ...keys, ...args);
  }
}

function checkKeyCount(target: Script, keys: readonly string[]): void {
  if (target.keys !== 'any' && keys.length !== target.keys) throw new Error(`script expects ${target.keys} keys, got ${keys.length}`);
  if (keys.length === 0) throw new Error('a script needs at least one key (it routes the call to its hash slot)');
}

function isNoScript(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' && message.startsWith('NOSCRIPT');
}
