// Whether the real PostgreSQL and Redis are reachable. In CI (CI=true) a missing service fails the
// tests that need it; on a developer's machine without it they skip with a printed notice.

import { createConnection } from 'node:net';

/** The services the database adapters' tests use. */
export const SERVICES = {
  postgres: { host: '127.0.0.1', port: 5432, url: 'postgres://postgres@127.0.0.1:5432/test' },
  redis: { host: '127.0.0.1', port: 6379, url: 'redis://127.0.0.1:6379' },
  // PgBouncer in transaction mode before the shared PostgreSQL (.ci/services/pgbouncer.sh).
  pgbouncer: { host: '127.0.0.1', port: 6432, url: 'postgres://postgres@127.0.0.1:6432/test' },
  // A PostgreSQL of its own with default settings, for the fleet of 30 processes (.ci/services/pg-fleet.sh).
  pgFleet: { host: '127.0.0.1', port: 5433, url: 'postgres://postgres@127.0.0.1:5433/test' },
} as const;

function reachable(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Resolves `true` when the service answers. When it does not: throws in CI, and elsewhere prints a
 * notice and resolves `false` so the caller can skip its tests (`describe.skipIf(!available)`).
 */
export async function serviceAvailable(name: keyof typeof SERVICES): Promise<boolean> {
  const { host, port } = SERVICES[name];
  if (await reachable(host, port)) return true;
  if (process.env['CI']) {
    throw new Error(`${name} is not reachable at ${host}:${port}; CI must start it (see .ci/run)`);
  }
  console.warn(`[b24-portal-tokens tests] ${name} is not reachable at ${host}:${port}: skipping its tests`);
  return false;
}
