// The model of issue 20: generated sequences of what happens to one portal, run against the REAL
// lifecycle handler (through toFetchHandler), pool, store (memory and file) and the stand-in
// Bitrix24, with the promise checked after every step:
//
//   I1 once a portal administrator authorized a chain (install, update, app-page reseed), the
//      portal's chain is an administrator's, active, and alive at the OAuth host, until a rotation
//      whose answer was lost or an uninstall;
//   I2 no chain of an installed app is deleted (the portal's, once stored, unless a lost rotation
//      killed it; each remembered user's);
//   I3 no chain is lost except by a rotation whose answer never arrived, and the next
//      administrator's app-page visit restores it;
//   I4 no secret reaches a host the configuration does not trust (an attacker's host named in
//      forged events receives none but the forger's own);
//   I5 the process never crashes (no unhandled rejection or uncaught exception), every call settles,
//      and no event is answered 5xx (but 503 while the store is down or lost an answer);
//   I6 a confirmed uninstall is not undone (an install waiting in the spool does not bring it back).
//
// Besides events, app-page visits, forged events and pool calls, steps lose a rotation's answer
// (the OAuth host rotated, the answer never came), lose a store write's answer (applied, then a
// transient StoreError), take the store down for one step (installs wait in the spool) and replay the spool.
//
// Seeded: B24PT_MODEL_SEED=<n> replays a run (`random` draws one); the seed is printed. B24PT_MODEL_RUNS
// sets the number of runs per store (default 40), B24PT_MODEL_STEPS the longest run (default 25), B24PT_MODEL_SHRINK=1 shrinks a failure.

import { createServer } from 'node:http';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPortalTokensError, PortalTokensError, StoreError } from '../../src/errors.js';
import { parseAppPageRequest } from '../../src/events/parse.js';
import { toFetchHandler } from '../../src/http/fetch.js';
import { createLifecycleHandler, type LifecycleHandler } from '../../src/http/handler.js';
import { silentLogger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { FileInstallSpool } from '../../src/spool/file-spool.js';
import { FileTokenStore } from '../../src/store/file/store.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import { userChain, type PortalRecord, type TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24, type FakePortal } from '../../src/testing/fake-bitrix24.js';
import { MINTED_SECRETS_CHANNEL, type MintedSecret } from '../../src/testing/fake-bitrix24/minted.js';
import { listen } from '../http/helpers.js';

const ADMINS = [1, 2] as const;
const ORDINARY = [7, 8] as const;
const USERS = [...ADMINS, ...ORDINARY];
const isAdmin = (userId: number | null | undefined): boolean => userId === 1 || userId === 2;

const seedSetting = process.env['B24PT_MODEL_SEED'];
const SEED =
  seedSetting !== undefined && seedSetting !== '' && seedSetting !== 'random'
    ? Number(seedSetting)
    : seedSetting === 'random' || process.env['CI'] !== 'true'
      ? Math.floor(Math.random() * 2 ** 31)
      : 20_260_1206;
const RUNS = Number(process.env['B24PT_MODEL_RUNS'] ?? 40);
const SHRINK = process.env['B24PT_MODEL_SHRINK'] === '1';
const MAX_STEPS = Number(process.env['B24PT_MODEL_STEPS'] ?? 25);

/** What the model expects of the portal. */
interface Model {
  /** The app is installed (the stand-in's view). */
  installed: boolean;
  /** A genuine install was stored since the last genuine uninstall: the portal's record must exist. */
  stored: boolean;
  /** An administrator authorized the portal's chain since the last loss or uninstall (I1). */
  adminLive: boolean;
  /** A rotation's answer was lost since: the portal's chain may be dead until an admin visits (I3). */
  lost: boolean;
  /** Users whose own chain was remembered while installed (I2). */
  users: Set<number>;
  /** An administrator's install or update waits in the spool (the store was down): the replay stores it. */
  pendingAdmin: boolean;
  /** The last uninstall was confirmed (answered 200): nothing may bring the portal's chain back (I6). */
  uninstalled: boolean;
}

/** The real system of one run. */
interface Real {
  readonly b24: FakeBitrix24;
  readonly portal: FakePortal;
  readonly store: TokenStore;
  readonly pool: PortalClientPool;
  readonly handler: LifecycleHandler;
  readonly post: (body: string) => Promise<number>;
  /** Everything the attacker's host received, as text. */
  readonly attackerSaw: string[];
  /** Secrets a forger legitimately holds (their own app-page chain and the application token). */
  readonly forgerHolds: Set<string>;
  /** What failed an invariant, with the step. */
  readonly log: string[];
  /** The store's injected fault: its next write is applied but its answer lost. */
  readonly faults: StoreFaults;
}

/** Faults of the store, armed by a step: a lost answer (the next write applied, its answer lost), an outage. */
interface StoreFaults {
  armed: boolean;
  /** Whether it fired during the current step (which may then fail with a typed StoreError). */
  firedInStep: boolean;
  /** The next step runs with the store unreachable. */
  outageNext: boolean;
  /** The store is unreachable now (during one step's action; the checks read it back up). */
  down: boolean;
}

const WRITES = new Set<PropertyKey>(['upsert', 'update', 'delete', 'deletePortal']);

/** `inner`, whose next write after `faults.armed` is applied and then answers a transient StoreError. */
function lossy(inner: TokenStore, faults: StoreFaults): TokenStore {
  return new Proxy(inner, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      const method = (value as (...args: unknown[]) => unknown).bind(target);
      const unreachable = (): StoreError => new StoreError('The store is unreachable', { transient: true });
      if (!WRITES.has(property)) return (...args: unknown[]) => (faults.down ? Promise.reject(unreachable()) : method(...args));
      return async (...args: unknown[]) => {
        if (faults.down) throw unreachable();
        const result = await method(...args);
        if (faults.armed) {
          Object.assign(faults, { armed: false, firedInStep: true });
          throw new StoreError("The store's answer was lost", { transient: true });
        }
        return result;
      };
    },
  });
}

let b24: FakeBitrix24;
let attacker: { url: string; close: () => Promise<void> };
const attackerSaw: string[] = [];
/** Secrets forgers legitimately hold (their own app-page chains and what they chose), over every run. */
const forgerHolds = new Set<string>();
const minted = new Set<string>();
const onMinted = (message: unknown): void => {
  const secret = message as MintedSecret;
  if (secret.value.length >= 16) minted.add(secret.value);
};
const escaped: unknown[] = [];
const onEscape = (reason: unknown): void => {
  escaped.push(reason);
};
let dir: string;

beforeAll(async () => {
  subscribe(MINTED_SECRETS_CHANNEL, onMinted);
  process.on('unhandledRejection', onEscape);
  process.on('uncaughtException', onEscape);
  b24 = await FakeBitrix24.start();
  minted.add(b24.clientSecret);
  attacker = await listen(
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        attackerSaw.push(`${req.method ?? ''} ${req.url ?? ''} ${JSON.stringify(req.headers)} ${Buffer.concat(chunks).toString('utf8')}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ result: { ID: '1', ADMIN: true }, time: {} }));
      });
    }),
  );
  dir = await mkdtemp(join(tmpdir(), 'b24pt-model-'));
  console.info(`chains model: seed ${SEED} (B24PT_MODEL_SEED=${SEED} replays it), ${RUNS} runs per store`);
});

afterAll(async () => {
  unsubscribe(MINTED_SECRETS_CHANNEL, onMinted);
  process.off('unhandledRejection', onEscape);
  process.off('uncaughtException', onEscape);
  await attacker.close();
  await b24.close();
  await rm(dir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------------------------
// Invariants, after every step

async function portalRecord(real: Real): Promise<PortalRecord | undefined> {
  return real.store.get(real.portal.memberId);
}

/** The portal's record as last read by the checks (ids and states, never tokens), for the report. */
let lastSeen = 'not read yet';

/** Fails with what broke, the step, the seed, and the portal's record as last read. */
function broken(real: Real, step: string, what: string): never {
  throw new Error(`invariant ${what} (after ${step}; seed ${SEED})\n  steps: ${real.log.join(' ; ')}\n  portal record: ${lastSeen}`);
}

async function checkInvariants(model: Model, real: Real, step: string): Promise<void> {
  const record = await portalRecord(real);
  lastSeen =
    record === undefined
      ? 'none'
      : `user ${String(record.userId)}, ${record.state}${record.revokedReason == null ? '' : ` (${record.revokedReason})`}, version ${record.version}, refresh token ${real.b24.tokenStatus(record.refreshToken)}, REST root ${record.clientEndpoint.startsWith(attacker.url) ? "the attacker's" : 'the portal\'s'}`;
  // I1: an administrator's chain stays the portal's, active and alive at the OAuth host.
  if (model.installed && model.adminLive) {
    if (record === undefined) broken(real, step, 'I1: the administrator-authorized portal chain is gone');
    if (record.state !== 'active') broken(real, step, `I1: the portal chain is ${record.state} (${record.revokedReason ?? ''})`);
    if (!isAdmin(record.userId)) broken(real, step, `I1: the portal chain is user ${String(record.userId)}'s, not an administrator's`);
    const status = real.b24.tokenStatus(record.refreshToken);
    if (status !== 'live') broken(real, step, `I1: the stored refresh token is ${status} at the OAuth host`);
  }
  // I2: nothing of an installed app that still works is deleted. (A portal chain lost by a dropped
  // rotation is dead: an unconfirmed uninstall may clear its record; I3 then wants it restored.)
  if (model.installed && model.stored && !model.lost && record === undefined) broken(real, step, 'I2: the portal chain of an installed app was deleted');
  if (model.installed) {
    for (const userId of model.users) {
      const chain = await real.store.get({ memberId: real.portal.memberId, chain: userChain(userId) });
      if (chain === undefined) broken(real, step, `I2: user ${userId}'s chain of an installed app was deleted`);
    }
  }
  // I6: a confirmed uninstall is not undone (by the spool's replay or anything else).
  if (!model.installed && model.uninstalled && record?.state === 'active') broken(real, step, 'I6: the portal chain is active again after a confirmed uninstall');
  // I3: without a lost rotation, a stored active portal chain is alive at the OAuth host.
  if (model.installed && !model.lost && record !== undefined && record.state === 'active') {
    const status = real.b24.tokenStatus(record.refreshToken);
    if (status !== 'live') broken(real, step, `I3: the stored portal refresh token is ${status} with no lost rotation`);
  }
  // I4: no secret but the forger's own reached the attacker's host.
  for (const seen of real.attackerSaw) {
    for (const secret of minted) {
      if (!real.forgerHolds.has(secret) && seen.includes(secret)) broken(real, step, 'I4: a secret reached an untrusted host');
    }
  }
  // I5: nothing escaped.
  if (escaped.length > 0) broken(real, step, `I5: ${escaped.length} unhandled rejection(s) / uncaught exception(s): ${String(escaped[0])}`);
}

// ------------------------------------------------------------------------------------------------
// Commands

type Step = fc.AsyncCommand<Model, Real>;

/** A command: its name, when it may run, and what it does (then the invariants are checked). */
function command(name: string, check: (model: Readonly<Model>) => boolean, act: (model: Model, real: Real) => Promise<void>): Step {
  return {
    check,
    async run(model, real) {
      real.log.push(name);
      stepsRun += 1;
      Object.assign(real.faults, { firedInStep: false, down: real.faults.outageNext, outageNext: false });
      try {
        await act(model, real);
      } finally {
        real.faults.down = false;
      }
      await checkInvariants(model, real, name);
    },
    toString: () => name,
  };
}

/** The call's outcome within `ms`, or 'pending' (I5: every call settles). */
async function settles<T>(real: Real, step: string, promise: Promise<T>, ms = 20_000): Promise<PromiseSettledResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    promise.then(
      (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
      (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
    ),
    new Promise<'pending'>((resolve) => {
      timer = setTimeout(() => resolve('pending'), ms);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'pending') broken(real, step, `I5: the call did not settle within ${ms} ms`);
  return outcome;
}

function answered(real: Real, step: string, status: number): void {
  // A store that is down or lost an answer may be reported (503); anything else 5xx is a failure.
  const excused = status === 503 && (real.faults.down || real.faults.firedInStep);
  if (status >= 500 && !excused) broken(real, step, `I5: the handler answered ${status}`);
}

/** An administrator's genuine event was answered 200: stored now, or (store down) once the spool is replayed. */
function adminAuthorized(model: Model, real: Real): void {
  // Stored now, the newer event wins over one still waiting in the spool (its replay changes nothing).
  if (real.faults.down) model.pendingAdmin = true;
  else Object.assign(model, { stored: true, adminLive: true, lost: false, pendingAdmin: false });
}

const genuineInstall = (userId: number): Step =>
  command(
    `install by ${isAdmin(userId) ? 'admin' : 'user'} ${userId}`,
    () => true,
    async (model, real) => {
      const step = `install by ${userId}`;
      const wasInstalled = model.installed;
      const status = await real.post(real.b24.installEvent(real.portal.memberId, { userId }).form);
      answered(real, step, status);
      // A reinstall: the old chains died with the uninstall (a record left by an unconfirmed one may stay, dead, until replaced).
      if (!wasInstalled) Object.assign(model, { users: new Set<number>(), stored: false, adminLive: false });
      Object.assign(model, { installed: true, uninstalled: false });
      if (isAdmin(userId)) {
        if (status !== 200) broken(real, step, `I1: a genuine install by an administrator was answered ${status}`);
        adminAuthorized(model, real);
      } else if (status === 200 && !real.faults.down) {
        // The installer's chain (an ordinary user allowed to install): stored unless an administrator's is live.
        Object.assign(model, { stored: true, lost: false });
      }
    },
  );

const genuineUpdate = (userId: number): Step =>
  command(
    `update by ${isAdmin(userId) ? 'admin' : 'user'} ${userId}`,
    (model) => model.installed,
    async (model, real) => {
      const status = await real.post(real.b24.updateEvent(real.portal.memberId, { userId }).form);
      answered(real, `update by ${userId}`, status);
      if (isAdmin(userId)) {
        if (status !== 200) broken(real, `update by admin ${userId}`, `I1: a genuine update by an administrator was answered ${status}`);
        adminAuthorized(model, real);
      }
    },
  );

const visit = (userId: number, how: 'remember' | 'reseed' | 'visit'): Step =>
  command(
    `app page (${{ remember: 'rememberUser', reseed: 'reseed', visit: 'pool.visit' }[how]}) by ${isAdmin(userId) ? 'admin' : 'user'} ${userId}`,
    (model) => model.installed,
    async (model, real) => {
      const request = real.b24.appPageRequest(real.portal.memberId, { userId });
      const page = parseAppPageRequest({ query: request.query, body: request.body });
      const step = `${how} visit by ${userId}`;
      const call = { remember: () => real.pool.rememberUser(page), reseed: () => real.pool.reseed(page), visit: () => real.pool.visit(page) }[how];
      const outcome = await settles<unknown>(real, step, call());
      if (outcome.status === 'rejected' && findPortalTokensError(outcome.reason) === undefined) {
        broken(real, step, `I5: an untyped error: ${String(outcome.reason)}`);
      }
      // While the store is down the visit fails (typed) and changes nothing; the next one counts.
      if (real.faults.down) return;
      const kept = await real.store.get({ memberId: real.portal.memberId, chain: userChain(userId) });
      if (kept !== undefined && kept.state === 'active') model.users.add(userId);
      if (how !== 'remember' && isAdmin(userId)) {
        // I3: after an administrator's visit the portal's chain is alive again (restored, or never lost).
        const record = await portalRecord(real);
        if (record === undefined || record.state !== 'active' || real.b24.tokenStatus(record.refreshToken) !== 'live') {
          broken(real, step, `I3: after an administrator's app-page visit the portal chain is ${record === undefined ? 'missing' : `${record.state}/${real.b24.tokenStatus(record.refreshToken)}`}`);
        }
        model.lost = false;
        if (isAdmin(record.userId)) Object.assign(model, { adminLive: true, stored: true });
      }
    },
  );

/** A form body (PHP bracket keys) from a nested payload. */
function toForm(payload: Record<string, unknown>): string {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(payload)) {
    if (value !== null && typeof value === 'object') {
      for (const [sub, leaf] of Object.entries(value as Record<string, unknown>)) form.append(`${key}[${sub}]`, String(leaf));
    } else form.append(key, String(value));
  }
  return form.toString();
}

interface Forgery {
  readonly userId: number;
  readonly event: 'ONAPPINSTALL' | 'ONAPPUPDATE';
  /** Seconds from now (any: far past, now, far future). */
  readonly tsOffset: number;
  readonly applicationToken: 'real' | 'chosen';
  /** Which endpoints of the event name the attacker's host instead of the real ones. */
  readonly endpoints: 'real' | 'attacker-server' | 'attacker-client' | 'attacker-both';
}

const forged = (f: Forgery): Step =>
  command(
    `forged ${f.event} by user ${f.userId} (ts ${f.tsOffset >= 0 ? '+' : ''}${f.tsOffset}s, ${f.applicationToken} app token, ${f.endpoints} endpoints)`,
    (model) => model.installed,
    async (_model, real) => {
      // The forger opens the app (their own chain and the APPLICATION_TOKEN), then posts an event built from it.
      const request = real.b24.appPageRequest(real.portal.memberId, { userId: f.userId });
      const body = new URLSearchParams(request.body);
      const applicationToken = f.applicationToken === 'real' ? (body.get('APPLICATION_TOKEN') ?? '') : `chosen${'0'.repeat(26)}`;
      real.forgerHolds.add(request.chain.accessToken).add(request.chain.refreshToken).add(applicationToken);
      const endpoint = (real: string, which: 'server' | 'client'): string =>
        f.endpoints === 'attacker-both' || f.endpoints === `attacker-${which}` ? `${attacker.url}/rest/` : real;
      const status = await real.post(
        toForm({
          event: f.event,
          event_handler_id: '1',
          data: f.event === 'ONAPPINSTALL' ? { VERSION: '1', ACTIVE: 'Y', INSTALLED: 'Y', LANGUAGE_ID: 'en' } : { VERSION: '9', PREVIOUS_VERSION: '1', LANGUAGE_ID: 'en' },
          ts: String(Math.max(0, Math.floor(Date.now() / 1000) + f.tsOffset)),
          auth: {
            access_token: request.chain.accessToken,
            expires: String(request.chain.expires),
            expires_in: String(request.chain.expiresIn),
            scope: real.portal.scope,
            domain: real.portal.domain,
            server_endpoint: endpoint(real.b24.serverEndpoint, 'server'),
            status: real.portal.status,
            client_endpoint: endpoint(real.portal.clientEndpoint, 'client'),
            member_id: real.portal.memberId,
            user_id: String(f.userId),
            refresh_token: request.chain.refreshToken,
            application_token: applicationToken,
          },
        }),
      );
      answered(real, 'forged event', status);
    },
  );

const forgedUninstall = (): Step =>
  command(
    'forged ONAPPUNINSTALL with the real application token',
    (model) => model.installed,
    async (_model, real) => {
      const status = await real.post(
        toForm({
          event: 'ONAPPUNINSTALL',
          event_handler_id: '2',
          data: { CLEAN: '1', LANGUAGE_ID: 'en' },
          ts: String(Math.floor(Date.now() / 1000)),
          auth: {
            domain: real.portal.domain,
            client_endpoint: real.portal.clientEndpoint,
            server_endpoint: real.b24.serverEndpoint,
            member_id: real.portal.memberId,
            application_token: real.portal.applicationToken,
          },
        }),
      );
      answered(real, 'forged uninstall', status);
    },
  );

const genuineUninstall = (): Step =>
  command(
    'uninstall',
    (model) => model.installed,
    async (model, real) => {
      const status = await real.post(real.b24.uninstallEvent(real.portal.memberId).form);
      answered(real, 'uninstall', status);
      model.users.clear();
      // A confirmed uninstall wins over an install still waiting in the spool. One answered 503 (the
      // store down) leaves the record as it was, its chain dead at the host: like a lost one (I3).
      const confirmed = status === 200;
      Object.assign(model, { installed: false, stored: false, adminLive: false, lost: !confirmed, pendingAdmin: false, uninstalled: confirmed });
    },
  );

/** A pool call for the portal (or a remembered user); returns how it ended. */
async function call(real: Real, step: string, userId: number | undefined): Promise<PromiseSettledResult<unknown>> {
  const work = (async () => {
    const client = await real.pool.clientFor(real.portal.memberId, userId === undefined ? {} : { userId });
    return client.actions.v2.call.make({ method: 'profile' });
  })();
  const outcome = await settles(real, step, work);
  // The pool's own failures are typed; a REST answer's error stays the SDK's (AjaxError).
  const reason: unknown = outcome.status === 'rejected' ? outcome.reason : undefined;
  if (reason !== undefined && !(findPortalTokensError(reason) instanceof PortalTokensError) && !(reason instanceof Error && reason.name === 'AjaxError')) {
    broken(real, step, `I5: an error that is neither typed nor a REST answer from a pool call: ${reason instanceof Error ? reason.name : typeof reason}`);
  }
  return outcome;
}

const poolCall = (who: 'portal' | number): Step =>
  command(
    `pool call as ${who === 'portal' ? 'the portal' : `user ${who}`}`,
    (model) => who === 'portal' || model.users.has(who),
    async (model, real) => {
      const step = `pool call as ${String(who)}`;
      const outcome = await call(real, step, who === 'portal' ? undefined : who);
      // A store that is down or lost its answer may fail this call (typed); the next one must work.
      if (real.faults.firedInStep || real.faults.down) return;
      // I3: a chain nobody lost answers.
      if (model.installed && who === 'portal' && model.adminLive && outcome.status === 'rejected') {
        broken(real, step, `I3: the portal's live chain failed: ${(findPortalTokensError(outcome.reason) as PortalTokensError).code}`);
      }
      if (model.installed && who !== 'portal' && outcome.status === 'rejected') {
        broken(real, step, `I3: user ${who}'s remembered chain failed: ${(findPortalTokensError(outcome.reason) as PortalTokensError).code}`);
      }
    },
  );

const lostRotation = (): Step =>
  command(
    'a refresh whose answer is lost (rotate-and-drop)',
    (model) => model.installed,
    async (model, real) => {
      real.b24.expireAccessTokens(real.portal.memberId);
      real.b24.failOAuth({ mode: 'rotate-and-drop' }, 1);
      try {
        await call(real, 'lost rotation', undefined);
        await call(real, 'lost rotation (retry)', undefined);
      } finally {
        real.b24.failOAuth(null);
      }
      // An install still waiting in the spool predates this loss: only an administrator's next
      // app-page visit is promised to restore the chain (its replay may find the stored event as new).
      Object.assign(model, { lost: true, adminLive: false, pendingAdmin: false });
    },
  );

const storeLosesAnswer = (): Step =>
  command(
    "the store's next write is applied, its answer lost",
    () => true,
    (_model, real) => {
      real.faults.armed = true;
      return Promise.resolve();
    },
  );

const replaySpool = (): Step =>
  command(
    'the spool is replayed',
    () => true,
    async (model, real) => {
      await settles(real, 'spool replay', real.handler.replaySpool());
      if (model.pendingAdmin && model.installed && !real.faults.down && !real.faults.firedInStep) {
        Object.assign(model, { pendingAdmin: false, stored: true, adminLive: true, lost: false });
      }
    },
  );

const storeDown = (): Step =>
  command(
    'the store is unreachable during the next step',
    () => true,
    (_model, real) => {
      real.faults.outageNext = true;
      return Promise.resolve();
    },
  );

const expire = (): Step =>
  command(
    'access tokens expire',
    () => true,
    (_model, real) => {
      real.b24.expireAccessTokens(real.portal.memberId);
      return Promise.resolve();
    },
  );

const commands = [
  fc.constantFrom(...USERS).map(genuineInstall),
  fc.constantFrom(...USERS).map(genuineUpdate),
  fc.tuple(fc.constantFrom(...USERS), fc.constantFrom('remember' as const, 'reseed' as const, 'visit' as const)).map(([userId, how]) => visit(userId, how)),
  fc
    .record({
      userId: fc.constantFrom(...ORDINARY),
      event: fc.constantFrom('ONAPPINSTALL' as const, 'ONAPPUPDATE' as const),
      tsOffset: fc.oneof(fc.constant(0), fc.integer({ min: -10 * 365 * 86_400, max: 10 * 365 * 86_400 })),
      applicationToken: fc.constantFrom('real' as const, 'chosen' as const),
      endpoints: fc.constantFrom('real' as const, 'attacker-server' as const, 'attacker-client' as const, 'attacker-both' as const),
    })
    .map(forged),
  fc.constant(null).map(forgedUninstall),
  fc.constant(null).map(genuineUninstall),
  fc.constantFrom<'portal' | number>('portal', ...USERS).map(poolCall),
  fc.constant(null).map(lostRotation),
  fc.constant(null).map(expire),
  fc.constant(null).map(storeLosesAnswer),
  fc.constant(null).map(replaySpool),
  fc.constant(null).map(storeDown),
];

/**
 * Sequences that broke the promise before (issue 20), run first in every pass besides the generated
 * ones: case 1 (a forged install with a future `ts` while the chain is lost locks the administrator
 * out) and case 2 (a forged uninstall while the portal's chain is revoked deletes every chain).
 */
const KNOWN: Step[][] = [
  [lostRotation(), forged({ userId: 7, event: 'ONAPPINSTALL', tsOffset: 10 * 365 * 86_400, applicationToken: 'chosen', endpoints: 'real' }), genuineInstall(1)],
  [visit(7, 'remember'), lostRotation(), forgedUninstall(), poolCall(7)],
  [lostRotation(), visit(1, 'reseed'), poolCall('portal')],
  [lostRotation(), visit(7, 'visit'), visit(2, 'visit'), poolCall('portal'), poolCall(7)],
  [storeLosesAnswer(), genuineUpdate(1), expire(), poolCall('portal'), replaySpool(), poolCall('portal')],
  [storeDown(), genuineUpdate(2), genuineUninstall(), replaySpool()],
  [storeLosesAnswer(), genuineUpdate(1), storeDown(), genuineUninstall(), storeLosesAnswer(), genuineInstall(8), forgedUninstall()],
  [
    genuineUninstall(),
    storeDown(),
    genuineInstall(1),
    forged({ userId: 7, event: 'ONAPPINSTALL', tsOffset: 0, applicationToken: 'real', endpoints: 'real' }),
    expire(),
    replaySpool(),
  ],
  [
    genuineUninstall(),
    storeLosesAnswer(),
    storeDown(),
    storeDown(),
    genuineInstall(1),
    forged({ userId: 7, event: 'ONAPPINSTALL', tsOffset: 69_686_396, applicationToken: 'real', endpoints: 'attacker-client' }),
    replaySpool(),
  ],
  [lostRotation(), forged({ userId: 8, event: 'ONAPPUPDATE', tsOffset: 0, applicationToken: 'real', endpoints: 'attacker-client' }), expire(), poolCall('portal')],
];

// ------------------------------------------------------------------------------------------------
// Runs

type StoreKind = 'memory' | 'file';
let runNumber = 0;
let stepsRun = 0;

function system(kind: StoreKind): { real: Real; close: () => Promise<void> } {
  runNumber += 1;
  const portal = b24.addPortal({ userId: 1, users: [...USERS], admins: [...ADMINS] });
  const inner: TokenStore = kind === 'memory' ? new MemoryTokenStore() : new FileTokenStore({ directory: join(dir, `run-${runNumber}`) });
  const faults: StoreFaults = { armed: false, firedInStep: false, outageNext: false, down: false };
  const store = lossy(inner, faults);
  const spool = new FileInstallSpool({ directory: join(dir, `spool-${runNumber}`), logger: silentLogger });
  const pool = new PortalClientPool({
    ...b24.trust,
    store,
    clientId: b24.clientId,
    clientSecret: b24.clientSecret,
    logger: silentLogger,
    trustedOAuthHosts: [b24.serverEndpoint],
    backoff: { transientMinMs: 0, transientMaxMs: 0 },
  });
  const handler = createLifecycleHandler({ pool, trustedOAuthHosts: [b24.oauthUrl], logger: silentLogger, spool });
  const fetchHandler = toFetchHandler(handler);
  const post = async (body: string): Promise<number> => {
    const response = await fetchHandler(
      new Request('https://app.example/bitrix24/events', { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
    );
    await response.text();
    return response.status;
  };
  const real: Real = { b24, portal, store, pool, handler, post, attackerSaw, forgerHolds, log: [], faults };
  return {
    real,
    close: async () => {
      handler.close();
      await pool.close();
      await inner.close?.();
    },
  };
}

/** Runs one sequence of steps on a fresh system, from a genuine install by the installer (an administrator). */
async function runSteps(kind: StoreKind, steps: Iterable<Step>): Promise<void> {
  const { real, close } = system(kind);
  try {
    const setup = async (): Promise<{ model: Model; real: Real }> => {
      const model: Model = { installed: false, stored: false, adminLive: false, lost: false, users: new Set<number>(), pendingAdmin: false, uninstalled: false };
      await genuineInstall(1).run(model, real);
      return { model, real };
    };
    await fc.asyncModelRun(setup, steps);
  } finally {
    await close();
  }
}

describe.each<StoreKind>(['memory', 'file'])('the chains model on the %s store', (kind) => {
  it.each(KNOWN.map((steps) => [steps.map(String).join(' ; '), steps] as const))('holds after the known sequence: %s', async (_name, steps) => {
    await runSteps(kind, steps);
    expect(escaped).toEqual([]);
  });

  it(`holds I1-I5 over ${RUNS} generated runs`, async () => {
    const before = stepsRun;
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: MAX_STEPS, size: 'max' }), (steps) => runSteps(kind, steps)),
      { seed: SEED, numRuns: RUNS, endOnFailure: !SHRINK, verbose: 1 },
    );
    console.info(`chains model (${kind} store): ${RUNS} runs, ${stepsRun - before} steps`);
    expect(stepsRun - before).toBeGreaterThan(RUNS);
    expect(escaped).toEqual([]);
  }, 120_000);
});
