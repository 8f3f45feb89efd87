// The `b24-portal-tokens` command line: commander wiring, store opening and closing, exit codes.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { TokenStore } from '../store/token-store.js';
import { CliError, describeFailure, ExitCode, scrub } from './errors.js';
import type { CliIo } from './io.js';
import { readRecipe, runImport } from './import-recipe.js';
import { credentials, runForget, runRekey, runSweepDryRun } from './maintenance.js';
import type * as Bitrix24Commands from './bitrix24.js';
import { migrateReport, runMigrate } from './migrate.js';
import { runStatus, summaryLine } from './status.js';
import { openStore, type OpenedStore, type StoreAccess } from './store-url.js';
import { StoreError } from '../errors.js';
import { credentialsIn, maskAll } from './url-mask.js';

const STORE_HELP = 'store URL: file:./tokens, sqlite:./tokens.db, postgres://user@host/db[?tablePrefix=p], redis://host:6379[?keyPrefix=p]';

function integer(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function storeOption(): Option {
  return new Option('-s, --store <url>', `${STORE_HELP} (or B24PT_STORE)`);
}

/**
 * Opens a store, checks it is ready, runs `work`, closes it. With `read` access the store creates
 * nothing; finding none of its tables (or keys) there is then a usage error (exit 2, like a `file:`
 * path that does not exist): the URL names no store.
 */
async function withStore<T>(url: string | undefined, io: CliIo, work: (store: TokenStore, opened: OpenedStore) => Promise<T>, access: StoreAccess = 'write'): Promise<T> {
  const target = url ?? io.env['B24PT_STORE'];
  if (target === undefined || target === '') throw new CliError('no store given: pass --store <url> or set B24PT_STORE', ExitCode.Usage);
  const opened = await openStore(target, io.env, access);
  try {
    try {
      await opened.ready();
    } catch (error) {
      if (error instanceof StoreError && error.reason === 'schema-missing') {
        // The store's message names what it looked for (tables and database, or keys) and the prefix to check.
        throw new CliError(`${opened.label}: ${describeFailure(error)}`, ExitCode.Usage);
      }
      if (error instanceof CliError) throw error;
      throw new CliError(`${opened.label}: ${describeFailure(error, opened.hint)}`, ExitCode.Failure);
    }
    return await work(opened.store, opened);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`${opened.label}: ${describeFailure(error, opened.hint)}`, ExitCode.Failure);
  } finally {
    await opened.store.close?.().catch(() => {});
  }
}

/**
 * The commands that call Bitrix24 (the pool, the SDK, the OAuth client), loaded when one runs: the
 * others, `--help` and `--version` never pay for importing the SDK. Only ever import bitrix24.js
 * through here (the bundle keeps a dynamically imported module in a chunk of its own).
 */
function bitrix24(): Promise<typeof Bitrix24Commands> {
  return import('./bitrix24.js');
}

/** Builds the program; each action stores its exit code in `state.code`. */
export function buildProgram(io: CliIo, state: { code: number }): Command {
  const program = new Command('b24-portal-tokens')
    .description('Inspect and maintain a b24-portal-tokens token store. Keys: B24PT_KEYS=id:base64[,id:base64] (first writes).')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s), outputError: (s, write) => write(scrub(s)) })
    .showHelpAfterError('(run with --help for usage)');
  if (io.version !== undefined) program.version(io.version, '-V, --version', 'print the version of b24-portal-tokens');

  program
    .command('status')
    .description('list every portal chain with its state, token expiry and days until an idle refresh token lapses')
    .addOption(storeOption())
    .option('--json', 'one JSON document instead of a table')
    .option('--lapse-days <days>', 'days an unused refresh token lives', integer(1), 180)
    .option('--page-size <n>', 'records read per store page', integer(1), 500)
    .option('--no-user-chains', 'list portal chains only')
    .action(async (o: { store?: string; json?: boolean; lapseDays: number; pageSize: number; userChains: boolean }) => {
      await withStore(o.store, io, async (store) => {
        const summary = await runStatus(store, io, { json: o.json === true, lapseDays: o.lapseDays, pageSize: Math.min(o.pageSize, 1000), userChains: o.userChains, now: Date.now() });
        if (o.json === true) io.err(`${summaryLine(summary)}\n`);
        if (summary.unreadable > 0) state.code = ExitCode.Failure;
      }, 'read');
    });

  program
    .command('sweep')
    .description('refresh chains idle for longer than --idle-days so their refresh tokens never lapse')
    .addOption(storeOption())
    .option('--client-id <id>', 'the app client_id (or B24PT_CLIENT_ID)')
    .option('--client-secret <secret>', 'the app client_secret (or B24PT_CLIENT_SECRET; prefer the variable)')
    .option('--oauth-host <url...>', 'OAuth hosts refreshes may go to (or B24PT_OAUTH_HOSTS, comma-separated; default Bitrix24\u2019s own)')
    .option('--idle-days <days>', 'refresh chains unchanged for longer than this', integer(0), 20)
    .option('--concurrency <n>', 'refreshes at once', integer(1), 4)
    .option('--page-size <n>', 'records read per store page', integer(1), 100)
    .option('--user-chains', 'also keep users\u2019 chains alive')
    .option('--verbose', 'log warnings of the pool on stderr')
    .option('--dry-run', 'count the chains that would be refreshed; refresh nothing (needs no credentials)')
    .action(async (o: { store?: string; clientId?: string; clientSecret?: string; oauthHost?: string[]; idleDays: number; concurrency: number; pageSize: number; userChains?: boolean; verbose?: boolean; dryRun?: boolean }) => {
      if (o.dryRun === true) {
        state.code = await withStore(o.store, io, (store) => runSweepDryRun(store, io, { idleDays: o.idleDays, pageSize: o.pageSize, userChains: o.userChains === true }), 'read');
        return;
      }
      const creds = credentials(io, o);
      const { runSweepCommand } = await bitrix24();
      state.code = await withStore(o.store, io, (store) =>
        runSweepCommand(store, io, creds, { idleDays: o.idleDays, concurrency: o.concurrency, pageSize: o.pageSize, userChains: o.userChains === true, verbose: o.verbose === true }),
      );
    });

  program
    .command('migrate')
    .description('copy every record to another store, keeping versions; run it again to resume')
    .requiredOption('--from <url>', `source ${STORE_HELP}`)
    .requiredOption('--to <url>', 'target store URL')
    .option('--dry-run', 'count what would be copied; write nothing')
    .option('--page-size <n>', 'records read per store page', integer(1), 200)
    .option('--concurrency <n>', 'portals copied at once', integer(1), 8)
    .action(async (o: { from: string; to: string; dryRun?: boolean; pageSize: number; concurrency: number }) => {
      const dryRun = o.dryRun === true;
      if (o.from === o.to) throw new CliError('--from and --to name the same store: give two different stores', ExitCode.Usage);
      // The source is only read (never a table created under a mistyped prefix); the target may be new.
      const copy = (from: TokenStore): Promise<void> =>
        withStore(o.to, io, async (to) => {
          const result = await runMigrate(from, to, io, { dryRun, pageSize: o.pageSize, concurrency: o.concurrency });
          const report = migrateReport(result, dryRun);
          io.out(report.text);
          if (!report.ok) state.code = ExitCode.Failure;
        }, 'create');
      await withStore(o.from, io, copy, 'read');
    });

  program
    .command('import-recipe')
    .description('store every portal of the b24jssdk install recipe\u2019s .oauth-store.json')
    .argument('<file>', 'the recipe\u2019s .oauth-store.json')
    .requiredOption('--to <url>', `target ${STORE_HELP}`)
    .option('--dry-run', 'check every entry; write nothing (and prove nothing)')
    .option('--client-id <id>', 'the app client_id (or B24PT_CLIENT_ID)')
    .option('--client-secret <secret>', 'the app client_secret (or B24PT_CLIENT_SECRET; prefer the variable)')
    .option('--oauth-host <url...>', 'OAuth hosts the chains may be proven at (or B24PT_OAUTH_HOSTS, comma-separated; default Bitrix24\u2019s own)')
    .action(async (file: string, o: { to: string; dryRun?: boolean; clientId?: string; clientSecret?: string; oauthHost?: string[] }) => {
      // Each chain is proven at the OAuth host (one refresh) before it is stored: credentials first.
      const prove = o.dryRun === true ? undefined : (await bitrix24()).recipeProof(credentials(io, o));
      const entries = await readRecipe(file);
      await withStore(o.to, io, async (to) => {
        const result = await runImport(entries, to, io, { dryRun: o.dryRun === true, now: Date.now(), prove });
        const verb = o.dryRun === true ? 'would import' : 'imported';
        io.out(`${Object.keys(entries).length} entries: ${verb} ${result.imported.length}, already in the store ${result.present.length}, not imported ${result.rejected.length}\n`);
        for (const id of result.present) io.out(`  present  ${scrub(id)}: left as stored\n`);
        for (const r of result.rejected) io.out(`  rejected ${scrub(r.memberId)}: ${scrub(r.reason)}\n`);
        if (result.rejected.length > 0) state.code = ExitCode.Failure;
      }, 'create');
    });

  program
    .command('reactivate')
    .description('try a revoked or suspended chain\u2019s refresh token once more')
    .argument('<memberId>')
    .addOption(storeOption())
    .option('--user-id <id>', 'a user\u2019s chain instead of the portal\u2019s', integer(1))
    .option('--client-id <id>', 'the app client_id (or B24PT_CLIENT_ID)')
    .option('--client-secret <secret>', 'the app client_secret (or B24PT_CLIENT_SECRET)')
    .option('--oauth-host <url...>', 'OAuth hosts refreshes may go to (or B24PT_OAUTH_HOSTS, comma-separated; default Bitrix24\u2019s own)')
    .action(async (memberId: string, o: { store?: string; userId?: number; clientId?: string; clientSecret?: string; oauthHost?: string[] }) => {
      const creds = credentials(io, o);
      const { runReactivate } = await bitrix24();
      state.code = await withStore(o.store, io, (store) => runReactivate(store, io, creds, memberId, o.userId));
    });

  program
    .command('forget')
    .description('delete every chain of a portal (asks first on a terminal)')
    .argument('<memberId>')
    .addOption(storeOption())
    .option('-y, --yes', 'do not ask')
    .action(async (memberId: string, o: { store?: string; yes?: boolean }) => {
      state.code = await withStore(o.store, io, (store) => runForget(store, io, memberId, o.yes === true));
    });

  program
    .command('rekey')
    .description('re-encrypt every record with the write key of B24PT_KEYS')
    .addOption(storeOption())
    .option('--page-size <n>', 'records read per store page', integer(1), 100)
    .action(async (o: { store?: string; pageSize: number }) => {
      state.code = await withStore(o.store, io, (store) => runRekey(store, io, o.pageSize));
    });

  return program;
}

/**
 * The tool's output with the credentials of every store URL it was given removed, whatever prints
 * them (a driver's message included): the labels are masked already, this is the net under them.
 */
function masking(io: CliIo, inputs: readonly string[]): CliIo {
  const secrets = inputs.flatMap((input) => (input.includes(':') ? credentialsIn(input) : []));
  if (secrets.length === 0) return io;
  return { ...io, out: (text) => io.out(maskAll(text, secrets)), err: (text) => io.err(maskAll(text, secrets)) };
}

/** Runs the tool on `argv` (without `node` and the script); resolves to the exit code. */
export async function runCli(argv: readonly string[], given: CliIo): Promise<number> {
  const io = masking(given, [...argv, given.env['B24PT_STORE'] ?? '']);
  const state = { code: ExitCode.Ok as number };
  const program = buildProgram(io, state);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return state.code;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    if (error instanceof CliError) {
      io.err(`error: ${describeFailure(error)}\n`);
      return error.exitCode;
    }
    io.err(`error: ${describeFailure(error)}\n`);
    return ExitCode.Failure;
  }
}
