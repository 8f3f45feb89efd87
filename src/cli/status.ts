// `status`: every chain of every portal, a page at a time (never the whole store in memory), as an
// aligned table or one streamed JSON document. Output rows are built field by field from an
// allow-list: no token can reach them.

import type { PortalRecord, TokenStore } from '../store/token-store.js';
import { describeUnreadable, walkStore } from '../store/walk.js';
import { usageError } from './errors.js';
import type { CliIo } from './io.js';

/** Options of {@link runStatus}. */
export interface StatusOptions {
  /** One JSON document instead of a table. */
  readonly json: boolean;
  /** Days a refresh token lives unused (Bitrix24: 180). */
  readonly lapseDays: number;
  /** Records read per `list` call. */
  readonly pageSize: number;
  /** Also list users' chains. */
  readonly userChains: boolean;
  /** The time, unix ms. */
  readonly now: number;
}

/** One output row: only these fields, never a token. */
export interface StatusRow {
  readonly memberId: string;
  readonly chain: string;
  readonly domain: string;
  readonly state: string;
  readonly reason: string | null;
  /** When the access token expires, ISO 8601. */
  readonly tokenExpires: string;
  /** Days since the pair last changed. */
  readonly chainAgeDays: number;
  /** Days until an idle refresh token lapses (negative: lapsed), `null` unless active. */
  readonly daysUntilLapse: number | null;
  readonly version: number;
}

/** Counts of chains by state. */
export interface StatusSummary {
  portals: number;
  chains: number;
  active: number;
  revoked: number;
  suspended: number;
  /** Active chains within 30 days of lapsing (or lapsed). */
  lapsingSoon: number;
  /** Records the store holds but could not read (named on their own lines), skipped. */
  unreadable: number;
}

const DAY_MS = 86_400_000;

/** The allow-listed view of a record. */
export function statusRow(record: PortalRecord, now: number, lapseDays: number): StatusRow {
  const ageDays = Math.floor((now - record.chainUpdatedAt) / DAY_MS);
  return {
    memberId: String(record.memberId),
    chain: String(record.chain),
    domain: String(record.domain),
    state: String(record.state),
    reason: record.revokedReason === null ? null : String(record.revokedReason),
    tokenExpires: Number.isFinite(record.expires) ? new Date(record.expires * 1000).toISOString() : 'unknown',
    chainAgeDays: ageDays,
    daysUntilLapse: record.state === 'active' ? lapseDays - ageDays : null,
    version: Number(record.version),
  };
}

const COLUMNS = [
  ['MEMBER ID', 34],
  ['CHAIN', 12],
  ['DOMAIN', 30],
  ['STATE', 26],
  ['TOKEN EXPIRES', 21],
  ['AGE (d)', 8],
] as const;

function line(cells: readonly string[]): string {
  return cells.map((cell, i) => (i < COLUMNS.length ? cell.padEnd(COLUMNS[i]![1]) : cell)).join(' ') + '\n';
}

function tableLine(row: StatusRow): string {
  const state = row.reason === null ? row.state : `${row.state} (${row.reason})`;
  const lapse = row.daysUntilLapse === null ? '-' : row.daysUntilLapse < 0 ? `lapsed ${-row.daysUntilLapse}d ago` : String(row.daysUntilLapse);
  return line([row.memberId, row.chain, row.domain, state, row.tokenExpires.slice(0, 19) + 'Z', String(row.chainAgeDays), lapse]);
}

/** Pages through the store and writes the status; returns the summary. */
export async function runStatus(store: TokenStore, io: CliIo, options: StatusOptions): Promise<StatusSummary> {
  if (!store.capabilities.list || store.list === undefined) throw usageError('this store cannot list its records');
  const summary: StatusSummary = { portals: 0, chains: 0, active: 0, revoked: 0, suspended: 0, lapsingSoon: 0, unreadable: 0 };
  const count = (row: StatusRow): void => {
    summary.chains++;
    if (row.state === 'active' || row.state === 'revoked' || row.state === 'suspended') summary[row.state]++;
    if (row.daysUntilLapse !== null && row.daysUntilLapse <= 30) summary.lapsingSoon++;
  };
  let first = true;
  if (options.json) io.out('{"portals":[');
  else io.out(line([...COLUMNS.map(([name]) => name), 'LAPSES IN (d)']));
  const emit = (record: PortalRecord): void => {
    const row = statusRow(record, options.now, options.lapseDays);
    count(row);
    if (options.json) {
      io.out(`${first ? '' : ','}\n${JSON.stringify(row)}`);
      first = false;
    } else io.out(tableLine(row));
  };
  // Every chain (a user's chain without its portal's included, where the store can list them all);
  // a record that cannot be read is named and skipped, never the end of the listing.
  const unreadable: string[] = [];
  let lastMember: string | undefined;
  for await (const page of walkStore(store, { pageSize: options.pageSize, userChains: options.userChains })) {
    for (const record of page.records) {
      if (record.memberId !== lastMember) summary.portals++;
      lastMember = record.memberId;
      emit(record);
    }
    for (const item of page.unreadable) unreadable.push(describeUnreadable(item));
    await io.drain?.();
  }
  summary.unreadable = unreadable.length;
  if (options.json) io.out(`\n],"unreadable":${JSON.stringify(unreadable)},"summary":${JSON.stringify(summary)}}\n`);
  else {
    io.out(`\n${summaryLine(summary)}\n`);
    for (const line of unreadable) io.out(`  unreadable ${line}\n`);
  }
  return summary;
}

/** The one-line summary. */
export function summaryLine(s: StatusSummary): string {
  const unreadable = s.unreadable > 0 ? `; ${s.unreadable} could not be read (listed; check B24PT_KEYS)` : '';
  return `${s.portals} portals, ${s.chains} chains: ${s.active} active, ${s.revoked} revoked, ${s.suspended} suspended; ${s.lapsingSoon} active within 30 days of lapsing${unreadable}`;
}
