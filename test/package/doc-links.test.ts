// The README is read on the npm page, where a relative link leads nowhere: every link in it is
// absolute, and those into this repository or onto the documentation site name a file (and a
// heading) that exists. The guides in docs/ link each other relatively (GitHub and TypeDoc both
// resolve that) and must hit a guide and a heading that exist. Commands that need a clone stay
// in the README's Contributing section, and the SDK range is the one package.json declares.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  repository: { url: string };
  peerDependencies: Record<string, string>;
};
const REPO = pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '');
const SITE = 'https://b24-portal-tokens.github.io/b24-portal-tokens/';
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const guides = readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md'));

/** The text outside fenced code blocks (a link-like string in code is code). */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** Every link target: `[text](target)` and `<https://...>`. */
function linksIn(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
  const auto = [...text.matchAll(/<(https?:\/\/[^>\s]+)>/g)].map((m) => m[1]!);
  return [...inline, ...auto];
}

/** GitHub's anchors for a markdown file's headings (repeats get -1, -2, ...). */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6} +(.+)$/gm)) {
    const slug = heading!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Why a repository path (with an optional #anchor) does not resolve, or undefined when it does. */
function unresolved(path: string, anchor: string | undefined): string | undefined {
  const file = join(root, path);
  if (relative(root, normalize(file)).startsWith('..')) return 'leaves the repository';
  if (!existsSync(file)) return 'no such file';
  if (anchor !== undefined && anchor !== '' && !anchorsOf(readFileSync(file, 'utf8')).has(anchor)) return `no heading #${anchor}`;
  return undefined;
}

/** For a link into this repository on GitHub, why it does not resolve; undefined otherwise. */
function intoRepository(link: string): string | undefined {
  if (!link.startsWith(`${REPO}/`)) return undefined;
  const rest = link.slice(REPO.length + 1);
  if (rest === 'issues' || rest.startsWith('issues/')) return undefined;
  const match = /^(?:blob|tree)\/main\/([^#]+)(?:#(.*))?$/.exec(rest);
  return match === null ? 'not a blob/tree link on main' : unresolved(match[1]!, match[2]);
}

describe('README.md (the npm page)', () => {
  const readme = read('README.md');
  const links = linksIn(readme);

  it('has links, and every one is absolute https', () => {
    expect(links.length).toBeGreaterThan(20);
    expect(links.filter((link) => !link.startsWith('https://'))).toEqual([]);
  });

  it('links into the repository name files and headings that exist', () => {
    const broken: string[] = [];
    for (const link of links) {
      const why = intoRepository(link);
      if (why !== undefined) broken.push(`${link}: ${why}`);
    }
    expect(broken).toEqual([]);
  });

  it('links to the documentation site point at its front page', () => {
    // Page names on the site are TypeDoc's; only the front page is a stable address.
    expect(links.filter((l) => l.startsWith('https://b24-portal-tokens.github.io/') && l !== SITE)).toEqual([]);
    expect(links).toContain(SITE);
  });

  it('keeps commands that need a clone in the Contributing section', () => {
    const contributing = readme.indexOf('\n## Contributing');
    expect(contributing).toBeGreaterThan(0);
    const before = readme.slice(0, contributing) + readme.slice(readme.indexOf('\n## ', contributing + 1));
    expect(before).not.toMatch(/npm (ci|test|run)\b|tsx examples\//);
    expect(readme.slice(contributing)).toContain('npm ci && npm run demo');
    expect(readme.slice(contributing)).toContain('npm ci && npm test');
    expect(readme).toContain('npm install b24-portal-tokens @bitrix24/b24jssdk');
  });

  it("states the SDK range package.json declares", () => {
    expect(readme).toContain(`\`${pkg.peerDependencies['@bitrix24/b24jssdk']}\``);
  });
});

describe('the guides in docs/', () => {
  it.each(guides)('%s: relative links reach a guide and a heading; others are absolute', (name) => {
    const markdown = read(`docs/${name}`);
    const broken: string[] = [];
    for (const link of linksIn(markdown)) {
      if (/^https?:\/\//.test(link)) {
        const why = !link.startsWith('https://') ? 'not https' : intoRepository(link);
        if (why !== undefined) broken.push(`${link}: ${why}`);
        continue;
      }
      const [path = '', anchor] = link.split('#');
      if (path !== '' && !/^(\.\/)?[a-z0-9-]+\.md$/.test(path)) {
        broken.push(`${link}: a relative link must name a guide in docs/ (link other files by absolute URL)`);
        continue;
      }
      const why = unresolved(path === '' ? `docs/${name}` : join('docs', path), anchor);
      if (why !== undefined) broken.push(`${link}: ${why}`);
    }
    for (const [, target] of markdown.matchAll(/\{@includeCode +([^}#\s]+)/g)) {
      if (!existsSync(join(root, 'docs', dirname(target!), target!.split('/').pop()!))) broken.push(`{@includeCode ${target}}: no such file`);
    }
    expect(broken).toEqual([]);
  });

  it('typedoc.json lists existing guides in reading order (its plugin publishes unlisted ones after them)', () => {
    const config = JSON.parse(read('typedoc.json')) as { projectDocuments: string[] };
    expect(config.projectDocuments.filter((path) => !existsSync(join(root, path)))).toEqual([]);
    expect(config.projectDocuments.length).toBeGreaterThanOrEqual(15);
    expect(read('typedoc-categories.config.js')).toContain("setValue('projectDocuments'");
  });
});

describe('source comments that cite the protocol notes', () => {
  /** Every `.ts` file under src/. */
  function sources(dir: string): string[] {
    return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
    );
  }
  const files = sources('src').map((path) => ({ path, text: read(path) }));
  const headings = new Set([...prose(read('docs/protocol.md')).matchAll(/^#{2,3} +(.+)$/gm)].map((m) => m[1]!.trim()));

  it('cite docs/protocol.md, never a PROTOCOL.md the repository does not hold', () => {
    expect(files.filter(({ text }) => /PROTOCOL\.md|PROTOCOL section/.test(text)).map(({ path }) => path)).toEqual([]);
  });

  it('name a section docs/protocol.md has', () => {
    const cited = files.flatMap(({ path, text }) =>
      [...text.replace(/\n\s*(\/\/|\*) ?/g, ' ').matchAll(/docs\/protocol\.md, "([^"]+)"/g)].map((m) => ({ path, section: m[1]! })),
    );
    expect(cited.length).toBeGreaterThanOrEqual(10);
    expect(cited.filter(({ section }) => !headings.has(section))).toEqual([]);
  });
});
