import type Database from 'better-sqlite3';
import { messageOf, WritError } from '../../core/errors.js';
import { type LogEntry, sealedText } from '../../log/entry.js';
import type { Kind, KvView } from '../ledger.js';
import { recordProblem } from '../record-shapes.js';
import { SHARED_KINDS } from './schema.js';

/** What the cache knows about a record that is not in the table. */
const ABSENT = Symbol('absent');

/**
 * Above this many cached records the cache starts over, so a long-running process keeps a
 * bounded working set (writs and idempotency claims are mostly written once, read once).
 */
const CACHE_LIMIT = 50_000;

function readOnly(): never {
  throw new Error('the SQLite store writes only inside a step');
}

/** A buffered write (`ABSENT` for a delete). */
type Write = { kind: Kind; key: string; value: unknown };

/**
 * The store's records (tables `state` and `shared`) seen through a write-through cache of
 * parsed records. Reads are served
 * from memory once a record has been read or written; a write step's changes are buffered
 * and reach SQLite in one batch when its transaction commits (`flush`), so a group of steps
 * writes a record that several of them changed — a budget, the log head — once. Each step's
 * writes are held apart until it returns (`step`): one that throws half way leaves nothing
 * for the others to read or commit.
 *
 * The cache is only trusted while no other connection has committed: every transaction and
 * every read outside one first compares `PRAGMA data_version` (which changes exactly when
 * another connection commits) and drops the cache when it moved. Records handed out are the
 * cached objects: the ledger never changes a record it has read, it writes new ones, and
 * the store copies what crosses its boundary.
 */
export class CachedState {
  readonly #cache = new Map<string, unknown>();
  /** Writes of the steps that completed in the open transaction. */
  readonly #pending = new Map<string, Write>();
  readonly #log: { seq: number; text: string }[] = [];
  /** Writes of the step running now. */
  readonly #stepWrites = new Map<string, Write>();
  readonly #stepLog: { seq: number; text: string }[] = [];
  /** Set by `flush` until the transaction ends: the cache holds writes not yet committed. */
  #uncommitted = false;
  #dataVersion: number;
  readonly #tables: Record<'state' | 'shared', TableStatements>;
  readonly #append: Database.Statement<[number, string]>;
  readonly #version: Database.Statement<[], number>;

  /** The view a write step reads and writes through. */
  readonly view: KvView = {
    get: (kind, key) => this.#get(kind, key),
    put: (kind, key, value) => {
      this.#stepWrites.set(`${kind}\0${key}`, { kind, key, value });
    },
    delete: (kind, key) => {
      this.#stepWrites.set(`${kind}\0${key}`, { kind, key, value: ABSENT });
    },
    list: (kind) => this.#listKind(kind),
    append: (entry: LogEntry, body) => {
      this.#stepLog.push({ seq: entry.seq, text: sealedText(body, entry.hash) });
    },
  };

  /**
   * The view for reads outside a write step: it first makes sure the cache is current, and
   * refuses writes, which only a step may make.
   */
  readonly reader: KvView = {
    put: readOnly,
    delete: readOnly,
    append: readOnly,
    get: (kind, key) => {
      this.sync();
      return this.#get(kind, key);
    },
    list: (kind) => {
      this.sync();
      return this.#listKind(kind);
    },
  };

  constructor(db: Database.Database) {
    this.#tables = { state: tableStatements(db, 'state'), shared: tableStatements(db, 'shared') };
    this.#append = db.prepare('INSERT INTO log (seq, entry) VALUES (?, ?)');
    this.#version = db.prepare<[], number>('PRAGMA data_version');
    this.#version.pluck();
    this.#dataVersion = this.#version.get()!;
  }

  /**
   * Drops the cache if another connection committed since this one last looked (and when it
   * has grown past its limit). Call it at the start of every transaction.
   */
  sync(): void {
    const version = this.#version.get()!;
    if (version !== this.#dataVersion || this.#cache.size > CACHE_LIMIT) {
      this.#cache.clear();
      this.#dataVersion = version;
    }
  }

  /**
   * Runs one write step: its writes join the transaction's buffer if it returns, and are
   * dropped if it throws.
   */
  step<T>(body: (view: KvView) => T): T {
    try {
      const value = body(this.view);
      for (const [id, write] of this.#stepWrites) this.#pending.set(id, write);
      this.#log.push(...this.#stepLog);
      return value;
    } finally {
      this.#stepWrites.clear();
      this.#stepLog.length = 0;
    }
  }

  /**
   * Writes the buffered changes inside the open transaction; the caller commits. A record is
   * serialized here, once per transaction however many steps changed it, so one that is not
   * JSON fails the whole transaction.
   */
  flush(): void {
    this.#uncommitted = true;
    for (const { seq, text } of this.#log) this.#appendEntry(seq, text);
    for (const [id, { kind, key, value }] of this.#pending) {
      const table = this.#table(kind);
      if (value === ABSENT) table.remove.run(kind, key);
      else table.upsert.run(kind, key, JSON.stringify(value));
      this.#cache.set(id, value);
    }
    this.#log.length = 0;
    this.#pending.clear();
  }

  /**
   * Inserts a log row. The ledger numbers an entry after the head record, so a row already
   * at that number means the head was deleted or set back outside writ: appending anyway
   * would fork the chain, so the write fails closed, naming the head.
   */
  #appendEntry(seq: number, text: string): void {
    try {
      this.#append.run(seq, text);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw error;
      // Read as committed: the head this transaction writes is flushed after the log rows.
      const head = this.#tables.shared.select.get('log-head', 'head');
      throw new WritError(
        'STORE_FAILURE',
        `the store's log head is ${head === undefined ? 'missing' : 'behind its log'}: log entry ${seq} is already there (changed outside writ; writ log verify shows where)`,
        { record: 'log head' },
        { cause: error },
      );
    }
  }

  /** The transaction committed: what `flush` put in the cache is now in the database. */
  committed(): void {
    this.#uncommitted = false;
  }

  /**
   * The transaction rolled back: forgets the buffered changes, and the cache too if `flush`
   * had already put in it what the database now does not have. (A step that threw before
   * that, such as a second settle, leaves the cache as good as it was.)
   */
  rolledBack(): void {
    this.#log.length = 0;
    this.#pending.clear();
    if (this.#uncommitted) this.#cache.clear();
    this.#uncommitted = false;
  }

  /** Up to `limit` keys of `kind` after `after`, in key order, as committed. */
  keysAfter(kind: Kind, after: string, limit: number): string[] {
    return this.#table(kind).keysAfter.all(kind, after, limit);
  }

  #table(kind: Kind): TableStatements {
    return SHARED_KINDS.has(kind) ? this.#tables.shared : this.#tables.state;
  }

  #get(kind: Kind, key: string): unknown {
    const id = `${kind}\0${key}`;
    const pending = this.#stepWrites.get(id) ?? this.#pending.get(id);
    if (pending) return pending.value === ABSENT ? undefined : pending.value;
    let value = this.#cache.get(id);
    if (value === undefined) {
      const text = this.#table(kind).select.get(kind, key);
      value = text === undefined ? ABSENT : parseRecord(kind, key, text);
      this.#cache.set(id, value);
    }
    return value === ABSENT ? undefined : value;
  }

  /** Every record of a kind, with this step's buffered changes applied. */
  #listKind(kind: Kind): unknown[] {
    const rows = new Map<string, unknown>();
    for (const row of this.#table(kind).list.all(kind))
      rows.set(row.key, parseRecord(kind, row.key, row.value));
    for (const write of [...this.#pending.values(), ...this.#stepWrites.values()]) {
      if (write.kind !== kind) continue;
      if (write.value === ABSENT) rows.delete(write.key);
      else rows.set(write.key, write.value);
    }
    return [...rows.values()];
  }
}

/**
 * A stored text parsed, or a `STORE_FAILURE` naming what it is: a record edited or damaged
 * outside writ is the store's failure, reported as one, not a `SyntaxError` from within.
 */
export function parseStored(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new WritError('STORE_FAILURE', `the store's ${what} is not JSON: ${messageOf(error)}`, {
      record: what,
    });
  }
}

/**
 * A stored record parsed and checked to have the shape the ledger reads (`recordProblem`),
 * or a `STORE_FAILURE` naming it. Checked here, when it is read from the file, once: a
 * record served from the cache was checked when it was read, or written by the ledger.
 */
function parseRecord(kind: Kind, key: string, text: string): unknown {
  const what = `${kind} record ${key}`;
  const value = parseStored(text, what);
  const problem = recordProblem(kind, value);
  if (problem)
    throw new WritError('STORE_FAILURE', `the store's ${what} is damaged: ${problem}`, {
      record: what,
    });
  return value;
}

interface TableStatements {
  select: Database.Statement<[string, string], string>;
  upsert: Database.Statement<[string, string, string]>;
  remove: Database.Statement<[string, string]>;
  list: Database.Statement<[string], { key: string; value: string }>;
  keysAfter: Database.Statement<[string, string, number], string>;
}

function tableStatements(db: Database.Database, table: 'state' | 'shared'): TableStatements {
  const select = db.prepare<[string, string], string>(
    `SELECT value FROM ${table} WHERE kind = ? AND key = ?`,
  );
  select.pluck();
  const keysAfter = db.prepare<[string, string, number], string>(
    `SELECT key FROM ${table} WHERE kind = ? AND key > ? ORDER BY key LIMIT ?`,
  );
  keysAfter.pluck();
  return {
    keysAfter,
    select,
    upsert: db.prepare(
      `INSERT INTO ${table} (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`,
    ),
    remove: db.prepare(`DELETE FROM ${table} WHERE kind = ? AND key = ?`),
    list: db.prepare(`SELECT key, value FROM ${table} WHERE kind = ? ORDER BY key`),
  };
}
