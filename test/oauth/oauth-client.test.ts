// OAuthClient against a scripted OAuth host on loopback: how each kind of answer is classified,
// that redirects are not followed, that secrets travel only in the body, and that incomplete
// token answers are completed (expires computed, a missing refresh_token left for the caller).
// (The pool's handling of such an answer is in test/pool/oauth-pool.test.ts.)
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OAuthInvalidResponseError, OAuthRejectedError, OAuthUnavailableError } from '../../src/errors.js';
import { OAuthClient } from '../../src/oauth/oauth-client.js';
import { oauthBaseFromServerEndpoint } from '../../src/protocol/oauth-hosts.js';

interface Seen {
  method: string;
  url: string;
  body: string;
}

let server: Server;
let base: string;
let seen: Seen[] = [];
let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  seen = [];
});

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  answer = (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
}

const SECRET = 'client-secret-value-0123456789';
const client = () => new OAuthClient({ clientId: 'local.app', clientSecret: SECRET, timeoutMs: 500, now: () => 1_700_000_000_000 });

describe('OAuthClient', () => {
  it('POSTs a form to <base>/oauth/token/ with the secret in the body, never in the URL', async () => {
    json(200, { access_token: 'a1', refresh_token: 'r1', expires: 1_700_003_600, expires_in: 3600, member_id: 'm1' });
    const tokens = await client().refresh(base, 'old-refresh');
    expect(tokens).toMatchObject({ accessToken: 'a1', refreshToken: 'r1', expires: 1_700_003_600, memberId: 'm1' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe('POST');
    expect(seen[0]!.url).toBe('/oauth/token/');
    expect(new URLSearchParams(seen[0]!.body).get('client_secret')).toBe(SECRET);
    expect(new URLSearchParams(seen[0]!.body).get('grant_type')).toBe('refresh_token');
  });

  it('computes expires from expires_in when the answer lacks it, and leaves a missing refresh_token undefined', async () => {
    json(200, { access_token: 'a1', expires_in: '1800' });
    const tokens = await client().refresh(base, 'old');
    expect(tokens.expires).toBe(1_700_000_000 + 1800);
    expect(tokens.refreshToken).toBeUndefined();
  });

  it.each([
    ['invalid_grant', 400, true],
    ['wrong_client', 401, false],
    ['NOT_INSTALLED', 401, true],
    ['PAYMENT_REQUIRED', 402, false],
    ['invalid_request', 400, false],
    ['invalid_scope', 400, false],
  ])('classifies error %s (HTTP %i) as rejected, terminal=%s', async (error, status, terminal) => {
    json(status, { error, error_description: 'nope' });
    const failure = await client().refresh(base, 'old').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(OAuthRejectedError);
    expect(failure).toMatchObject({ oauthError: error, status, terminal });
  });

  it.each([500, 502, 503, 429])('treats HTTP %i as transient, whatever the body says', async (status) => {
    json(status, { error: 'invalid_grant' });
    await expect(client().refresh(base, 'old')).rejects.toBeInstanceOf(OAuthUnavailableError);
  });

  it('does not follow a redirect (the secret would go somewhere not chosen)', async () => {
    answer = (req, res) => {
      if (req.url === '/elsewhere') {
        res.end('{}');
        return;
      }
      res.writeHead(302, { location: `${base}/elsewhere` });
      res.end();
    };
    await expect(client().refresh(base, 'old')).rejects.toBeInstanceOf(OAuthInvalidResponseError);
    expect(seen.map((s) => s.url)).toEqual(['/oauth/token/']);
  });

  it('reports a host that does not answer in time as transient', async () => {
    answer = () => undefined; // never answers
    const failure = await client().refresh(base, 'old').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(OAuthUnavailableError);
    expect((failure as OAuthUnavailableError).status).toBe(0);
  });

  it('refuses 2xx answers that are not token answers, and oversized ones', async () => {
    json(200, { result: 'no token here' });
    await expect(client().refresh(base, 'old')).rejects.toBeInstanceOf(OAuthInvalidResponseError);
    answer = (_req, res) => res.end('not json');
    await expect(client().refresh(base, 'old')).rejects.toBeInstanceOf(OAuthInvalidResponseError);
    answer = (_req, res) => res.end(JSON.stringify({ access_token: 'x'.repeat(300 * 1024) }));
    const oversized = await client().refresh(base, 'old').catch((e: unknown) => e);
    expect(oversized).toBeInstanceOf(OAuthInvalidResponseError);
    // Regression: the size error used to be swallowed and reported as "not a JSON object".
    expect((oversized as Error).message).toBe('OAuth answer exceeds 262144 bytes');
  });

  it('keeps server-supplied error strings out of messages unless they look like error codes', async () => {
    json(400, { error: 'token abc123 is <script>' });
    const failure = (await client().refresh(base, 'old').catch((e: unknown) => e)) as OAuthRejectedError;
    expect(failure.oauthError).toBe('unknown_error');
    expect(failure.message).not.toContain('abc123');
  });

  it('derives the token endpoint base from a server_endpoint', () => {
    expect(oauthBaseFromServerEndpoint('https://oauth.bitrix.info/rest/')).toBe('https://oauth.bitrix.info');
    expect(oauthBaseFromServerEndpoint('http://127.0.0.1:8080/prefix/rest')).toBe('http://127.0.0.1:8080/prefix');
    expect(() => oauthBaseFromServerEndpoint('ftp://x/rest/')).toThrow(TypeError);
  });
});
