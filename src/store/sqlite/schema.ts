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
];
