// The baseline: the b24jssdk install recipe's pattern, reimplemented. One JSON file holds every
// portal; clientForMember reads it on every call and builds a new B24OAuth whose refresh callback
// writes the whole file back; the install handler rewrites the whole file. No verification.

import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { B24OAuth, type RestrictionParams } from '@bitrix24/b24jssdk';

interface StoredPortal {
  accessToken: string;
  refreshToken: string;
  expires: number;
  domain: string;
  clientEndpoint: string;
  serverEndpoint: string;
  memberId: string;
  applicationToken: string;
  userId: number;
  scope: string;
  status: string;
}

export class RecipeJsonStore {
  constructor(readonly path: string) {}

  async readAll(): Promise<Record<string, StoredPortal>> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Record<string, StoredPortal>;
    } catch {
      return {};
    }
  }

  async writeAll(all: Record<string, StoredPortal>): Promise<void> {
    await writeFile(this.path, JSON.stringify(all, null, 2));
  }

  /** Writes `count` made-up portals at once (the baseline's own seeding; not what is measured). */
  async seed(count: number): Promise<void> {
    const all = await this.readAll();
    for (let i = 0; i < count; i++) {
      const memberId = `r${i.toString(16).padStart(31, '0')}`;
      all[memberId] = {
        accessToken: `a${i}`.padEnd(48, '0'),
        refreshToken: `r${i}`.padEnd(48, '0'),
        expires: Math.floor(Date.now() / 1000) + 86_400,
        domain: `recipe${i}.bitrix24.test`,
        clientEndpoint: `https://recipe${i}.bitrix24.test/rest/`,
        serverEndpoint: 'https://oauth.bitrix.info/rest/',
        memberId,
        applicationToken: `t${i}`.padEnd(32, '0'),
        userId: 1,
        scope: 'crm,user_brief',
        status: 'L',
      };
    }
    await this.writeAll(all);
  }

  /** The recipe's clientForMember. */
  async clientForMember(
    memberId: string,
    credentials: { clientId: string; clientSecret: string },
    restrictionParams?: Partial<RestrictionParams>,
  ): Promise<B24OAuth> {
    const portal = (await this.readAll())[memberId];
    if (portal === undefined) throw new Error(`portal ${memberId} not installed`);
    const client = new B24OAuth(
      {
        applicationToken: portal.applicationToken,
        userId: portal.userId,
        memberId,
        accessToken: portal.accessToken,
        refreshToken: portal.refreshToken,
        expires: portal.expires,
        expiresIn: 3600,
        scope: portal.scope,
        domain: portal.domain,
        clientEndpoint: portal.clientEndpoint,
        serverEndpoint: portal.serverEndpoint,
        status: 'L',
      },
      credentials,
      restrictionParams === undefined ? undefined : { restrictionParams },
    );
    client.setCallbackRefreshAuth(async ({ b24OAuthParams: p }) => {
      const all = await this.readAll();
      const current = all[memberId];
      if (current === undefined) return;
      all[memberId] = { ...current, accessToken: p.accessToken, refreshToken: p.refreshToken, expires: p.expires };
      await this.writeAll(all);
    });
    return client;
  }

  /** The recipe's install route (form body with PHP bracket keys), mounted on a loopback server. */
  async listen(): Promise<{ server: Server; url: string }> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        void (async () => {
          const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
          const auth = (name: string) => form.get(`auth[${name}]`) ?? '';
          const memberId = auth('member_id');
          const all = await this.readAll();
          all[memberId] = {
            accessToken: auth('access_token'),
            refreshToken: auth('refresh_token'),
            expires: Number(auth('expires')),
            domain: auth('domain'),
            clientEndpoint: auth('client_endpoint'),
            serverEndpoint: auth('server_endpoint'),
            memberId,
            applicationToken: auth('application_token'),
            userId: Number(auth('user_id')),
            scope: auth('scope'),
            status: auth('status'),
          };
          await this.writeAll(all);
          res.writeHead(200).end('ok');
        })().catch(() => res.writeHead(500).end());
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return { server, url: `http://127.0.0.1:${address.port}/install` };
  }
}
