// Vitest global setup: the package tests import the built `dist/` (the README example resolves
// 'b24-portal-tokens' to it), so build it with tsup once, before any test file runs, when it is
// missing or older than the sources. A fresh clone's `npx vitest run` then works, and a run right
// after a build does not build again. SKIP_DIST_BUILD=1 skips the check (for runs that need no dist).
// Then it bundles the scripts the tests run as child processes (test/support/children.ts says why).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { TestProject } from 'vitest/node';
import './support/provided.js'; // the type of `childrenDir` (types only)

const root = fileURLToPath(new URL('..', import.meta.url));

/** Outputs that only a complete build leaves (declarations come last, in their own pass). */
const OUTPUTS = ['cli.js', 'index.js', 'index.cjs', 'index.d.ts', 'index.d.cts', 'testing/index.js', 'testing/index.d.cts'];

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

export default async function setup(project: TestProject): Promise<void> {
  // In watch mode the sources change under the run: the children load them through tsx each time.
  project.provide('childrenDir', project.config.watch ? '' : await bundleChildren());
  buildDist();
}

function buildDist(): void {
  if (process.env['SKIP_DIST_BUILD'] === '1') return;
  const reason = staleReason();
  if (reason === null) return;
  process.stdout.write(`global setup: ${reason}; building it with tsup\n`);
  try {
    execFileSync(join(root, 'node_modules', '.bin', 'tsup'), ['--silent'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch {
    // Not fatal: the tests that need dist/ fail on their own (test/package says so first), the rest run.
    process.stderr.write('global setup: WARNING: building dist/ with tsup failed (output above); tests of the built package will fail\n');
  }
}
