/**
 * What the store benchmark measures: writ's authorize + settle on each store, with the log
 * on and off, beside floors that do the same writes with nothing else — a raw better-sqlite3
 * transaction, and for the rate-limit-only path `rate-limiter-flexible`.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { RateLimiterMemory, RateLimiterSQLite } from 'rate-limiter-flexible';
import type { Store } from '../../src/store/types.js';
import type { Runtime } from './runtime.js';

/**
 * One tool, allowed; every call of it holds 1 on one budget (a limit it never reaches),
 * takes a token from one rate limit (a rate it never reaches) and claims a fresh
 * idempotency key (`request.idempotencyKey` is unique per call).
 */
export const DECISION_POLICY = `
version: 1
name: store-bench
tools:
  send_email:
    - allow: true
budgets:
  spend: { match: 'tool == "send_email"', per: 'principal.tenant', limit: 1000000000000, window: lifetime, cost: 1 }
rate_limits:
  calls: { match: 'tool == "send_email"', per: 'principal.id', rate: 1000000/1s, burst: 1000000 }
idempotency:
  requests: { match: 'tool == "send_email"', key: 'request.idempotencyKey', ttl: 24h }
`;

/** The rate-limit-only path: one allowed tool and one rate limit it never reaches. */
export const RATE_POLICY = `
version: 1
name: rate-bench
tools:
  send_email:
    - allow: true
rate_limits:
  calls: { match: 'tool == "send_email"', per: 'principal.id', rate: 1000000/1s, burst: 1000000 }
`;

/**
 * The `i`th call: the same agent and session; a fresh idempotency key. The same tenant, so
 * one budget key — or, with `tenants`, tenant `i mod tenants`, spreading calls over that
 * many budget keys.
 */
export function action(i: number, tenants = 1) {
  return {
    tool: 'send_email',
    args: { to: 'ops@example.com', subject: `weekly report ${i}` },
    principal: { id: 'agent-7', tenant: tenants === 1 ? 'acme' : `acme-${i % tenants}` },
    session: { id: 'run-42' },
    idempotencyKey: `req-${i}`,
  };
}

/** A caller of one measured path: one decision per `call`. */
export interface Caller {
  /** One decision; `i` is unique over the caller's life. Throws unless it was allowed. */
  call(i: number): Promise<void>;
  close(): Promise<void>;
}

/** One measured path. */
export interface Subject {
  name: string;
  note: string;
  /** How many callers run at once (1: one call at a time). */
  callers: number;
  /** Opens the path with its own state; SQLite files go in `dir`. */
  open(dir: string): Promise<Caller>;
}

/** How a writ subject stores its state. */
export type StoreKind = 'memory' | 'normal' | 'full' | 'full-group';

function openStore(rt: Runtime, kind: StoreKind, path: string): Store {
  switch (kind) {
    case 'memory':
      return rt.memoryStore();
    case 'normal':
      return rt.sqliteStore({ path, synchronous: 'NORMAL' });
    case 'full':
      return rt.sqliteStore({ path, synchronous: 'FULL', groupCommit: false });
    case 'full-group':
      return rt.sqliteStore({ path, synchronous: 'FULL', groupCommit: true });
  }
}

const STORE_NAMES: Record<StoreKind, string> = {
  memory: 'memory',
  normal: 'SQLite NORMAL',
  full: 'SQLite FULL',
  'full-group': 'SQLite FULL, group commit',
};

let files = 0;

/**
 * writ's authorize (checked to allow) then settle as succeeded, with a result; with
 * `budgetKeys`, calls spread over that many budget keys instead of one.
 */
export function writDecision(
  rt: Runtime,
  kind: StoreKind,
  log: boolean,
  callers = 1,
  budgetKeys = 1,
): Subject {
  return {
    // Group commit is measured with many callers only; elsewhere the name says so.
    name: `writ ${STORE_NAMES[kind]}${callers > 1 && kind !== 'full-group' ? `, ${callers} callers` : ''}, log ${log ? 'on' : 'off'}${budgetKeys > 1 ? `, ${budgetKeys} budget keys` : ''}`,
    note: 'authorize + settle',
    callers,
    async open(dir) {
      const writ = rt.createWrit({
        policy: DECISION_POLICY,
        store: openStore(rt, kind, join(dir, `writ-${++files}.db`)),
        log,
      });
      return {
        async call(i) {
          const decision = await writ.authorize(action(i, budgetKeys));
          if (decision.outcome !== 'allow' || !decision.writ) throw notAllowed(decision);
          await writ.settle(decision.writ, { status: 'succeeded', result: { messageId: i } });
        },
        close: () => writ.close(),
      };
    },
  };
}

/** writ's authorize alone, with the rate-limit-only policy. */
export function writRateOnly(rt: Runtime, kind: 'memory' | 'normal', log: boolean): Subject {
  return {
    name: `writ ${STORE_NAMES[kind]}, rate limit only, log ${log ? 'on' : 'off'}`,
    note: 'authorize',
    callers: 1,
    async open(dir) {
      const writ = rt.createWrit({
        policy: RATE_POLICY,
        store: openStore(rt, kind, join(dir, `writ-${++files}.db`)),
        log,
      });
      return {
        async call(i) {
          const decision = await writ.authorize(action(i));
          if (decision.outcome !== 'allow') throw notAllowed(decision);
        },
        close: () => writ.close(),
      };
    },
  };
}

function notAllowed(decision: { outcome: string; reasons: unknown }): Error {
  return new Error(`expected allow, got ${decision.outcome}: ${JSON.stringify(decision.reasons)}`);
}

/** Opens a better-sqlite3 database the way writ's SQLite store does. */
function database(path: string, synchronous: 'NORMAL' | 'FULL'): Database.Database {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * Log rows of the floor: text the length of writ's entries for this call (measured: a
 * decision 1,030 bytes, a settlement 467), so the same bytes reach the disk.
 */
const DECISION_TEXT = 'd'.repeat(1_030);
const SETTLEMENT_TEXT = 's'.repeat(467);

/**
 * The floor for the SQLite rows: the writes a decision makes, in plain SQL on plain
 * columns, nothing else — no policy, no JSON, no hashing. Authorize, in one `BEGIN
 * IMMEDIATE` transaction: read and upsert the budget row, read and upsert the rate row,
 * check and insert the idempotency row, insert the writ, append a log row. Settle, in a
 * second: read and update the writ, read and upsert the budget, update the idempotency row
 * with the result, append a log row. With `group`, the steps that arrive together share
 * one transaction, as writ's group commit does (without its savepoint per step).
 */
export function rawFloor(synchronous: 'NORMAL' | 'FULL', callers = 1): Subject {
  const group = callers > 1;
  return {
    name: `raw better-sqlite3 ${synchronous}${group ? ', group commit' : ''} (floor)`,
    note: 'two transactions of the same writes',
    callers,
    async open(dir) {
      const db = database(join(dir, `raw-${++files}.db`), synchronous);
      db.exec(`
        CREATE TABLE budget (key TEXT PRIMARY KEY, spent REAL NOT NULL, held REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE rate (key TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE idem (key TEXT PRIMARY KEY, status TEXT NOT NULL, writ TEXT NOT NULL,
                           result TEXT, expires INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE writ (id TEXT PRIMARY KEY, status TEXT NOT NULL, amount REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE log (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL);
      `);
      const getBudget = db.prepare<[string], { spent: number; held: number }>(
        'SELECT spent, held FROM budget WHERE key = ?',
      );
      const putBudget = db.prepare<[string, number, number]>(
        'INSERT INTO budget (key, spent, held) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET spent = excluded.spent, held = excluded.held',
      );
      const getRate = db.prepare<[string], { tat: number }>('SELECT tat FROM rate WHERE key = ?');
      const putRate = db.prepare<[string, number]>(
        'INSERT INTO rate (key, tat) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat',
      );
      const getIdem = db.prepare<[string], { status: string }>(
        'SELECT status FROM idem WHERE key = ?',
      );
      const putIdem = db.prepare<[string, string, number]>(
        `INSERT INTO idem (key, status, writ, expires) VALUES (?, 'in_flight', ?, ?)`,
      );
      const settleIdem = db.prepare<[string, string]>(
        `UPDATE idem SET status = 'succeeded', result = ? WHERE key = ?`,
      );
      const putWrit = db.prepare<[string]>(
        `INSERT INTO writ (id, status, amount) VALUES (?, 'open', 1)`,
      );
      const getWrit = db.prepare<[string], { status: string; amount: number }>(
        'SELECT status, amount FROM writ WHERE id = ?',
      );
      const settleWrit = db.prepare<[string]>(`UPDATE writ SET status = 'succeeded' WHERE id = ?`);
      const append = db.prepare<[number, string]>('INSERT INTO log (seq, entry) VALUES (?, ?)');
      let seq = 0;

      const authorize = (i: number) => {
        const now = Date.now();
        const budget = getBudget.get('acme') ?? { spent: 0, held: 0 };
        if (budget.spent + budget.held + 1 > 1e12) throw new Error('budget exhausted');
        putBudget.run('acme', budget.spent, budget.held + 1);
        const tat = Math.max(getRate.get('agent-7')?.tat ?? now, now) + 0.001;
        putRate.run('agent-7', tat);
        if (getIdem.get(`req-${i}`)) throw new Error('idempotency key in use');
        putIdem.run(`req-${i}`, `wr-${i}`, now + 86_400_000);
        putWrit.run(`wr-${i}`);
        append.run(++seq, DECISION_TEXT);
      };
      const settle = (i: number) => {
        const writ = getWrit.get(`wr-${i}`);
        if (writ?.status !== 'open') throw new Error('unknown or settled writ');
        settleWrit.run(`wr-${i}`);
        const budget = getBudget.get('acme')!;
        putBudget.run('acme', budget.spent + writ.amount, budget.held - writ.amount);
        settleIdem.run(JSON.stringify({ messageId: i }), `req-${i}`);
        append.run(++seq, SETTLEMENT_TEXT);
      };

      if (!group) {
        const authorizeTx = db.transaction(authorize);
        const settleTx = db.transaction(settle);
        return {
          async call(i) {
            authorizeTx.immediate(i);
            settleTx.immediate(i);
          },
          async close() {
            db.close();
          },
        };
      }

      const commit = groupCommit(db);
      return {
        async call(i) {
          await commit(() => authorize(i));
          await commit(() => settle(i));
        },
        async close() {
          db.close();
        },
      };
    },
  };
}

/**
 * A reference, not a floor: one `BEGIN IMMEDIATE` transaction that reads and updates one
 * small row (a counter) — what a commit costs on this disk when it writes almost nothing.
 */
export function rawUpsert(synchronous: 'NORMAL' | 'FULL'): Subject {
  return {
    name: `raw better-sqlite3 ${synchronous}, one upsert per transaction`,
    note: 'one transaction, one row',
    callers: 1,
    async open(dir) {
      const db = database(join(dir, `upsert-${++files}.db`), synchronous);
      db.exec('CREATE TABLE counter (key TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID');
      const get = db.prepare<[string], { n: number }>('SELECT n FROM counter WHERE key = ?');
      const put = db.prepare<[string, number]>(
        'INSERT INTO counter (key, n) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET n = excluded.n',
      );
      const step = db.transaction(() => {
        put.run('agent-7', (get.get('agent-7')?.n ?? 0) + 1);
      });
      return {
        async call() {
          step.immediate();
        },
        async close() {
          db.close();
        },
      };
    },
  };
}

/** Runs the steps queued before the next turn of the event loop in one transaction. */
function groupCommit(db: Database.Database): (step: () => void) => Promise<void> {
  type Job = { step: () => void; done: () => void; fail: (error: unknown) => void };
  let queue: Job[] = [];
  const flush = () => {
    const jobs = queue;
    queue = [];
    try {
      db.transaction(() => {
        for (const job of jobs) job.step();
      }).immediate();
    } catch (error) {
      for (const job of jobs) job.fail(error);
      return;
    }
    for (const job of jobs) job.done();
  };
  return (step) =>
    new Promise((done, fail) => {
      if (queue.length === 0) setImmediate(flush);
      queue.push({ step, done, fail });
    });
}

/** A limit `rate-limiter-flexible` never reaches: a billion points a second. */
const RLF_LIMIT = { points: 1_000_000_000, duration: 1 };

/** `rate-limiter-flexible` in memory: one point per call on the agent's key. */
export function rlfMemory(): Subject {
  return {
    name: 'rate-limiter-flexible RateLimiterMemory',
    note: 'consume(key, 1)',
    callers: 1,
    async open() {
      const limiter = new RateLimiterMemory(RLF_LIMIT);
      return {
        async call() {
          await limiter.consume('agent-7', 1);
        },
        async close() {},
      };
    },
  };
}

/** `rate-limiter-flexible` on better-sqlite3 (WAL, NORMAL, as writ's SQLite store). */
export function rlfSqlite(): Subject {
  return {
    name: 'rate-limiter-flexible RateLimiterSQLite NORMAL',
    note: 'consume(key, 1)',
    callers: 1,
    async open(dir) {
      const db = database(join(dir, `rlf-${++files}.db`), 'NORMAL');
      const limiter = await new Promise<RateLimiterSQLite>((resolve, reject) => {
        const made: RateLimiterSQLite = new RateLimiterSQLite(
          { ...RLF_LIMIT, storeClient: db, storeType: 'better-sqlite3', tableName: 'rlf' },
          (error?: Error) => (error ? reject(error) : resolve(made)),
        );
      });
      return {
        async call() {
          await limiter.consume('agent-7', 1);
        },
        async close() {
          db.close();
        },
      };
    },
  };
}
