// A PostgreSQL or Redis server of a test file's own, for the outage tests: they stop and restart
// their server, and with a private one they run in the main parallel pass instead of a serial pass
// after it (the shared servers at 5432 and 6379 are never touched).
//
// Each server is a child process of the test worker on a free loopback port, with its files in a
// fresh `/tmp/b24pt-private-*` directory. Nothing a killed run leaves behind blocks the next one:
// on Linux the server is started through `setpriv --pdeathsig`, so it is stopped when the worker
// dies however it dies; the next run picks new ports and new directories, and removes the
// directories whose owning process is gone.
//
// PostgreSQL: `initdb` runs once per machine into a template directory (with database `test`
// already created); every server copies it, which takes a fraction of a second where `initdb` takes
// seconds. The cluster runs as the `postgres` user when the tests run as root (PostgreSQL refuses
// root), with trust auth, fsync off and small shared buffers: a throwaway test server.

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = '/tmp';
const PREFIX = 'b24pt-private-';

/** A server of the test's own: stop and start it at will; `dispose` stops it and removes its files. */
export interface PrivateServer {
  /** `postgres://postgres@127.0.0.1:<port>/test` or `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Stops the server (PostgreSQL: fast shutdown; Redis: SIGTERM, nothing saved) and waits until it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and resolves once it answers (a no-op while it runs). */
  start(): Promise<void>;
  /** Stops it and removes its directory. Safe to call twice. */
  dispose(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Finding the binaries

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    if (dir !== '' && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The directory holding `initdb` and `postgres`: Debian's newest /usr/lib/postgresql/<n>/bin, else PATH. */
function postgresBinDir(): string | undefined {
  try {
    const newest = readdirSync('/usr/lib/postgresql')
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(a) - Number(b))
      .at(-1);
    if (newest !== undefined) {
      const dir = `/usr/lib/postgresql/${newest}/bin`;
      if (executable(join(dir, 'initdb')) && executable(join(dir, 'postgres'))) return dir;
    }
  } catch {
    // not a Debian layout: look on PATH
  }
  const initdb = onPath('initdb');
  const dir = initdb?.slice(0, -'/initdb'.length);
  return dir !== undefined && executable(join(dir, 'postgres')) ? dir : undefined;
}

/**
 * Whether the binaries of a private server are installed. When they are not: throws in CI (the
 * outage tests must fail there, never skip), and elsewhere prints a notice and returns `false` so the
 * caller can skip its tests (`describe.skipIf(!available)`), as test/support/services.ts does.
 */
export function privateServerAvailable(kind: 'postgres' | 'redis'): boolean {
  const found = kind === 'postgres' ? postgresBinDir() !== undefined : onPath('redis-server') !== undefined;
  if (found) return true;
  const what = kind === 'postgres' ? 'PostgreSQL server binaries (initdb, postgres)' : 'redis-server';
  if (process.env['CI']) throw new Error(`${what} not found; CI must install them (the outage tests start servers of their own)`);
  console.warn(`[b24-portal-tokens tests] ${what} not found: skipping the ${kind} outage tests`);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/** The uid/gid to run PostgreSQL as: the `postgres` user when we are root, else ourselves. */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as');
  return { uid: Number(uid), gid: Number(gid) };
}

const PDEATHSIG = process.platform === 'linux' ? onPath('setpriv') : undefined;

/** Spawns a server that is sent `signal` when this process dies (Linux, via setpriv), so none outlives a killed run. */
function spawnServer(command: string, args: string[], signal: 'INT' | 'TERM', user: { uid: number; gid: number } | undefined): ChildProcess {
  const [file, argv] = PDEATHSIG === undefined ? [command, args] : [PDEATHSIG, ['--pdeathsig', signal, '--', command, ...args]];
  return spawn(file, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
    ...(user ?? {}),
  });
}

/** A port nobody listens on right now (the OS picks it); the caller retries if it is taken before use. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Resolves once the child prints a line matching `ready`; rejects when it exits first, with its
 * last output in the message (`inUse` tells the caller the port was taken).
 */
function whenReady(child: ChildProcess, ready: RegExp, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-4000);
      if (ready.test(output)) {
        cleanup();
        resolve();
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      cleanup();
      const error = new Error(`${name} exited before it was ready (${signal ?? `code ${String(code)}`}):\n${output}`);
      reject(Object.assign(error, { inUse: /address already in use/i.test(output) }));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Keeps reading the child's output (a full pipe would block the server) and drops it. */
function drain(child: ChildProcess): void {
  child.stdout?.resume();
  child.stderr?.resume();
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (child === undefined) return;
  const gone = exited(child);
  child.kill(signal);
  await gone;
}

/** A fresh directory of our own, with our pid in it so a later run can tell it is left over. */
async function ownDir(kind: string): Promise<string> {
  await sweepLeftovers();
  const dir = await mkdtemp(join(ROOT, `${PREFIX}${kind}-`));
  await writeFile(join(dir, 'owner'), String(process.pid));
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the directories of runs whose process is gone (their servers died with them). */
async function sweepLeftovers(): Promise<void> {
  for (const name of await readdir(ROOT).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX) || name.includes('template')) continue;
    const dir = join(ROOT, name);
    const pid = Number(await readFile(join(dir, 'owner'), 'utf8').catch(() => ''));
    if (Number.isSafeInteger(pid) && pid > 0 && !alive(pid)) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Starts a server on a free port, trying another port when one is taken between the pick and the bind. */
async function onFreePort<T>(startOn: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await freePort());
    } catch (error) {
      if (!(error as { inUse?: boolean }).inUse || attempt >= 5) throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Answers whether a Redis on `port` replies PONG to PING. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('error', () => done(false));
  });
}


/**
 * Starts a server on a free port with `launch`, and gives the test its controls: `stop` with
 * `signal` (and wait), `start` on the same port, `dispose` (stop and remove `dir`).
 */
async function serve(
  name: string,
  dir: string,
  signal: NodeJS.Signals,
  urlOf: (port: number) => string,
  launch: (port: number) => Promise<ChildProcess>,
): Promise<PrivateServer> {
  let child: ChildProcess | undefined;
  let port: number;
  try {
    port = await onFreePort(async (candidate) => {
      child = await launch(candidate);
      return candidate;
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  let disposed = false;
  return {
    url: urlOf(port),
    port,
    async stop() {
      await stopChild(child, signal);
      child = undefined;
    },
    async start() {
      if (disposed) throw new Error(`this private ${name} was disposed`);
      if (child !== undefined) return;
      child = await launch(port);
    },
    async dispose() {
      disposed = true;
      await stopChild(child, signal);
      child = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts a `redis-server` of the test's own on a free loopback port, keeping nothing on disk
 * (`--save "" --appendonly no`), and resolves once it answers PING.
 */
export async function startPrivateRedis(): Promise<PrivateServer> {
  const binary = onPath('redis-server');
  if (binary === undefined) throw new Error('redis-server not found (check privateServerAvailable first)');
  const dir = await ownDir('redis');

  const launch = async (port: number): Promise<ChildProcess> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--logfile', ''];
    const started = spawnServer(binary, args, 'TERM', undefined);
    try {
      await whenReady(started, /ready to accept connections/i, 'redis-server');
    } catch (error) {
      await stopChild(started, 'SIGKILL');
      throw error;
    }
    drain(started);
    if (!(await pings(port))) {
      await stopChild(started, 'SIGKILL');
      throw new Error(`redis-server on port ${port} does not answer PING`);
    }
    return started;
  };

  return serve('Redis', dir, 'SIGTERM', (port) => `redis://127.0.0.1:${port}`, launch);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** A name for the template that changes with the PostgreSQL build (a template of another version is never used). */
async function templateName(binDir: string): Promise<string> {
  const { stdout } = await run(join(binDir, 'postgres'), ['--version']);
  const key = createHash('sha256').update(`${binDir}\n${stdout}\n${String(process.getuid?.() ?? '')}`).digest('hex').slice(0, 12);
  return join(ROOT, `${PREFIX}pg-template-${key}`);
}

/**
 * The initialised data directory every private PostgreSQL copies: built once per machine (initdb,
 * then `CREATE DATABASE test` in single-user mode), then renamed into place whole, so a reader sees
 * a complete template or none. Two runs building it at once each use their own build, and one of them
 * is kept.
 */
async function pgTemplate(binDir: string, user: { uid: number; gid: number } | undefined): Promise<string> {
  const target = await templateName(binDir);
  if (existsSync(join(target, 'complete'))) return target;
  const build = await ownDir('pg-build');
  try {
    if (user !== undefined) await chown(build, user.uid, user.gid);
    const data = join(build, 'data');
    const options = { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' }, ...(user ?? {}) };
    await run(join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-locale'], options);
    await new Promise<void>((resolve, reject) => {
      const single = spawn(join(binDir, 'postgres'), ['--single', '-D', data, '-c', 'fsync=off', 'postgres'], { stdio: ['pipe', 'ignore', 'pipe'], ...options });
      let errors = '';
      single.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')));
      single.once('error', reject);
      single.once('exit', (code) => (code === 0 && !/ERROR/.test(errors) ? resolve() : reject(new Error(`CREATE DATABASE test failed:\n${errors}`))));
      single.stdin.end('CREATE DATABASE test;\n');
    });
    await writeFile(join(build, 'complete'), '');
    await rm(join(build, 'owner'));
    await rename(build, target).catch(async (error: NodeJS.ErrnoException) => {
      // Another run put its template in place first: use that one.
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      await rm(build, { recursive: true, force: true });
    });
    return target;
  } catch (error) {
    await rm(build, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Starts a PostgreSQL cluster of the test's own on a free loopback port (trust auth, database `test`,
 * fsync off), in a fresh directory under /tmp, and resolves once it accepts connections.
 */
export async function startPrivatePostgres(): Promise<PrivateServer> {
  const binDir = postgresBinDir();
  if (binDir === undefined) throw new Error('PostgreSQL binaries not found (check privateServerAvailable first)');
  const user = postgresUser();
  const template = await pgTemplate(binDir, user);
  const dir = await ownDir('pg');
  try {
    if (user !== undefined) await chown(dir, user.uid, user.gid);
    // cp -a keeps the owner and the 0700 mode PostgreSQL insists on.
    await run('cp', ['-a', join(template, 'data'), join(dir, 'data')]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const launch = async (port: number): Promise<ChildProcess> => {
    const args = [
      '-D', join(dir, 'data'),
      '-p', String(port),
      '-k', dir,
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
      '-c', 'shared_buffers=16MB',
      '-c', 'lc_messages=C',
    ];
    // SIGINT is PostgreSQL's fast shutdown: what the server gets when this process dies.
    const started = spawnServer(join(binDir, 'postgres'), args, 'INT', user);
    try {
      await whenReady(started, /ready to accept connections/, 'postgres');
    } catch (error) {
      await stopChild(started, 'SIGKILL');
      throw error;
    }
    drain(started);
    return started;
  };

  return serve('PostgreSQL', dir, 'SIGINT', (port) => `postgres://postgres@127.0.0.1:${port}/test`, launch);
}
