import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { WritError } from '../../core/errors.js';
import type { LogEntry, LogHead } from '../../log/entry.js';
import { type ChainReport, ChainVerifier } from '../../log/verify.js';
import { KvStore } from '../kv-store.js';
import type { Kind, KvView } from '../ledger.js';
import type { Store } from '../types.js';
import { MIGRATIONS } from './schema.js';

/** Options of {@link sqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file; created with its directory if missing. Default `./.writ/writ.db`. */
  path?: string;
  /**
   * `NORMAL` (default): durable across process crashes, may lose the last commits on power
   * loss. `FULL`: fsync on every commit — combine with group commit.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * Run the steps that arrive together in one transaction (one fsync), in arrival order,
   * each all-or-nothing as before. Default: on with `FULL`, off with `NORMAL`.
   */
  groupCommit?: boolean;
}

interface Job {
  step: (view: KvView) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

class SqliteStore extends KvStore {
  readonly kind = 'sqlite';
  readonly #db: Database.Database;
  readonly #groupCommit: boolean;
  #queue: Job[] = [];
  #flushScheduled = false;
  protected readonly view: KvView;
  readonly #readLog: Database.Statement<[number, number], { entry: string }>;
  readonly #entryAt: Database.Statement<[number], { entry: string }>;
  readonly #allLog: Database.Statement<[], { seq: number; entry: string }>;

  constructor(options: SqliteStoreOptions) {
    super();
    const path = options.path ?? '.writ/writ.db';
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
    db.pragma('busy_timeout = 5000');
    migrate(db);
    this.#db = db;
    this.#groupCommit = options.groupCommit ?? options.synchronous === 'FULL';

    const get = db.prepare<[string, string], { value: string }>(
      'SELECT value FROM state WHERE kind = ? AND key = ?',
    );
    const put = db.prepare<[string, string, string]>(
      'INSERT INTO state (kind, key, value) VALUES (?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value',
    );
    const del = db.prepare<[string, string]>('DELETE FROM state WHERE kind = ? AND key = ?');
    const list = db.prepare<[string], { value: string }>(
      'SELECT value FROM state WHERE kind = ? ORDER BY key',
    );
    const append = db.prepare<[number, string]>('INSERT INTO log (seq, entry) VALUES (?, ?)');
    this.#readLog = db.prepare('SELECT entry FROM log WHERE seq > ? ORDER BY seq LIMIT ?');
    this.#entryAt = db.prepare('SELECT entry FROM log WHERE seq = ?');
    this.#allLog = db.prepare('SELECT seq, entry FROM log ORDER BY seq');
    this.view = {
      get: (kind: Kind, key) => {
        const row = get.get(kind, key);
        return row === undefined ? undefined : JSON.parse(row.value);
      },
      put: (kind, key, value) => {
        put.run(kind, key, JSON.stringify(value));
      },
      delete: (kind, key) => {
        del.run(kind, key);
      },
      list: (kind) => list.all(kind).map((row) => JSON.parse(row.value)),
      append: (entry, text) => {
        append.run(entry.seq, text);
      },
    };
  }

  protected atomic<T>(step: (view: KvView) => T): Promise<T> {
    if (!this.#db.open)
      return Promise.reject(new WritError('STORE_FAILURE', 'the SQLite store is closed'));
    if (!this.#groupCommit) {
      try {
        return Promise.resolve(this.#db.transaction(() => step(this.view)).immediate());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ step, resolve: resolve as (v: unknown) => void, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /**
   * Group commit: every step queued since the last flush runs in one transaction, in order.
   * A step that throws (e.g. settling a settled writ) wrote nothing — the ledger writes only
   * at its end — so it fails alone; a failure of the transaction itself fails them all.
   */
  #flush() {
    const jobs = this.#queue;
    this.#queue = [];
    this.#flushScheduled = false;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.#db
        .transaction(() => {
          for (const job of jobs) {
            try {
              // Each step in its own savepoint: one that throws half way (a write that
              // fails) is rolled back alone instead of committing with the others.
              const value = this.#db.transaction(() => job.step(this.view))();
              outcomes.push({ ok: true, value });
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return;
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }

  async readLog(afterSeq: number, limit: number): Promise<LogEntry[]> {
    return this.#readLog.all(afterSeq, limit).map((row) => JSON.parse(row.entry));
  }

  async findDecision(id: string): Promise<LogEntry | undefined> {
    const seq = this.view.get('decision-index', id) as number | undefined;
    const row = seq === undefined ? undefined : this.#entryAt.get(seq);
    return row === undefined ? undefined : JSON.parse(row.entry);
  }

  /** Streams the log row by row (`iterate`), so a log of any length verifies in bounded memory. */
  async verifyLog(): Promise<ChainReport> {
    const verifier = new ChainVerifier();
    for (const row of this.#allLog.iterate()) {
      if (!verifier.push({ seq: row.seq, text: row.entry })) break;
    }
    return verifier.finish(this.view.get('log-head', 'head') as LogHead | undefined);
  }

  async close(): Promise<void> {
    if (this.#queue.length > 0) this.#flush();
    if (this.#db.open) this.#db.close();
  }
}

function migrate(db: Database.Database) {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new WritError(
      'STORE_FAILURE',
      `the database has schema version ${current}; this writ knows ${MIGRATIONS.length}`,
    );
  }
  db.transaction(() => {
    for (let v = current; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  }).immediate();
}

/**
 * A durable store in one SQLite file (WAL). Each authorization and settlement is one
 * `BEGIN IMMEDIATE` transaction, or, with group commit, part of one shared transaction.
 *
 * @example
 * const store = sqliteStore({ path: '.writ/writ.db', synchronous: 'FULL' });
 */
export function sqliteStore(options: SqliteStoreOptions = {}): Store {
  return new SqliteStore(options);
}
