// The stand-in's world: its settings, the portals with their users, and the ledger of every token
// and code it minted. Everything else (OAuth endpoints, REST, payload builders) reads and moves it.

import { announceSecret } from './minted.js';
import type { FakePortalOptions, FakeUserOptions } from './options.js';
import type { FakeChain, FakePortal, FakeTokenStatus } from './types.js';
import { assertUserId, normaliseDomain, randomHex } from './util.js';

/** Settings fixed when the stand-in starts. */
export interface StandInConfig {
  readonly url: string;
  readonly serverEndpoint: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly now: () => number;
  readonly accessTtlSec: number;
  readonly codeTtlSec: number;
  readonly redirectUri: string | undefined;
}

/** One user of a portal. */
export interface UserState {
  name: string;
  lastName: string;
  admin: boolean;
}

/** A portal's mutable state. */
export interface PortalState {
  memberId: string;
  domain: string;
  status: string;
  scope: string;
  adminUserId: number;
  applicationToken: string;
  installed: boolean;
  appVersion: number;
  users: Map<number, UserState>;
}

/** An access token's state. */
export interface AccessRecord {
  readonly memberId: string;
  readonly userId: number;
  readonly expiresMs: number;
  dead: boolean;
  forcedExpired: boolean;
}

/** A refresh token's state. */
export interface RefreshRecord {
  readonly memberId: string;
  readonly userId: number;
  readonly accessToken: string;
  spent: boolean;
  /** Set by revoke/uninstall: the error a refresh of this token answers. */
  revokedWith: string | null;
}

/** An authorization code's state. */
export interface CodeRecord {
  readonly memberId: string;
  readonly userId: number;
  readonly clientId: string;
  readonly expiresMs: number;
  used: boolean;
}

/** How an access token fares right now. */
export type AccessVerdict = 'ok' | 'expired' | 'dead' | 'not_installed';

function sortedIds(state: PortalState, filter: (user: UserState) => boolean): readonly number[] {
  return Object.freeze([...state.users].filter(([, user]) => filter(user)).map(([id]) => id).sort((a, b) => a - b));
}

/** A read-only live view of a portal's state. */
function portalView(state: PortalState, baseUrl: string): FakePortal {
  return Object.freeze({
    get memberId() {
      return state.memberId;
    },
    get domain() {
      return state.domain;
    },
    get clientEndpoint() {
      return `${baseUrl}/portals/${state.domain}/rest/`;
    },
    get applicationToken() {
      return state.applicationToken;
    },
    get status() {
      return state.status;
    },
    get scope() {
      return state.scope;
    },
    get adminUserId() {
      return state.adminUserId;
    },
    get users() {
      return sortedIds(state, () => true);
    },
    get admins() {
      return sortedIds(state, (user) => user.admin);
    },
    get installed() {
      return state.installed;
    },
    get appVersion() {
      return state.appVersion;
    },
  });
}

/** Portals, users, tokens and codes of one stand-in. */
export class Ledger {
  readonly config: StandInConfig;
  readonly #portals = new Map<string, { state: PortalState; view: FakePortal }>();
  readonly #byDomain = new Map<string, string>();
  readonly #oldDomains = new Map<string, string>();
  readonly #access = new Map<string, AccessRecord>();
  readonly #refresh = new Map<string, RefreshRecord>();
  readonly #codes = new Map<string, CodeRecord>();
  #portalCounter = 0;

  constructor(config: StandInConfig) {
    this.config = config;
  }

  nowSec(): number {
    return Math.floor(this.config.now() / 1000);
  }

  // --- portals and users

  addPortal(options: FakePortalOptions): FakePortal {
    this.#portalCounter += 1;
    const memberId = options.memberId ?? randomHex(16);
    const domain = normaliseDomain(options.domain ?? `portal${this.#portalCounter}.bitrix24.test`, 'options.domain');
    if (this.#portals.has(memberId)) throw new TypeError(`options.memberId: a portal with this member_id already exists`);
    if (this.#byDomain.has(domain)) throw new TypeError(`options.domain: a portal with this domain already exists`);
    const adminUserId = options.userId ?? 1;
    assertUserId(adminUserId, 'options.userId');
    for (const id of options.users ?? []) assertUserId(id, 'options.users[]');
    for (const id of options.admins ?? []) assertUserId(id, 'options.admins[]');
    const admins = new Set(options.admins ?? [adminUserId]);
    const users = new Map<number, UserState>();
    users.set(adminUserId, { name: options.userName ?? 'Admin', lastName: `User${adminUserId}`, admin: admins.has(adminUserId) });
    for (const id of [...(options.users ?? []), ...admins]) {
      if (!users.has(id)) users.set(id, { name: `User${id}`, lastName: `Member${id}`, admin: admins.has(id) });
    }
    const state: PortalState = {
      memberId,
      domain,
      status: options.status ?? 'L',
      scope: options.scope ?? 'crm,user_brief',
      adminUserId,
      applicationToken: options.applicationToken ?? randomHex(16),
      installed: true,
      appVersion: options.appVersion ?? 1,
      users,
    };
    if (options.applicationToken === undefined) announceSecret('application_token', state.applicationToken);
    const view = portalView(state, this.config.url);
    this.#portals.set(memberId, { state, view });
    this.#byDomain.set(domain, memberId);
    this.#oldDomains.delete(domain);
    return view;
  }

  /** The portal's state; a TypeError naming `memberId` when there is none. */
  state(memberId: string): PortalState {
    const entry = this.#portals.get(memberId);
    if (entry === undefined) throw new TypeError(`memberId: no portal with this member_id in the stand-in`);
    return entry.state;
  }

  find(memberId: string): PortalState | undefined {
    return this.#portals.get(memberId)?.state;
  }

  view(memberId: string): FakePortal | undefined {
    return this.#portals.get(memberId)?.view;
  }

  byDomain(domain: string): string | undefined {
    return this.#byDomain.get(domain);
  }

  /** The `member_id` of the portal that used to live at `domain`, when it was renamed since. */
  movedFrom(domain: string): string | undefined {
    return this.#oldDomains.get(domain);
  }

  rename(memberId: string, newDomain: string): void {
    const state = this.state(memberId);
    const domain = normaliseDomain(newDomain, 'newDomain');
    if (this.#byDomain.has(domain)) throw new TypeError(`newDomain: a portal with this domain already exists`);
    this.#byDomain.delete(state.domain);
    this.#oldDomains.set(state.domain, memberId);
    this.#oldDomains.delete(domain);
    state.domain = domain;
    this.#byDomain.set(domain, memberId);
  }

  clientEndpoint(state: PortalState): string {
    return `${this.config.url}/portals/${state.domain}/rest/`;
  }

  /** The user, created as an ordinary user of the portal on first sight. */
  user(state: PortalState, userId: number): UserState {
    let user = state.users.get(userId);
    if (user === undefined) {
      user = { name: `User${userId}`, lastName: `Member${userId}`, admin: false };
      state.users.set(userId, user);
    }
    return user;
  }

  setUser(memberId: string, userId: number, options: FakeUserOptions): void {
    assertUserId(userId, 'userId');
    const user = this.user(this.state(memberId), userId);
    if (options.admin !== undefined) user.admin = options.admin;
    if (options.name !== undefined) user.name = options.name;
    if (options.lastName !== undefined) user.lastName = options.lastName;
  }

  // --- tokens

  mint(state: PortalState, userId: number): FakeChain {
    this.user(state, userId);
    const accessToken = randomHex(35);
    const refreshToken = randomHex(35);
    announceSecret('access_token', accessToken);
    announceSecret('refresh_token', refreshToken);
    const { accessTtlSec } = this.config;
    const expires = this.nowSec() + accessTtlSec;
    this.#access.set(accessToken, { memberId: state.memberId, userId, expiresMs: expires * 1000, dead: false, forcedExpired: false });
    this.#refresh.set(refreshToken, { memberId: state.memberId, userId, accessToken, spent: false, revokedWith: null });
    return { accessToken, refreshToken, expires, expiresIn: accessTtlSec, memberId: state.memberId, userId };
  }

  access(token: string): AccessRecord | undefined {
    return this.#access.get(token);
  }

  refresh(token: string): RefreshRecord | undefined {
    return this.#refresh.get(token);
  }

  /** Spends a refresh token: it and the access token issued with it are dead from now on. */
  spend(record: RefreshRecord): void {
    record.spent = true;
    const previous = this.#access.get(record.accessToken);
    if (previous !== undefined) previous.dead = true;
  }

  killChains(memberId: string, error: string): void {
    for (const record of this.#access.values()) if (record.memberId === memberId) record.dead = true;
    for (const record of this.#refresh.values()) if (record.memberId === memberId && record.revokedWith === null) record.revokedWith = error;
  }

  /** Forces access tokens to expire: of one portal (and user) or of all. */
  expire(memberId: string | undefined, userId: number | undefined): void {
    for (const record of this.#access.values()) {
      if (memberId !== undefined && record.memberId !== memberId) continue;
      if (userId !== undefined && record.userId !== userId) continue;
      record.forcedExpired = true;
    }
  }

  judgeAccess(record: AccessRecord): AccessVerdict {
    if (this.find(record.memberId)?.installed !== true) return 'not_installed';
    if (record.dead) return 'dead';
    if (record.forcedExpired || this.config.now() >= record.expiresMs) return 'expired';
    return 'ok';
  }

  tokenStatus(token: string): FakeTokenStatus {
    const access = this.#access.get(token);
    if (access !== undefined) {
      const verdict = this.judgeAccess(access);
      return verdict === 'ok' ? 'live' : verdict === 'expired' ? 'expired' : 'dead';
    }
    const refresh = this.#refresh.get(token);
    if (refresh === undefined) return 'unknown';
    if (refresh.spent) return 'spent';
    return refresh.revokedWith !== null || this.find(refresh.memberId)?.installed !== true ? 'dead' : 'live';
  }

  // --- authorization codes

  addCode(state: PortalState, userId: number): string {
    this.user(state, userId);
    const code = randomHex(35);
    announceSecret('authorization_code', code);
    this.#codes.set(code, {
      memberId: state.memberId,
      userId,
      clientId: this.config.clientId,
      expiresMs: this.config.now() + this.config.codeTtlSec * 1000,
      used: false,
    });
    return code;
  }

  code(code: string): CodeRecord | undefined {
    return this.#codes.get(code);
  }
}
