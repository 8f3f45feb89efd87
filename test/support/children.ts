// The test files' child processes (workers of the cross-process tests, the conformance suite's store
// children) run plain JavaScript that the global setup bundled from their TypeScript with esbuild
// (test/global-setup.ts, `.tmp/children/`): a child then starts in about a third of the CPU time it
// takes under tsx, and the suite starts a few hundred of them. Where no bundle was made (vitest in
// watch mode, where sources change under it, or a failed bundle) they run under tsx as before.
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import './provided.js'; // the type of `childrenDir`

const root = fileURLToPath(new URL('../..', import.meta.url));

function asPath(script: string | URL): string {
  return typeof script === 'string' ? script : fileURLToPath(script);
}

/** The bundled form of a child script when this run has one. */
function bundled(script: string): string | undefined {
  let dir = '';
  try {
    dir = inject('childrenDir') ?? '';
  } catch {
    return undefined; // not inside a vitest worker
  }
  if (dir === '') return undefined;
  const out = join(dir, relative(root, script)).replace(/\.ts$/, '.mjs');
  return existsSync(out) ? out : undefined;
}

/** The node arguments that run a child script: its bundle, or the TypeScript under tsx. */
export function nodeArgs(script: string | URL): string[] {
  const path = asPath(script);
  const out = bundled(path);
  return out === undefined ? ['--import', 'tsx', path] : [out];
}

/** The `module` (and `execArgv`) of a conformance suite's `crossProcess` option for an opener script. */
export function childModule(script: string | URL): { module: string; execArgv?: readonly string[] } {
  const path = asPath(script);
  const out = bundled(path);
  return out === undefined ? { module: path } : { module: out, execArgv: [] };
}
