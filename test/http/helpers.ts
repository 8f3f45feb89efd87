// Shared set-up for handler, adapter and authorization-flow tests: a stand-in Bitrix24, a real pool over
// a real store, the handler on a real loopback server, and a ledger of every token value minted so a
// test can prove none reached a response or a log line.

import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock } from '../../src/clock.js';
import type { PortalTokensContext } from '../../src/context.js';
import type { Logger } from '../../src/logger.js';
import { PortalClientPool } from '../../src/pool/pool.js';
import { MemoryTokenStore } from '../../src/store/memory/store.js';
import type { TokenStore } from '../../src/store/token-store.js';
import { FakeBitrix24, type FakeBitrix24Options } from '../../src/testing/fake-bitrix24.js';
import type { FetchLike } from '../../src/oauth/oauth-client.js';

/** A logger that keeps every line as JSON text. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (level: string) => (context: Record<string, unknown>, message?: string) => {
    lines.push(JSON.stringify({ level, message, ...context }));
  };
  return { lines, debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** Every secret a test run saw: minted tokens, application tokens, codes, the client secret. */
export class SecretLedger {
  readonly values = new Set<string>();

  add(...values: (string | null | undefined)[]): void {
    for (const value of values) if (typeof value === 'string' && value.length >= 8) this.values.add(value);
  }

  /** A fetch that records every token an OAuth host hands out, then passes the answer on untouched. */
  observingFetch(): FetchLike {
    return async (input, init) => {
      const response = await globalThis.fetch(input, init);
      const text = await response.clone().text();
      try {
        const body = JSON.parse(text) as Record<string, unknown>;
        this.add(body['access_token'] as string, body['refresh_token'] as string);
      } catch {
        // Not JSON: nothing minted.
      }
      return response;
    };
  }

  /** The secrets that occur in `text`. */
  leakedIn(text: string): string[] {
    return [...this.values].filter((value) => text.includes(value));
  }
}

/** A running stand-in, pool, handler server and the ledgers around them. */
export interface Rig {
  readonly b24: FakeBitrix24;
  readonly store: TokenStore;
  readonly pool: PortalClientPool;
  /** The pool as the handler and the flow see it, on the rig's clock. */
  readonly context: PortalTokensContext;
  readonly logger: Logger & { lines: string[] };
  readonly secrets: SecretLedger;
}

/** Starts a stand-in and a pool (over `store`, a memory store by default) wired to it. */
export async function startRig(
  options: { store?: TokenStore; standIn?: FakeBitrix24Options; now?: () => number } = {},
): Promise<Rig> {
  const b24 = await FakeBitrix24.start(options.standIn ?? {});
  const secrets = new SecretLedger();
  secrets.add(b24.clientSecret);
  const logger = recordingLogger();
  const store = options.store ?? new MemoryTokenStore();
  const pool = new PortalClientPool({
    ...b24.trust,
    store,
    clientId: b24.clientId,
    clientSecret: b24.clientSecret,
    logger,
    fetch: secrets.observingFetch(),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const clock: Clock = options.now === undefined ? systemClock : { now: options.now, sleep: (ms, signal) => systemClock.sleep(ms, signal) };
  return { b24, store, pool, context: contextOf(pool, clock), logger, secrets };
}

/** A pool's store, OAuth client, logger and notifications, with `clock`, as a {@link PortalTokensContext}. */
export function contextOf(pool: PortalClientPool, clock: Clock = systemClock): PortalTokensContext {
  return {
    store: pool.store,
    oauth: pool.oauth,
    logger: pool.logger,
    clock,
    notify: (change) => pool.notify(change),
    confirmChain: (memberId, chain) => pool.confirmChain(memberId, chain),
  };
}

/** Listens on an ephemeral loopback port; returns the base URL and a closer. */
export async function listen(server: Server): Promise<{ url: string; close: () => Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Starts a node:http server around a request listener. */
export function serve(listener: Parameters<typeof createServer>[1]): Promise<{ url: string; close: () => Promise<void> }> {
  return listen(createServer(listener));
}

/** A raw answer: status, headers and body text. */
export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/**
 * Sends a request with node:http and keeps whatever answer arrives, even when the server stops
 * reading the body and closes the connection early (413): errors after an answer are ignored.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array },
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    // A connection of its own (`agent: false`): Node's global agent keeps sockets alive, and one the
    // server closes as idle just as it is reused answers ECONNRESET, which is the client's race, not the handler's.
    const req = httpRequest(url, { method: options.method ?? 'POST', headers: options.headers ?? {}, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}

/** Posts a body with a content type (`null`: none) and returns status, JSON body and raw text. */
export async function post(
  url: string,
  body: string | Uint8Array,
  contentType: string | null = 'application/x-www-form-urlencoded',
): Promise<{ status: number; json: unknown; text: string }> {
  const answer = await rawRequest(url, {
    method: 'POST',
    headers: contentType === null ? {} : { 'content-type': contentType },
    body,
  });
  let json: unknown;
  try {
    json = answer.text === '' ? undefined : JSON.parse(answer.text);
  } catch {
    json = undefined;
  }
  return { status: answer.status, json, text: answer.text };
}

/** Encodes a decoded lifecycle payload as Bitrix24 does: form-urlencoded with PHP bracket keys. */
export function toForm(payload: Readonly<Record<string, unknown>>): string {
  const form = new URLSearchParams();
  for (const [key, value] of Object.entries(payload)) {
    if (value !== null && typeof value === 'object') {
      for (const [sub, leaf] of Object.entries(value as Record<string, unknown>)) form.append(`${key}[${sub}]`, String(leaf));
    } else {
      form.append(key, String(value));
    }
  }
  return form.toString();
}

/** A copy of a decoded payload with some `auth` fields replaced. */
export function withAuth<T extends { auth: Readonly<Record<string, string>> }>(payload: T, auth: Record<string, string>): T {
  return { ...payload, auth: { ...payload.auth, ...auth } };
}

/**
 * An ONAPPUNINSTALL body for a portal built here, without asking the stand-in (whose
 * `uninstallEvent` also uninstalls the app there): what a forger would send.
 */
export function forgedUninstall(
  portal: { memberId: string; domain: string; clientEndpoint: string },
  serverEndpoint: string,
  applicationToken: string,
): string {
  return toForm({
    event: 'ONAPPUNINSTALL',
    event_handler_id: '2',
    data: { CLEAN: '0', LANGUAGE_ID: 'en' },
    ts: String(Math.floor(Date.now() / 1000)),
    auth: {
      domain: portal.domain,
      client_endpoint: portal.clientEndpoint,
      server_endpoint: serverEndpoint,
      member_id: portal.memberId,
      application_token: applicationToken,
    },
  });
}
