// Vitest setup file (every test file): records every unhandled promise rejection and uncaught
// exception while the file runs, and fails the file in afterAll when there was any, naming the test
// that was running. A library that lets one escape takes a whole process (every tenant) down in
// production; vitest alone reports such errors apart from the files and can be told to ignore them.
// A rejection handled late (`rejectionHandled`) is forgiven. B24PT_CRASH_CHECK=off turns it off.

import { afterAll, beforeEach } from 'vitest';

interface Escape {
  readonly kind: 'unhandled rejection' | 'uncaught exception';
  readonly reason: unknown;
  readonly promise: Promise<unknown> | undefined;
  readonly during: string;
}

/** One line about what escaped: its class and message (and the test that was running). */
function describeEscape(escape: Escape): string {
  const { reason } = escape;
  const what =
    reason instanceof Error
      ? `${reason.name}: ${reason.message}${reason.stack === undefined ? '' : `\n      ${reason.stack.split('\n').slice(1, 4).join('\n      ')}`}`
      : `${typeof reason}: ${String(reason)}`;
  return `  - ${escape.kind} during ${escape.during}: ${what}`;
}

if (process.env['B24PT_CRASH_CHECK'] !== 'off') {
  const escapes: Escape[] = [];
  let during = 'the file (outside any test)';
  const onRejection = (reason: unknown, promise: Promise<unknown>): void => {
    escapes.push({ kind: 'unhandled rejection', reason, promise, during });
  };
  const onHandledLate = (promise: Promise<unknown>): void => {
    const at = escapes.findIndex((escape) => escape.promise === promise);
    if (at >= 0) escapes.splice(at, 1);
  };
  const onException = (error: unknown): void => {
    escapes.push({ kind: 'uncaught exception', reason: error, promise: undefined, during });
  };
  process.on('unhandledRejection', onRejection);
  process.on('rejectionHandled', onHandledLate);
  process.on('uncaughtException', onException);

  beforeEach((context) => {
    during = `"${context.task.name}"`;
  });

  afterAll(async () => {
    during = 'the file, after its last test';
    // A rejection of the last test is reported after the microtasks drain: give it one turn.
    await new Promise((resolve) => setImmediate(resolve));
    process.off('unhandledRejection', onRejection);
    process.off('rejectionHandled', onHandledLate);
    process.off('uncaughtException', onException);
    if (escapes.length > 0) {
      const lines = escapes.map(describeEscape);
      escapes.length = 0;
      throw new Error(`crash check: ${lines.length} unhandled rejection(s) or uncaught exception(s) escaped this file:\n${lines.join('\n')}`);
    }
  });
}
