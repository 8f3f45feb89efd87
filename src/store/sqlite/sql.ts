// SQL text of the SQLite store's statements that is built from the schema rather than written out:
// the SET lists of a data write and of a tombstone, and the budget step.

import { DATA_COLUMNS } from './schema.js';

/** `column = ?` for every data column, in DATA_COLUMNS order. */
export const DATA_SET = DATA_COLUMNS.map((column) => `${column} = ?`).join(', ');
/** What turns a row into a tombstone: `deleted = 1` and every data column but `member_id` NULL. */
export const TOMBSTONE_SET = `deleted = 1, ${DATA_COLUMNS.filter((column) => column !== 'member_id')
  .map((column) => `${column} = NULL`)
  .join(', ')}`;

/**
 * The budget step as one statement: a new key takes the values computed for a fresh key; an existing
 * one is moved on from its stored arrival time (see gcra() in src/store/budget-math.ts, the same arithmetic).
 */
export function budgetSql(table: string): string {
  const base = `max(${table}.tat, excluded.now_ms, excluded.now_ms + :floor)`;
  const wait = `max(0, ${base} + :cost * :interval - :span - excluded.now_ms)`;
  return (
    `INSERT INTO ${table} (key, tat, now_ms, wait_ms, granted) VALUES (:key, :tat, :now, :wait, :granted) ` +
    `ON CONFLICT (key) DO UPDATE SET ` +
    `tat = CASE WHEN ${wait} <= :max THEN ${base} + :cost * :interval ELSE ${base} END, ` +
    `now_ms = excluded.now_ms, wait_ms = ${wait}, granted = (${wait} <= :max) ` +
    'RETURNING wait_ms, granted'
  );
}
