// Fails when the root entry's export list and its committed snapshot disagree, or when a name added
// to the root since the last release has no line in CHANGELOG.md's [Unreleased] section.
//
//   tsx scripts/check-exports.ts [--dir DIR] [--base GIT_REF]
//
// The names come from `src/index.ts`, which must list them (no `export *`). The snapshot,
// `api/root-exports.txt`, holds one name a line: the released names first, then, under the line
// `## Unreleased`, the names added since the last release (each must be named in the CHANGELOG's
// [Unreleased] section; on release, move them up). With `--base REF`, a name in the snapshot but
// not in REF's snapshot counts as added, and a name in REF's snapshot but no longer in the root
// counts as removed: both must be named in the CHANGELOG's [Unreleased] section.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const SNAPSHOT = 'api/root-exports.txt';
const UNRELEASED_HEADER = '## Unreleased';

/** The names `export { ... }` / `export type { ... }` statements in `source` export; refuses `export *`. */
export function exportedNames(source: string): { names: string[]; problems: string[] } {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const problems: string[] = [];
  if (/\bexport\s+(type\s+)?\*/.test(code)) problems.push('src/index.ts uses `export *`: list every name');
  if (/\bexport\s+(default|const|let|var|function|class|interface|type\s+\w+\s*=|enum)\b/.test(code)) {
    problems.push('src/index.ts declares something itself: re-export it by name from its module');
  }
  const names: string[] = [];
  for (const match of code.matchAll(/\bexport\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of (match[1] ?? '').split(',')) {
      const spec = part.trim().replace(/^type\s+/, '');
      if (spec === '') continue;
      const alias = spec.split(/\s+as\s+/);
      names.push((alias[1] ?? alias[0] ?? '').trim());
    }
  }
  return { names, problems };
}

/** The snapshot's released names and the names under `## Unreleased`. */
export function parseSnapshot(text: string): { released: string[]; unreleased: string[] } {
  const released: string[] = [];
  const unreleased: string[] = [];
  let target = released;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === UNRELEASED_HEADER) target = unreleased;
    else if (line !== '' && !line.startsWith('#')) target.push(line);
  }
  return { released, unreleased };
}

/** The text of CHANGELOG.md's `## [Unreleased]` section (empty when there is none). */
export function unreleasedSection(changelog: string): string {
  const start = changelog.search(/^## \[Unreleased\]/m);
  if (start < 0) return '';
  const rest = changelog.slice(start + 1);
  const next = rest.search(/^## \[/m);
  return next < 0 ? rest : rest.slice(0, next);
}

function mentions(section: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/\$/g, '\\$')}([^A-Za-z0-9_$]|$)`, 'm').test(section);
}

/** Every problem found in `dir`; an empty list means the check passes. */
export function checkExports(dir: string, base: string | undefined): string[] {
  const { names, problems } = exportedNames(readFileSync(join(dir, 'src/index.ts'), 'utf8'));
  const { released, unreleased } = parseSnapshot(readFileSync(join(dir, SNAPSHOT), 'utf8'));
  const section = unreleasedSection(readFileSync(join(dir, 'CHANGELOG.md'), 'utf8'));
  const exported = new Set(names);
  const snapshot = new Set([...released, ...unreleased]);

  for (const name of names) {
    if (!snapshot.has(name)) {
      problems.push(`${name} is exported from the root but not in ${SNAPSHOT}: add it under "${UNRELEASED_HEADER}" and name it in CHANGELOG.md [Unreleased]`);
    }
  }
  for (const name of snapshot) {
    if (!exported.has(name)) problems.push(`${name} is in ${SNAPSHOT} but no longer exported from the root: remove the line and name it in CHANGELOG.md [Unreleased] (Removed)`);
  }
  const added = new Set(unreleased);
  const removed = new Set<string>();
  if (base !== undefined) {
    const before = parseSnapshot(execFileSync('git', ['show', `${base}:${SNAPSHOT}`], { cwd: dir, encoding: 'utf8' }));
    const old = new Set([...before.released, ...before.unreleased]);
    for (const name of snapshot) if (!old.has(name)) added.add(name);
    for (const name of old) if (!snapshot.has(name)) removed.add(name);
  }
  for (const name of added) {
    if (!mentions(section, name)) problems.push(`${name} was added to the root export but CHANGELOG.md [Unreleased] does not name it`);
  }
  for (const name of removed) {
    if (!mentions(section, name)) problems.push(`${name} was removed from the root export but CHANGELOG.md [Unreleased] does not name it`);
  }
  return problems;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { dir: { type: 'string' }, base: { type: 'string' } } });
  const dir = values.dir ?? fileURLToPath(new URL('..', import.meta.url));
  const problems = checkExports(dir, values.base);
  if (problems.length > 0) {
    for (const problem of problems) console.error(`check-exports: ${problem}`);
    process.exit(1);
  }
  console.log(`check-exports: the root exports match ${SNAPSHOT}`);
}
