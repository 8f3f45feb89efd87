// Running the built `b24-portal-tokens` binary as a child process, and seeding stores for it.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PortalRecord, PortalRecordInput, TokenStore } from '../../src/store/token-store.js';
import type { CliIo } from '../../src/cli/io.js';
import { expect } from 'vitest';
import { distReady } from '../support/dist.js';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** Every token these tests store matches this; no output may. */
export const TOKEN = /[0-9a-f]{70}/;

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the binary with `args`; the environment holds only what is passed (plus PATH). */
export async function runBinary(args: readonly string[], env: Record<string, string> = {}, input?: string): Promise<CliRun> {
  await distReady(); // dist/cli.js: the global setup may still be building it
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

let counter = 0;

/** A fresh hex token of 70 characters. */
export function token(): string {
  counter++;
  return (counter.toString(16).padStart(8, '0') + 'f'.repeat(62)).slice(0, 70);
}

/** A member id for portal `i`. */
export function memberId(i: number): string {
  return i.toString(16).padStart(32, '0');
}

/** A record input for portal `i` (or one of its users' chains). */
export function recordInput(i: number, extra: Partial<PortalRecordInput> = {}, now = Date.now()): PortalRecordInput {
  return {
    memberId: memberId(i),
    domain: `p${i}.bitrix24.com`,
    clientEndpoint: `https://p${i}.bitrix24.com/rest/`,
    serverEndpoint: 'https://oauth.bitrix.info/rest/',
    accessToken: token(),
    refreshToken: token(),
    expires: Math.floor(now / 1000) + 3600,
    scope: 'crm,user_brief',
    status: 'L',
    userId: 1,
    applicationToken: token().slice(0, 32),
    state: 'active',
    revokedReason: null,
    installedAt: now - 86_400_000,
    updatedAt: now,
    chainUpdatedAt: now,
    revokedAt: null,
    ...extra,
  };
}

/** Writes `count` portals with `parallel` writes at once; portal i gets `versionOf(i)` (default 1 + (i % 3)). */
export async function seedPortals(store: TokenStore, count: number, parallel = 16, from = 0, versionOf = (i: number) => 1 + (i % 3)): Promise<void> {
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < from + count) {
      const i = next++;
      for (let v = 0; v < versionOf(i); v++) await store.upsert(recordInput(i));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

/** An in-memory CliIo that records what was written. */
export function memoryIo(env: NodeJS.ProcessEnv = {}): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    isTTY: false,
    env,
    out(text: string) {
      io.stdout += text;
    },
    err(text: string) {
      io.stderr += text;
    },
  };
  return io;
}

/** The fields of a record that must survive a copy (all of them, the version included). */
export function comparable(record: PortalRecord | undefined): Record<string, unknown> | undefined {
  return record === undefined ? undefined : { ...record };
}

/** Drops every PostgreSQL table whose name starts with `prefix_`. */
export async function dropPostgresPrefix(url: string, prefix: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>("select tablename from pg_tables where tablename like $1", [`${prefix}\\_%`]);
    for (const { tablename } of rows) await client.query(`drop table if exists "${tablename}" cascade`);
  } finally {
    await client.end();
  }
}

/** Deletes every Redis key that starts with `prefix:`. */
export async function dropRedisPrefix(url: string, prefix: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/**
 * Asserts that every chain of `target` equals the source's record of the same key, versions
 * included, and returns how many there are. It pages through the target and reads the source by
 * key, because the file store's `listChains` reads the whole directory on every call.
 */
export async function expectSameRecords(source: TokenStore, target: TokenStore): Promise<number> {
  let n = 0;
  let after: string | undefined;
  do {
    const page = await target.list!({ after, limit: 500 });
    for (const portal of page.records) {
      for (const record of [portal, ...(await target.listChains!(portal.memberId))]) {
        expect(record).toEqual(await source.get({ memberId: record.memberId, chain: record.chain }));
        n++;
      }
    }
    after = page.next;
  } while (after !== undefined);
  return n;
}
