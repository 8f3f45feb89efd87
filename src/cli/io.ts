// Where the tool writes: stdout for results, stderr for progress and diagnostics. A progress bar
// only when stderr is a terminal; otherwise an occasional plain line that logs can keep.

import { SingleBar, Presets } from 'cli-progress';

/** The tool's input and output, injectable for in-process tests. */
export interface CliIo {
  /** Writes to standard output. */
  out(text: string): void;
  /** Writes to standard error. */
  err(text: string): void;
  /** Resolves once standard output has room again (a pipe's reader is slower than the store). */
  readonly drain?: (() => Promise<void>) | undefined;
  /** Whether standard output is a terminal. */
  readonly isTTY: boolean;
  /** Asks a yes/no question on the terminal; `undefined` when there is no terminal to ask on. */
  readonly confirm?: ((question: string) => Promise<boolean>) | undefined;
  /** The environment (keys, credentials). */
  readonly env: NodeJS.ProcessEnv;
  /** Where a terminal progress bar is drawn. @defaultValue `process.stderr` */
  readonly progressStream?: NodeJS.WritableStream | undefined;
  /** The package version `--version` prints (the executable reads it from package.json). */
  readonly version?: string | undefined;
}

/** Progress of a long command. */
export interface Progress {
  /** Sets the total, when it becomes known. */
  total(total: number): void;
  /** Advances by `by`. */
  tick(by?: number): void;
  /** Ends the bar (or prints the last line). */
  stop(): void;
}

/** A progress bar on a terminal; elsewhere one line per `lineEvery` items on stderr. */
export function progress(io: CliIo, label: string, lineEvery = 1000): Progress {
  let done = 0;
  let total = 0;
  if (io.isTTY) {
    // Drawn only once there is something to count: a bar started at 0/0 reads "100%" before any work.
    let bar: SingleBar | undefined;
    const show = (): void => {
      if (bar !== undefined || total === 0) return;
      bar = new SingleBar(
        { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}`, hideCursor: true, stream: io.progressStream ?? process.stderr },
        Presets.shades_classic,
      );
      bar.start(total, done);
    };
    return {
      total: (t) => {
        total = t;
        if (bar === undefined) show();
        else bar.setTotal(t);
      },
      tick: (by = 1) => {
        done += by;
        if (done > total) {
          total = done;
          bar?.setTotal(total);
        }
        show();
        bar?.update(done);
      },
      stop: () => bar?.stop(),
    };
  }
  return {
    total: (t) => {
      total = t;
    },
    tick: (by = 1) => {
      const before = Math.floor(done / lineEvery);
      done += by;
      if (Math.floor(done / lineEvery) > before) io.err(`${label}: ${done}${total > 0 ? `/${total}` : ''}\n`);
    },
    stop: () => {},
  };
}

/** Pads cells into aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}
