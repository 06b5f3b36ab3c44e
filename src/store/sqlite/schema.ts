/**
 * Schema migrations, applied in order on open; `PRAGMA user_version` records how many ran.
 * Append new steps; never edit a released one.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE state (
     kind  TEXT NOT NULL,
     key   TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (kind, key)
   ) WITHOUT ROWID`,
  // The decision log: append-only, one row per entry, `seq` as the row id.
  `CREATE TABLE log (
     seq   INTEGER PRIMARY KEY,
     entry TEXT NOT NULL
   )`,
  // Records that many calls rewrite (budgets, rate buckets, leases, the log head) in a small
  // table of their own: a commit then writes them all in one page, instead of one page per
  // kind among the records that are written once per call.
  `CREATE TABLE shared (
     kind  TEXT NOT NULL,
     key   TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (kind, key)
   ) WITHOUT ROWID;
   INSERT INTO shared SELECT kind, key, value FROM state
     WHERE kind IN ('budget', 'rate', 'lease', 'log-head');
   DELETE FROM state WHERE kind IN ('budget', 'rate', 'lease', 'log-head')`,
  // Where each decision's log entry is, by decision id: derived from the log and brought up
  // to date when a decision is looked up, instead of written with every decision.
  `CREATE TABLE decision (
     id  TEXT PRIMARY KEY,
     seq INTEGER NOT NULL
   ) WITHOUT ROWID;
   INSERT INTO decision SELECT key, CAST(value AS INTEGER) FROM state
     WHERE kind = 'decision-index';
   DELETE FROM state WHERE kind = 'decision-index'`,
  // A writ's labels apply when it settles as having run, not only on success: the field
  // that held them, `labelsOnSuccess`, is `labels` now.
  `UPDATE state
     SET value = json_set(json_remove(value, '$.labelsOnSuccess'), '$.labels',
                          json(json_extract(value, '$.labelsOnSuccess')))
     WHERE kind = 'writ' AND json_type(value, '$.labelsOnSuccess') = 'array'`,
];

/** The kinds of records kept in the `shared` table; every other kind is in `state`. */
export const SHARED_KINDS: ReadonlySet<string> = new Set(['budget', 'rate', 'lease', 'log-head']);
