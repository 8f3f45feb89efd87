// A local TypeDoc plugin: puts every exported declaration without an explicit `@category` tag into
// a category by the source folder it is declared in, so the API reference reads by topic (pool,
// stores, lifecycle, events, errors, testing, operations) without tagging each declaration; and
// names each guide of docs/ (a project document) by its first heading and publishes every guide.
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Application, Comment, CommentTag, Converter, ReflectionKind } from 'typedoc';

/** Source path prefixes (relative to the package) and their category; the first match wins. */
const RULES = [
  ['src/errors', 'Errors'], // src/errors.ts and the modules in src/errors/
  ['src/store/', 'Stores'],
  ['src/testing/', 'Testing'],
  ['src/otel/', 'Operations'],
  ['src/cli/', 'Operations'],
  ['src/pool-events.ts', 'Events'],
  ['src/events/rest.ts', 'Events'],
  ['src/http/events.ts', 'Events'],
  ['src/http/event-auth.ts', 'Events'],
  ['src/pool/', 'Pool'],
  ['src/coordinator/', 'Pool'],
  ['src/sdk/', 'Pool'],
  ['src/budget/', 'Pool'],
  ['src/clock.ts', 'Pool'],
  ['src/logger.ts', 'Pool'],
  ['src/context.ts', 'Pool'],
  ['src/spool/', 'Lifecycle'],
  ['src/events/', 'Lifecycle'],
  ['src/http/', 'Lifecycle'],
  ['src/oauth/', 'Lifecycle'],
  ['src/protocol/', 'Lifecycle'],
  ['src/body.ts', 'Lifecycle'],
  ['src/plain.ts', 'Lifecycle'],
];

const TOP_LEVEL = ReflectionKind.Class | ReflectionKind.Interface | ReflectionKind.Function | ReflectionKind.Variable | ReflectionKind.TypeAlias | ReflectionKind.Enum;

function hasCategory(comment) {
  return comment?.blockTags.some((tag) => tag.tag === '@category') ?? false;
}

/**
 * A guide's title: its first `# ` heading (the guides in docs/ carry no front matter, so that they
 * read the same on GitHub), else the name TypeDoc gave it.
 */
function titleOf(document) {
  const text = document.content.map((part) => part.text).join('');
  return /^# +(.+)$/m.exec(text)?.[1]?.trim() ?? document.name;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  // typedoc.json lists the guides in reading order; a guide added to docs/ without a line there is
  // published too, after them, so no guide is ever left off the site.
  app.on(Application.EVENT_BOOTSTRAP_END, () => {
    const listed = app.options.getValue('projectDocuments'); // absolute paths by now
    const known = new Set(listed.map((path) => resolve(path)));
    const present = readdirSync('docs').filter((name) => name.endsWith('.md')).sort().map((name) => resolve('docs', name));
    const missing = present.filter((path) => !known.has(path));
    if (missing.length > 0) app.options.setValue('projectDocuments', [...listed, ...missing]);
  });
  app.converter.on(Converter.EVENT_CREATE_DOCUMENT, (_context, document) => {
    if (document.frontmatter.title === undefined) document.name = titleOf(document);
  });
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project;
    for (const reflection of project.getReflectionsByKind(TOP_LEVEL)) {
      if (!reflection.parent?.kindOf(ReflectionKind.Module | ReflectionKind.Project)) continue;
      const signatures = reflection.signatures ?? [];
      if (hasCategory(reflection.comment) || signatures.some((s) => hasCategory(s.comment))) continue;
      const path = project.getSymbolIdFromReflection(reflection)?.packagePath ?? '';
      const category = RULES.find(([prefix]) => path.startsWith(prefix))?.[1];
      if (category === undefined) continue;
      const tag = new CommentTag('@category', [{ kind: 'text', text: category }]);
      const target = signatures[0] ?? reflection;
      target.comment ??= new Comment();
      target.comment.blockTags.push(tag);
    }
  });
}
