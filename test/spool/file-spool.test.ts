// FileInstallSpool on real files: entries survive a new instance (a restart), replay oldest first,
// bounds, encryption (no token in any spool file), mode bits, crash leftovers, and two drainers in
// two real processes applying every entry exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpoolFullError } from '../../src/errors.js';
import type { SpooledEntry, SpoolEntry } from '../../src/spool/entry.js';
import { FileInstallSpool, type SpoolApplyOutcome } from '../../src/spool/file-spool.js';
import { sampleRecord } from '../../src/testing/conformance/records.js';
import { recordingLogger } from '../pool/helpers.js';
import { expectNoneInClear, KEY1, KEY2, secretTokens } from '../store/fixtures/encryption.js';
import { nodeArgs } from '../support/children.js';

let dir: string;
let spoolDir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'b24pt-spool-'));
  spoolDir = join(dir, 'spool');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const entry = (memberId: string, ts = 1_767_225_600, tag = memberId): SpoolEntry => ({
  memberId,
  ts,
  kind: 'install',
  record: sampleRecord(memberId, { ...secretTokens(tag), eventTs: ts }),
});
const encryption = { keys: { k1: KEY1 }, writeKeyId: 'k1' };

async function collect(spool: FileInstallSpool, outcome: (e: SpooledEntry) => SpoolApplyOutcome = () => 'applied'): Promise<SpooledEntry[]> {
  const seen: SpooledEntry[] = [];
  await spool.drain((e) => {
    seen.push(e);
    return Promise.resolve(outcome(e));
  });
  return seen;
}

/** Moves every quarantined entry back (`<id>.json`), as an operator does once the right key is configured. */
async function restoreQuarantined(): Promise<void> {
  const quarantine = join(spoolDir, 'quarantine');
  for (const name of await readdir(quarantine)) await rename(join(quarantine, name), join(spoolDir, name.replace(/\.\w+$/, '.json')));
}

describe('FileInstallSpool', () => {
  it('keeps entries across a new instance (a restart) and replays them oldest first, exactly as put (a newer entry of a chain replacing the older)', async () => {
    const first = new FileInstallSpool({ directory: spoolDir });
    const ids: string[] = [];
    for (const id of ['c', 'a', 'b', 'a']) ids.push(await first.put(entry(id, 1_767_225_600 + ids.length)));
    expect(new Set(ids).size, 'ids are unique').toBe(4);
    const restarted = new FileInstallSpool({ directory: spoolDir });
    expect(await restarted.size()).toBe(3);
    const seen = await collect(restarted);
    expect(seen.map((e) => [e.memberId, e.ts])).toStrictEqual([
      ['c', 1_767_225_600],
      ['b', 1_767_225_602],
      ['a', 1_767_225_603],
    ]);
    expect(seen.map((e) => e.id)).toStrictEqual([ids[0], ids[2], ids[3]]);
    expect(seen[0]?.record).toStrictEqual({ ...entry('c').record, chain: 'portal', eventTs: 1_767_225_600 });
    expect(seen[0]?.kind).toBe('install');
    expect(await restarted.size(), 'applied entries are removed').toBe(0);
    expect(await readdir(spoolDir)).toStrictEqual([]);
  });

  it('removes applied and stale entries, keeps retry and failed ones for the next drain', async () => {
    const logger = recordingLogger();
    const spool = new FileInstallSpool({ directory: spoolDir, logger });
    for (const id of ['applied', 'stale', 'retry', 'throws']) await spool.put(entry(id));
    const outcomes: Record<string, SpoolApplyOutcome> = { applied: 'applied', stale: 'stale', retry: 'retry' };
    const result = await spool.drain((e) => {
      const outcome = outcomes[e.memberId];
      return outcome === undefined ? Promise.reject(new Error('store down')) : Promise.resolve(outcome);
    });
    expect(result).toStrictEqual({ applied: 1, stale: 1, retried: 1, failed: 1 });
    expect(await spool.size()).toBe(2);
    expect((await collect(spool)).map((e) => e.memberId), 'kept entries come back in order').toStrictEqual(['retry', 'throws']);
    expectNoneInClear(logger.lines.join('\n'), Object.values(secretTokens('throws')), 'the log');
  });

  it('refuses entries past maxEntries or maxBytes with SpoolFullError, and takes them again once drained', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir, maxEntries: 2 });
    await spool.put(entry('a'));
    await spool.put(entry('b'));
    await expect(spool.put(entry('c'))).rejects.toMatchObject({ name: 'SpoolFullError', code: 'SPOOL_FULL', limit: 'entries' });
    expect(await spool.size()).toBe(2);
    await collect(spool);
    await spool.put(entry('c'));
    const size = (await stat(join(spoolDir, (await readdir(spoolDir))[0] as string))).size;
    const small = new FileInstallSpool({ directory: join(dir, 'small'), maxBytes: size * 2 + 10 });
    await small.put(entry('a'));
    await small.put(entry('b'));
    const error = await small.put(entry('c')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SpoolFullError);
    expect(error).toMatchObject({ limit: 'bytes' });
    expectNoneInClear(String(error), Object.values(secretTokens('c')), 'the error');
  });

  it('checks entries', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir });
    await expect(spool.put({ ...entry('a'), memberId: 'b' })).rejects.toThrow(/record\.memberId must equal entry\.memberId/);
    await expect(spool.put({ ...entry('a'), ts: Number.NaN })).rejects.toThrow(/entry\.ts/);
    await expect(spool.put({ ...entry('a'), kind: 'uninstall' as 'install' })).rejects.toThrow(/entry\.kind/);
    expect(() => new FileInstallSpool({ directory: spoolDir, maxEntries: 0 })).toThrow(/maxEntries/);
  });

  it('creates its directory 0700 (tightening an existing one) and entry files 0600', async () => {
    if (process.platform === 'win32') return;
    await new FileInstallSpool({ directory: spoolDir }).put(entry('a'));
    expect((await stat(spoolDir)).mode & 0o777).toBe(0o700);
    const [name] = await readdir(spoolDir);
    expect((await stat(join(spoolDir, name as string))).mode & 0o777).toBe(0o600);
    const loose = join(dir, 'loose');
    await mkdir(loose, { mode: 0o755 });
    await chmod(loose, 0o755);
    await new FileInstallSpool({ directory: loose }).put(entry('a'));
    expect((await stat(loose)).mode & 0o777).toBe(0o700);
  });

  it('seals tokens when encryption is given: no token in clear in any file, and only the right key reads them', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir, encryption });
    await spool.put(entry('a'));
    await spool.put({ ...entry('b'), record: sampleRecord('b', { ...secretTokens('b'), chain: 'user:7', userId: 7 }) });
    const raw = (await Promise.all((await readdir(spoolDir)).map((name) => readFile(join(spoolDir, name), 'utf8')))).join('\n');
    expect(raw).toMatch(/"v1\.k1\.[A-Za-z0-9_-]{16}\./);
    expectNoneInClear(raw, [...Object.values(secretTokens('a')), ...Object.values(secretTokens('b'))], 'the spool files');
    const logger = recordingLogger();
    for (const wrong of [new FileInstallSpool({ directory: spoolDir, logger }), new FileInstallSpool({ directory: spoolDir, logger, encryption: { keys: { k1: KEY2 }, writeKeyId: 'k1' } })]) {
      expect(await wrong.drain(() => Promise.resolve('applied')), 'undecryptable entries are quarantined').toStrictEqual({ applied: 0, stale: 0, retried: 0, failed: 2 });
      expect(await spool.size(), 'quarantined entries do not count').toBe(0);
      await restoreQuarantined(); // as an operator does once the key is configured
    }
    expect(logger.lines.join('\n')).toMatch(/cannot be decrypted/);
    expect(await spool.size()).toBe(2);
    const seen = await collect(new FileInstallSpool({ directory: spoolDir, encryption: { keys: { k0: KEY2, k1: KEY1 }, writeKeyId: 'k0' } }));
    expect(seen.map((e) => e.record.accessToken)).toStrictEqual([secretTokens('a').accessToken, secretTokens('b').accessToken]);
    expect(seen[1]?.record).toMatchObject({ chain: 'user:7', applicationToken: secretTokens('b').applicationToken });
  });

  it('ignores and cleans a half-written temp file, sets a corrupt entry aside, and takes back a dead drainer’s claim', async () => {
    const logger = recordingLogger();
    const spool = new FileInstallSpool({ directory: spoolDir, logger, claimTimeoutMs: 60_000 });
    const id = await spool.put(entry('a'));
    const old = new Date(Date.now() - 120_000);
    const deadTemp = join(spoolDir, '.tmp-0123456789abcdef');
    const liveTemp = join(spoolDir, '.tmp-fedcba9876543210');
    await writeFile(deadTemp, '{"format":1,"memberId":"half');
    await utimes(deadTemp, old, old);
    await writeFile(liveTemp, '{"format":1');
    await writeFile(join(spoolDir, '000000000000001-000000-00000000.json'), 'not json');
    const deadClaim = `${id.replace(/^\d{15}/, '000000000000002')}.claim-${String(Date.now() - 120_000).padStart(15, '0')}-abcdef01`;
    await writeFile(join(spoolDir, deadClaim), await readFile(join(spoolDir, `${id}.json`)));
    expect(await spool.size(), 'temp files are not entries').toBe(3);
    const seen: string[] = [];
    const result = await spool.drain((e) => {
      seen.push(e.id);
      return Promise.resolve('applied');
    });
    expect(result).toStrictEqual({ applied: 2, stale: 0, retried: 0, failed: 1 });
    expect(seen, 'the reclaimed entry first (older id), then the pending one').toStrictEqual([id.replace(/^\d{15}/, '000000000000002'), id]);
    expect((await readdir(spoolDir)).sort()).toStrictEqual(['.tmp-fedcba9876543210', 'quarantine']);
    expect(await readdir(join(spoolDir, 'quarantine'))).toStrictEqual(['000000000000001-000000-00000000.corrupt']);
    expect(logger.lines.join('\n')).toMatch(/corrupt/);
  });
});

describe('two drainers in two processes', () => {
  const child = (logFile: string): { process: ChildProcess; ready: Promise<void>; done: Promise<string> } => {
    const script = fileURLToPath(new URL('./fixtures/drain-child.ts', import.meta.url));
    const proc = spawn(process.execPath, [...nodeArgs(script), spoolDir, logFile, KEY1], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    let resolveReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) resolveReady();
    });
    const done = new Promise<string>((resolve, reject) => {
      proc.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`drainer exited with ${String(code)}`))));
    });
    return { process: proc, ready, done };
  };

  it('apply every entry exactly once between them', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir, encryption });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) ids.push(await spool.put(entry(`portal-${i}`)));
    const logFile = join(dir, 'applied.log');
    const drainers = [child(logFile), child(logFile)];
    await Promise.all(drainers.map((d) => d.ready));
    for (const d of drainers) d.process.stdin?.end('go\n');
    const outputs = await Promise.all(drainers.map((d) => d.done));
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n');
    const applied = lines.map((line) => line.split(' ')[0]);
    expect(applied.length, 'no entry applied twice').toBe(60);
    expect([...applied].sort()).toStrictEqual([...ids].sort());
    const results = outputs.map((out) => JSON.parse(out.split('\n')[1] ?? '{}') as { applied: number });
    expect(results.reduce((sum, r) => sum + r.applied, 0), 'the drainers report 60 applied in all').toBe(60);
    expect(await spool.size()).toBe(0);
  }, 60_000);
});

describe('concurrent puts in one process', () => {
  it('never exceed maxEntries', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir, maxEntries: 5 });
    const outcomes = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => spool.put(entry(`p${i}`))));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(5);
    expect(outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof SpoolFullError)).toHaveLength(7);
    expect(await spool.size()).toBe(5);
  });
});

describe('entries spooled before encryption was turned on', () => {
  it('are replayed by an encrypting spool, unless allowPlaintext is false', async () => {
    await new FileInstallSpool({ directory: spoolDir }).put(entry('plain'));
    const strict = new FileInstallSpool({ directory: spoolDir, encryption: { ...encryption, allowPlaintext: false }, logger: recordingLogger() });
    expect(await strict.drain(() => Promise.resolve('applied'))).toStrictEqual({ applied: 0, stale: 0, retried: 0, failed: 1 });
    await restoreQuarantined();
    const seen = await collect(new FileInstallSpool({ directory: spoolDir, encryption }));
    expect(seen.map((e) => e.record.refreshToken)).toStrictEqual([secretTokens('plain').refreshToken]);
  });

  it('keeps an entry whose apply answers something else', async () => {
    const spool = new FileInstallSpool({ directory: spoolDir, logger: recordingLogger() });
    await spool.put(entry('a'));
    expect(await spool.drain(() => Promise.resolve('done' as SpoolApplyOutcome))).toMatchObject({ applied: 0, failed: 1 });
    expect(await spool.size()).toBe(1);
  });
});
