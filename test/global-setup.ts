// Vitest global setup: the package and CLI tests use the built `dist/` (the README example resolves
// 'b24-portal-tokens' to it), so it builds it with tsup when it is missing or older than the sources.
// A fresh clone's `npx vitest run` then works, and a run right after a build does not build again.
// The build (JavaScript only, 2 s) runs beside the test files: the files that need
// dist/ wait for it (test/support/dist.ts), the others start at once. SKIP_DIST_BUILD=1 skips the
// check (for runs that need no dist). It also bundles the scripts the tests run as child processes
// (test/support/children.ts says why).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TestProject } from 'vitest/node';
import './support/provided.js'; // the type of `childrenDir` (types only)

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Outputs that only a complete build leaves. Declarations are not among them: the build here leaves
 * them out (B24PT_BUILD_DTS=0, tsup.config.ts), and only the declarations' own check reads them
 * (test/package/dist-imports.test.ts, after `npm run build`, as CI runs it).
 */
const OUTPUTS = ['cli.js', 'index.js', 'index.cjs', 'testing/index.js', 'testing/index.cjs'];

/** The newest modification time of the files below `path` (or of `path` itself), in ms. */
function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** Why dist must be (re)built, or `null` when it is up to date. */
export function staleReason(base: string = root): string | null {
  const outputs = OUTPUTS.map((file) => join(base, 'dist', file));
  if (!outputs.every((file) => existsSync(file))) return 'dist/ is missing or incomplete';
  const built = Math.min(...outputs.map((file) => statSync(file).mtimeMs));
  const inputs = [join(base, 'src'), join(base, 'tsup.config.ts'), join(base, 'package.json')].filter((p) => existsSync(p));
  return inputs.some((input) => newestMtime(input) > built) ? 'dist/ is older than the sources' : null;
}

/** The scripts the tests start as child processes: every TypeScript file below a `fixtures/` directory of a test folder. */
function childScripts(dir: string, inFixtures = false): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // test/fixtures/ holds test files for nested vitest runs, not child scripts.
    if (entry.isDirectory()) {
      if (relative(root, path) !== join('test', 'fixtures')) out.push(...childScripts(path, inFixtures || entry.name === 'fixtures'));
    } else if (inFixtures && entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !entry.name.startsWith('vitest.')) out.push(path);
  }
  return out;
}

/** Bundles the child scripts into `.tmp/children/` (packages stay imports): the directory, or '' on failure. */
async function bundleChildren(): Promise<string> {
  const outdir = join(root, '.tmp', 'children');
  rmSync(outdir, { recursive: true, force: true });
  try {
    await build({
      entryPoints: childScripts(join(root, 'test')),
      outdir,
      outbase: root,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'inline',
      logLevel: 'silent',
    });
    return outdir;
  } catch (error) {
    process.stderr.write(`global setup: bundling the child scripts failed, they run under tsx: ${String(error)}\n`);
    return '';
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // In watch mode the sources change under the run: the children load them through tsx each time.
  project.provide('childrenDir', project.config.watch ? '' : await bundleChildren());
  const build = startDistBuild();
  project.provide('distBuild', build?.statusFile ?? '');
  // The build is never left running after the run (an interrupted run, a single file that needed no dist).
  return async () => {
    if (build === undefined) return;
    await build.done;
    rmSync(build.statusFile, { force: true });
  };
}

interface DistBuild {
  /** Where the build's outcome is written when it ends (test/support/dist.ts reads it). */
  readonly statusFile: string;
  /** Settles when the build has ended and its outcome is written. */
  readonly done: Promise<void>;
}

/** Starts tsup when dist/ is stale, without waiting for it: the build and its status file, or undefined when none is needed. */
function startDistBuild(): DistBuild | undefined {
  if (process.env['SKIP_DIST_BUILD'] === '1') return undefined;
  const reason = staleReason();
  if (reason === null) return undefined;
  const statusDir = join(root, '.tmp');
  mkdirSync(statusDir, { recursive: true });
  const statusFile = join(statusDir, `dist-build-${process.pid}.json`);
  rmSync(statusFile, { force: true });
  process.stdout.write(`global setup: ${reason}; building it with tsup beside the tests that do not need it\n`);
  const done = new Promise<void>((resolve) => {
    let output = '';
    const finish = (ok: boolean, detail: string): void => {
      if (!ok) process.stderr.write(`global setup: WARNING: building dist/ with tsup failed; tests of the built package will fail\n${detail}\n`);
      writeFileSync(statusFile, JSON.stringify({ ok, output: detail }));
      resolve();
    };
    const child = spawn(join(root, 'node_modules', '.bin', 'tsup'), ['--silent'], {
      cwd: root,
      env: { ...process.env, B24PT_BUILD_DTS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => finish(false, String(error)));
    child.on('close', (code, signal) => finish(code === 0, code === 0 ? '' : `tsup exited with ${code ?? signal}:\n${output}`));
  });
  return { statusFile, done };
}
