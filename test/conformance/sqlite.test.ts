import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import { WritError } from '../../src/core/errors.js';
import type { PlanOp } from '../../src/core/plan.js';
import { createWrit } from '../../src/engine/writ.js';
import { type SqliteStoreOptions, sqliteStore } from '../../src/store/sqlite/index.js';
import { MIGRATIONS } from '../../src/store/sqlite/schema.js';
import type { WritRecord } from '../../src/store/types.js';
import { describeStoreConformance } from '../../src/testing/index.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A path in a fresh temporary directory, removed after the run. */
function freshPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'writ-conformance-'));
  dirs.push(dir);
  return join(dir, 'writ.db');
}

/** The SQLite store's source, for child processes that import it. */
const STORE_SOURCE = join(import.meta.dirname, '../../src/store/sqlite/index.ts');

/** Starts a process that runs `body` with the store's module as `m`, and `args` as argv. */
function storeProcess(body: string, ...args: string[]) {
  const script = `import('${STORE_SOURCE}').then(async (m) => { ${body} })`;
  return spawn(process.execPath, ['--import', 'tsx', '-e', script, ...args]);
}

/** Runs `storeProcess` to its end (killed after 20 s): its exit code and output. */
function runStoreProcess(
  body: string,
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = storeProcess(body, ...args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** One value of the stored budget row, read through a connection of its own. */
function budgetRowValue<T>(path: string, column: 'value' | 'length(value)'): T {
  const reader = new Database(path, { readonly: true });
  try {
    return reader
      .prepare<[], T>(`SELECT ${column} FROM shared WHERE kind = 'budget'`)
      .pluck()
      .get()!;
  } finally {
    reader.close();
  }
}

const variants: [string, SqliteStoreOptions][] = [
  ['sqlite (synchronous NORMAL)', { synchronous: 'NORMAL' }],
  ['sqlite (synchronous FULL, group commit)', { synchronous: 'FULL' }],
];

for (const [name, options] of variants) {
  describeStoreConformance(name, () => sqliteStore({ ...options, path: freshPath() }));
}

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const hold = (
  key: string,
  amount: number,
  onExpiry: 'release' | 'capture' = 'release',
): PlanOp => ({
  kind: 'budget',
  invariant: 'budgets.spend',
  key,
  amount,
  limit: 100,
  windowEnd: null,
  holdTtlMs: 60_000,
  onExpiry,
});
function writRecord(id: string, ops: PlanOp[], labels: unknown[] = []): WritRecord {
  return {
    id,
    decisionId: `dec-${id}`,
    actionDigest: `sha256:${'ab'.repeat(32)}`,
    sessionId: 's1',
    tool: 'pay',
    issuedAt: T0,
    expiresAt: T0 + 60_000,
    ops,
    labels: labels as string[],
    fencing: {},
  };
}

/** Payments with a budget, a concurrency limit, idempotency, and approval above 50. */
const PAY_POLICY = [
  'version: 1',
  'tools:',
  '  pay:',
  `    - require_approval: 'args.amount > 50'`,
  '    - allow: true',
  'budgets:',
  '  spend:',
  '    limit: 100',
  '    window: lifetime',
  `    cost: 'args.amount'`,
  'concurrency:',
  '  slots:',
  '    max: 5',
  'idempotency:',
  '  once:',
  `    key: 'request.idempotencyKey'`,
  '',
].join('\n');

const pay = (amount: number, key: string) => ({
  tool: 'pay',
  args: { amount },
  principal: { id: 'agent-7' },
  session: { id: 's1' },
  idempotencyKey: key,
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An engine with the payments policy over `store`, at T0 with sequential ids. */
const payEngine = (store: ReturnType<typeof sqliteStore>) =>
  createWrit({ policy: PAY_POLICY, store, clock: manualClock(T0), ids: sequentialIds() });

/**
 * Runs `body` while another connection holds the write lock, as a busy server does between
 * its commits: anything in `body` that asked for the lock would wait out the busy timeout
 * and fail with "database is locked".
 */
async function whileLocked(path: string, body: () => Promise<void>): Promise<void> {
  const writer = new Database(path);
  try {
    writer.prepare('BEGIN IMMEDIATE').run();
    await body();
  } finally {
    if (writer.inTransaction) writer.prepare('ROLLBACK').run();
    writer.close();
  }
}

/** An authorization of a writ's own ops, in session s1 as first opened. */
const request = (writ: WritRecord) => ({
  now: T0,
  writ,
  ops: writ.ops,
  sessionId: 's1',
  sessionVersion: 0,
});

describe('sqlite: faults and durability', () => {
  for (const [name, options] of variants) {
    it(`${name}: a step that fails half way leaves no trace, and its neighbours commit`, async () => {
      const store = sqliteStore({ ...options, path: freshPath() });
      try {
        // The middle step's writ cannot be stored (a BigInt is not JSON): its budget hold is
        // written first, then the writ fails. With group commit all three share one
        // transaction, so the failure must roll back to the step's own savepoint.
        const results = await Promise.allSettled([
          store.authorize(request(writRecord('w-1', [hold('spend', 10)]))),
          store.authorize(request(writRecord('w-2', [hold('spend', 20)], [10n]))),
          store.authorize(request(writRecord('w-3', [hold('spend', 30)]))),
        ]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
        expect(await store.listBudgets(T0)).toEqual([
          { key: 'spend', limit: 100, spent: 0, held: 40, remaining: 60, windowEnd: null },
        ]);
        await expect(store.settle({ now: T0, writId: 'w-2', status: 'failed' })).rejects.toThrow(
          'unknown writ',
        );
      } finally {
        await store.close();
      }
    });

    it(`${name}: state survives closing and reopening the file`, async () => {
      const path = freshPath();
      const clock = manualClock(T0);
      const first = sqliteStore({ ...options, path });
      const w1 = createWrit({ policy: PAY_POLICY, store: first, clock, ids: sequentialIds() });
      await w1.sessions.open('s1', { team: 'a' });
      const done = await w1.authorize(pay(10, 'k1'));
      await w1.settle(done.writ!, { status: 'succeeded', result: { ok: 1 } });
      const open = await w1.authorize(pay(20, 'k2'));
      const asked = await w1.authorize(pay(60, 'k3'));
      await w1.approvals.approve(asked.approval!.id, { approver: 'alice' });
      const before = {
        budgets: await w1.budgets(),
        sessions: await w1.sessions.list(),
        approvals: await w1.approvals.list(),
      };
      await first.close();

      const second = sqliteStore({ ...options, path });
      // Ids must not repeat those of the first run.
      const seq = sequentialIds();
      const ids = { next: (kind: string) => `${seq.next(kind)}-reopened` };
      const w2 = createWrit({ policy: PAY_POLICY, store: second, clock, ids });
      try {
        expect({
          budgets: await w2.budgets(),
          sessions: await w2.sessions.list(),
          approvals: await w2.approvals.list(),
        }).toEqual(before);
        const replay = await w2.authorize(pay(10, 'k1'));
        expect(replay.outcome).toBe('replay');
        expect(replay.result).toEqual({ ok: 1 });
        expect((await w2.authorize(pay(20, 'k2'))).reasons[0]?.code).toBe('IDEMPOTENCY_IN_FLIGHT');
        expect((await w2.authorize(pay(60, 'k3'))).outcome).toBe('allow');
        const settled = await w2.settle(open.writ!, { status: 'succeeded', cost: 15 });
        expect(settled.writ.fencing).toEqual({ slots: 2 });
        expect((await w2.budgets())[0]).toMatchObject({ spent: 25, held: 60 });
      } finally {
        await second.close();
      }
    });

    it(`${name}: two connections to one file see each other's commits at once`, async () => {
      // Each store caches the records it has read; what another connection commits (another
      // process, the CLI deciding an approval) must still be seen by the very next step.
      const path = freshPath();
      const clock = manualClock(T0);
      const seqA = sequentialIds();
      const seqB = sequentialIds();
      const a = createWrit({
        policy: PAY_POLICY,
        store: sqliteStore({ ...options, path }),
        clock,
        ids: seqA,
      });
      const b = createWrit({
        policy: PAY_POLICY,
        store: sqliteStore({ ...options, path }),
        clock,
        ids: { next: (kind) => `${seqB.next(kind)}-b` },
      });
      try {
        // Both read the budget (and cache it) before either spends.
        expect((await a.budgets()).length).toBe(0);
        const first = await a.authorize(pay(40, 'k1'));
        expect((await b.budgets())[0]).toMatchObject({ held: 40, remaining: 60 });
        const second = await b.authorize(pay(40, 'k2'));
        expect(second.outcome).toBe('allow');
        // a's cached budget is stale: its next step must see b's hold and refuse.
        const third = await a.authorize(pay(40, 'k3'));
        expect(third.reasons[0]).toMatchObject({ code: 'BUDGET_EXHAUSTED', remaining: 20 });
        await b.settle(first.writ!, { status: 'succeeded', result: { paid: 40 } });
        const replay = await a.authorize(pay(40, 'k1'));
        expect(replay).toMatchObject({ outcome: 'replay', result: { paid: 40 } });
        // An approval decided through the other connection is honoured on the next try.
        const asked = await a.authorize(pay(60, 'k4'));
        expect(asked.outcome).toBe('approval_required');
        await b.approvals.approve(asked.approval!.id, { approver: 'alice' });
        expect((await a.approvals.get(asked.approval!.id))?.status).toBe('approved');
        await a.settle(second.writ!, { status: 'cancelled' });
        expect((await a.authorize(pay(60, 'k4'))).outcome).toBe('allow');
        expect(await a.budgets()).toEqual(await b.budgets());
      } finally {
        await a.close();
        await b.close();
      }
    });
  }
});

describe('sqlite: group commit', () => {
  it('a transaction that fails runs its steps again one by one, so only the bad one fails', async () => {
    // The middle step's record is not JSON, which shows only when the group is written; the
    // steps around it must still commit, each in a transaction of its own.
    const store = sqliteStore({ synchronous: 'FULL', groupCommit: true, path: freshPath() });
    try {
      const results = await Promise.allSettled([
        store.authorize(request(writRecord('w-1', [hold('spend', 10)]))),
        store.authorize(request(writRecord('w-2', [hold('spend', 20)], [10n]))),
        store.authorize(request(writRecord('w-3', [hold('spend', 30)]))),
        store.settle({ now: T0, writId: 'w-1', status: 'succeeded' }),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'rejected',
        'fulfilled',
        'fulfilled',
      ]);
      expect(await store.listBudgets(T0)).toEqual([
        { key: 'spend', limit: 100, spent: 10, held: 30, remaining: 60, windowEnd: null },
      ]);
    } finally {
      await store.close();
    }
  });
});

describe('sqlite: the decision index', () => {
  it('finds every decision, including those another connection logged', async () => {
    const path = freshPath();
    const clock = manualClock(T0);
    const seqA = sequentialIds();
    const seqB = sequentialIds();
    const a = createWrit({ policy: PAY_POLICY, store: sqliteStore({ path }), clock, ids: seqA });
    const b = createWrit({
      policy: PAY_POLICY,
      store: sqliteStore({ path }),
      clock,
      ids: { next: (kind) => `${seqB.next(kind)}-b` },
    });
    try {
      const first = await a.authorize(pay(10, 'k1'));
      await a.settle(first.writ!, { status: 'succeeded' });
      expect((await a.store.findDecision(first.id))?.decision?.id).toBe(first.id);
      // Logged after a's index caught up, by the other connection, then by a again.
      const second = await b.authorize(pay(20, 'k2'));
      const third = await a.authorize(pay(500, 'k3'));
      for (const d of [first, second, third]) {
        const entry = await a.store.findDecision(d.id);
        expect(entry).toMatchObject({
          kind: 'decision',
          decision: { id: d.id, outcome: d.outcome },
        });
      }
      expect(await a.store.findDecision('dec-unknown')).toBeUndefined();
      expect((await b.store.findDecision(third.id))?.seq).toBe(4);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses an index edited to find a decision at another entry', async () => {
    const path = freshPath();
    const w = createWrit({
      policy: PAY_POLICY,
      store: sqliteStore({ path }),
      clock: manualClock(T0),
      ids: sequentialIds(),
    });
    const first = await w.authorize(pay(10, 'k1'));
    await w.settle(first.writ!, { status: 'succeeded' });
    const second = await w.authorize(pay(20, 'k2'));
    // Indexed now: the look-up trusts the rows from here on.
    expect((await w.store.findDecision(second.id))?.seq).toBe(3);
    await w.close();
    for (const [seq, which] of [
      [3, `decision ${second.id}`],
      [2, 'a settlement entry'],
    ] as const) {
      const db = new Database(path);
      db.prepare('UPDATE decision SET seq = ? WHERE id = ?').run(seq, first.id);
      db.close();
      const store = sqliteStore({ path });
      try {
        await expect(store.findDecision(first.id)).rejects.toMatchObject({
          code: 'STORE_FAILURE',
          message: `the store's decision index is wrong: it finds ${first.id} at log entry ${seq}, which is ${which}`,
        });
      } finally {
        await store.close();
      }
    }
  });
});

/**
 * Budget `spend` (limit 100) as versions before this one stored it: holds and captured
 * expiries in objects keyed by writ id.
 */
function oldBudgetRow(
  spent: number,
  holds: Record<string, unknown> = {},
  expiredCaptures: Record<string, number> = {},
): string {
  return JSON.stringify({
    key: 'spend',
    limit: 100,
    windowEnd: null,
    spent,
    holds,
    expiredCaptures,
  });
}

describe('sqlite: decision look-ups and the write lock', () => {
  it('a look-up that finds the index current waits for no writer', async () => {
    const path = freshPath();
    const store = sqliteStore({ path });
    const w = payEngine(store);
    try {
      const decided = await w.authorize(pay(10, 'k1'));
      await w.settle(decided.writ!, { status: 'succeeded' });
      expect((await store.findDecision(decided.id))?.decision?.id).toBe(decided.id);
      await whileLocked(path, async () => {
        expect((await store.findDecision(decided.id))?.decision?.id).toBe(decided.id);
      });
    } finally {
      await store.close();
    }
  });
});

describe('sqlite: readers beside writers', () => {
  it('opens an existing store and reads it while another process holds the write lock', async () => {
    const path = freshPath();
    await sqliteStore({ path }).close();
    // Opening used to take the write lock to migrate, migrations or not.
    await whileLocked(path, async () => {
      const store = sqliteStore({ path });
      try {
        expect(await store.listBudgets(T0)).toEqual([]);
        expect(await store.verifyLog()).toEqual({ ok: true, entries: 0 });
      } finally {
        await store.close();
      }
    });
  });

  it('finds decisions across batches of the index, some with no decision in them', async () => {
    const path = freshPath();
    const store = sqliteStore({ path });
    const w = payEngine(store);
    try {
      const first = await w.authorize(pay(1, 'k1'));
      // 2,500 session entries: more than two batches of 1,000 without a decision.
      for (let i = 0; i < 2_500; i++) await w.sessions.open(`s-${i}`);
      const last = await w.authorize(pay(1, 'k2'));
      expect((await store.findDecision(first.id))?.seq).toBe(1);
      expect((await store.findDecision(last.id))?.seq).toBe(2_502);
    } finally {
      await store.close();
    }
  }, 30_000);

  it('verifies a log while another process appends to it', async () => {
    const path = freshPath();
    await sqliteStore({ path }).close();
    const child = storeProcess(
      `const store = m.sqliteStore({ path: process.argv[1] });
      console.log('writing');
      const until = Date.now() + 2_000;
      for (let i = 0; Date.now() < until; i++) await store.putSession('s' + i, {}, 0);
      await store.close();`,
      path,
    );
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const store = sqliteStore({ path });
    const reports = [];
    try {
      // Rows and head read apart saw entries appended in between as a truncated log.
      for (let i = 0; i < 20; i++) reports.push(await store.verifyLog());
    } finally {
      await store.close();
    }
    expect(await exited).toBe(0);
    expect(reports.filter((r) => !r.ok)).toEqual([]);
    expect(reports.at(-1)).toMatchObject({ ok: true });
  }, 30_000);
});

describe('sqlite: waiting for another connection', () => {
  it.each([
    ['one transaction per step', 1, { synchronous: 'NORMAL' }],
    ['one transaction per step', 20, { synchronous: 'NORMAL' }],
    ['group commit', 20, { synchronous: 'FULL' }],
  ] as const)(
    'waits for its lock on timers, so the process runs meanwhile (%s, %s waiting)',
    async (_, waiting, options) => {
      const path = freshPath();
      const store = sqliteStore({ path, ...options });
      const w = payEngine(store);
      const other = new Database(path);
      try {
        // A first decision stores the policy, so that every later one waits on its own.
        await w.settle((await w.authorize(pay(1, 'first'))).writ!, { status: 'succeeded' });
        other.prepare('BEGIN IMMEDIATE').run();
        const decided = Promise.all(
          Array.from({ length: waiting }, (_, i) => w.authorize(pay(1, `k${i}`))),
        );
        // SQLite's own wait would block this thread until the lock was free, and this timer —
        // the only thing that frees it — could never fire: the calls would fail after 5 s.
        // Many waiters each retrying in SQLite's short wait would block it almost as much.
        let ticks = 0;
        const ticking = setInterval(() => ticks++, 10);
        await pause(1_000);
        other.prepare('COMMIT').run();
        const decisions = await decided;
        clearInterval(ticking);
        // About 100 ticks in the second when nothing blocks; 20 waiters each retrying in
        // SQLite's busy wait left 4. The bound is loose: this is about blocking, not speed.
        expect(ticks).toBeGreaterThan(30);
        // Decided on the policy, none on the store: five slots, so five allowed.
        expect(decisions.flatMap((d) => d.reasons.map((r) => r.code))).not.toContain(
          'STORE_UNAVAILABLE',
        );
        expect(decisions.filter((d) => d.outcome === 'allow')).toHaveLength(Math.min(waiting, 5));
      } finally {
        if (other.inTransaction) other.prepare('ROLLBACK').run();
        other.close();
        await store.close();
      }
    },
  );
});

describe('sqlite: waiting for another connection, to the end', () => {
  it('fails every waiting step with STORE_FAILURE when the store closes', async () => {
    const path = freshPath();
    const store = sqliteStore({ path });
    await store.putSession('s0', {}, T0);
    await whileLocked(path, async () => {
      const waiting = [1, 2, 3].map((i) => store.putSession(`s${i}`, {}, T0));
      await pause(100);
      await store.close();
      const outcomes = await Promise.allSettled(waiting);
      expect(outcomes.map((o) => o.status === 'rejected' && (o.reason as WritError).code)).toEqual([
        'STORE_FAILURE',
        'STORE_FAILURE',
        'STORE_FAILURE',
      ]);
    });
  });

  it('gives up on every waiting step at once, without holding the thread', async () => {
    const path = freshPath();
    const store = sqliteStore({ path });
    await store.putSession('s0', {}, T0);
    try {
      await whileLocked(path, async () => {
        const waiting = Array.from({ length: 40 }, (_, i) => store.putSession(`s${i}`, {}, T0));
        let last = performance.now();
        let longest = 0;
        const ticking = setInterval(() => {
          const now = performance.now();
          longest = Math.max(longest, now - last);
          last = now;
        }, 10);
        const outcomes = await Promise.allSettled(waiting);
        clearInterval(ticking);
        // Each of 40 trying once more past its time held the thread 40 × 20 ms; the bound is
        // loose, about blocking, not speed.
        expect(longest).toBeLessThan(400);
        for (const outcome of outcomes) {
          expect(outcome.status).toBe('rejected');
          expect((outcome as PromiseRejectedResult).reason).toMatchObject({
            code: 'STORE_FAILURE',
            message: expect.stringContaining("held the SQLite store's write lock"),
          });
        }
      });
    } finally {
      await store.close();
    }
  }, 20_000);
});

describe('sqlite: damaged log records', () => {
  it('refuses a decision entry without an id, and a log head that is no head', async () => {
    const path = freshPath();
    const store = sqliteStore({ path });
    const w = payEngine(store);
    const first = await w.authorize(pay(1, 'k1'));
    const second = await w.authorize(pay(1, 'k2'));
    await store.close();
    const db = new Database(path);
    db.prepare('UPDATE log SET entry = ? WHERE seq = 1').run(
      JSON.stringify({ seq: 1, kind: 'decision', decision: { id: { a: 1 } } }),
    );
    db.close();
    const reopened = sqliteStore({ path });
    try {
      await expect(reopened.findDecision(second.id)).rejects.toMatchObject({
        code: 'STORE_FAILURE',
        message: "the store's log entry 1 has no decision id",
      });
      expect(first.id).not.toBe(second.id);
      for (const head of ['null', '1', '"x"', '{}']) {
        const edit = new Database(path);
        edit.prepare("UPDATE shared SET value = ? WHERE kind = 'log-head'").run(head);
        edit.close();
        await expect(reopened.verifyLog()).rejects.toMatchObject({ code: 'STORE_FAILURE' });
      }
    } finally {
      await reopened.close();
    }
  });
});

describe('sqlite: budget rows stay small', () => {
  it('drops captures of abandoned holds once they are final', async () => {
    const path = freshPath();
    const clock = manualClock(T0);
    const store = sqliteStore({ path });
    const w = createWrit({
      policy: [
        'version: 1',
        'tools:',
        '  pay:',
        '    - allow: true',
        'budgets:',
        '  spend:',
        '    limit: 1000000',
        '    window: lifetime',
        '    hold_ttl: 1m',
        '    on_expiry: capture',
        '',
      ].join('\n'),
      store,
      clock,
      ids: sequentialIds(),
    });
    const rowBytes = () => budgetRowValue<number>(path, 'length(value)');
    try {
      // 500 calls whose agents died without settling: each hold is captured at its expiry.
      for (let i = 0; i < 500; i++) await w.authorize(pay(1, `k-${i}`));
      clock.advance(60_000);
      await w.authorize(pay(1, 'touch-1'));
      const carrying = rowBytes();
      expect(carrying).toBeGreaterThan(10_000);
      // A day on, no late settle can correct them: the row sheds them at its next change.
      clock.advance(24 * 3_600_000);
      await w.authorize(pay(1, 'touch-2'));
      expect(rowBytes()).toBeLessThan(1_000);
      expect((await w.budgets())[0]).toMatchObject({ spent: 501, held: 1 });
    } finally {
      await store.close();
    }
  });
});

describe('sqlite: opening', () => {
  it("leaves another program's database as it was", () => {
    const dir = dirname(freshPath());
    const theirs = join(dir, 'app.db');
    const app = new Database(theirs);
    app.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)');
    app.close();
    const empty = join(dir, 'empty-but-versioned.db');
    const other = new Database(empty);
    other.pragma(`user_version = ${MIGRATIONS.length}`);
    other.close();
    for (const [path, message] of [
      [theirs, 'it is not a writ store (its tables: users; schema version 0)'],
      [empty, `it is not a writ store (its tables: none; schema version ${MIGRATIONS.length})`],
    ] as const) {
      expect(() => sqliteStore({ path })).toThrow(
        `cannot open the SQLite store ${path}: ${message}`,
      );
    }
    const after = new Database(theirs, { readonly: true });
    try {
      expect(after.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(
        after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all(),
      ).toEqual(['users']);
    } finally {
      after.close();
    }
  });

  it('creates one store when several processes open a new file at once', async () => {
    const path = freshPath();
    // Each child loads, then waits for the same moment to open, so the opens overlap.
    const opener = `setTimeout(async () => { await m.sqliteStore({ path: process.argv[1] }).close(); }, Number(process.argv[2]) - Date.now())`;
    const at = String(Date.now() + 3_000);
    const runs = await Promise.all(
      Array.from({ length: 6 }, () => runStoreProcess(opener, path, at)),
    );
    expect(runs.map(({ code, stderr }) => ({ code, stderr }))).toEqual(
      runs.map(() => ({ code: 0, stderr: '' })),
    );
    const store = sqliteStore({ path });
    expect(await store.listBudgets(T0)).toEqual([]);
    await store.close();
  }, 30_000);

  it('refuses options that would quietly weaken durability or open another file', () => {
    const path = freshPath();
    const cases: [object, RegExp][] = [
      [{ path, synchronous: 'full' }, /synchronous must be 'NORMAL' or 'FULL', not "full"/],
      [{ path, synchronous: 'OFF' }, /not "OFF"/],
      [{ path, groupCommit: 'yes' }, /groupCommit must be true or false/],
      [{ path: '' }, /path must be a file path/],
      // A misspelt key would have opened ./.writ/writ.db.
      [{ pth: path }, /there is no option pth; the options are path, synchronous, groupCommit/],
    ];
    for (const [options, message] of cases) {
      expect(() => sqliteStore(options as SqliteStoreOptions)).toThrow(message);
      expect(() => sqliteStore(options as SqliteStoreOptions)).toThrow(WritError);
    }
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a path that names a directory, where SQLite would open a file beside it', () => {
    const path = freshPath();
    const dir = dirname(path);
    // `new/` would have been opened as the file `new`, which `new/` then does not find.
    for (const named of [`${dir}/new/`, dir, `${dir}/`, `${dir}/.`, `${dir}/..`]) {
      expect(() => sqliteStore({ path: named }), named).toThrow(
        `sqliteStore: path must name the store's file, not a directory: ${JSON.stringify(named)}`,
      );
    }
    expect(existsSync(join(dir, 'new'))).toBe(false);
  });

  it('closed while a group waits for another process, fails its steps as closed', async () => {
    const path = freshPath();
    const store = sqliteStore({ path, synchronous: 'FULL', groupCommit: true });
    await store.putSession('s0', {}, T0);
    await whileLocked(path, async () => {
      const queued = store.putSession('s1', {}, T0).then(
        () => undefined,
        (e: unknown) => e,
      );
      await pause(20);
      await store.close();
      const error = await queued;
      expect(error).toBeInstanceOf(WritError);
      expect((error as WritError).code).toBe('STORE_FAILURE');
      expect((error as WritError).message).toBe('the sqlite store is closed');
    });
    // Nothing of it was committed.
    const reopened = sqliteStore({ path });
    expect((await reopened.listSessions(T0)).map((s) => s.id)).toEqual(['s0']);
    await reopened.close();
  });

  it('refuses what cannot be a writ store with a STORE_FAILURE that names it', () => {
    const dir = dirname(freshPath());
    const notADatabase = join(dir, 'notes.txt');
    writeFileSync(notADatabase, 'meeting notes, not a database\n');
    const newer = join(dir, 'newer.db');
    const db = new Database(newer);
    db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    db.close();
    const cases: [string, string][] = [
      [notADatabase, 'file is not a database'],
      [newer, `it has schema version ${MIGRATIONS.length + 1}, written by a newer writ`],
    ];
    for (const [path, why] of cases) {
      let thrown: unknown;
      try {
        sqliteStore({ path });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(WritError);
      expect(thrown).toMatchObject({ code: 'STORE_FAILURE', data: { path } });
      expect((thrown as Error).message).toContain(`cannot open the SQLite store ${path}: ${why}`);
    }
  });
});

describe('sqlite: schema migrations', () => {
  it('moves the records of a version 2 database where this version keeps them', async () => {
    const path = freshPath();
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.transaction(() => {
      for (const step of MIGRATIONS.slice(0, 2)) old.exec(step);
      old.pragma('user_version = 2');
      const put = old.prepare('INSERT INTO state (kind, key, value) VALUES (?, ?, ?)');
      put.run('budget', 'spend', oldBudgetRow(25));
      // A settled writ as version 2 kept it: the whole record, `settled` added.
      const settledWrit = {
        ...writRecord('w-old', [hold('spend', 5)]),
        settled: { at: T0, status: 'succeeded' },
      };
      put.run('writ', 'w-old', JSON.stringify(settledWrit));
      put.run('decision-index', 'dec-old', '7');
      put.run(
        'session',
        's1',
        JSON.stringify({ id: 's1', attrs: {}, opened: true, labels: [], version: 1 }),
      );
    })();
    old.close();

    const store = sqliteStore({ path });
    try {
      expect(await store.listBudgets(T0)).toEqual([
        { key: 'spend', limit: 100, spent: 25, held: 0, remaining: 75, windowEnd: null },
      ]);
      expect((await store.getSession('s1', T0))?.version).toBe(1);
      await expect(store.settle({ now: T0, writId: 'w-old', status: 'failed' })).rejects.toThrow(
        'already settled (succeeded)',
      );
    } finally {
      await store.close();
    }
    const reopened = new Database(path, { readonly: true });
    try {
      expect(reopened.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      const kinds = (table: string) =>
        reopened.prepare(`SELECT kind FROM ${table} ORDER BY kind`).pluck().all();
      expect({ shared: kinds('shared'), state: kinds('state') }).toEqual({
        shared: ['budget'],
        state: ['session', 'writ'],
      });
      expect(reopened.prepare('SELECT id, seq FROM decision').all()).toEqual([
        { id: 'dec-old', seq: 7 },
      ]);
    } finally {
      reopened.close();
    }
  });
});

describe('sqlite: schema migrations, version 4', () => {
  it("renames an unsettled writ's labelsOnSuccess to labels, which its settle applies", async () => {
    const path = freshPath();
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.transaction(() => {
      for (const step of MIGRATIONS.slice(0, 4)) old.exec(step);
      old.pragma('user_version = 4');
      const { labels, ...rest } = writRecord('w-old', []);
      const put = old.prepare("INSERT INTO state (kind, key, value) VALUES ('writ', ?, ?)");
      put.run('w-old', JSON.stringify({ ...rest, labelsOnSuccess: ['untrusted-content'] }));
      // A settled writ keeps no labels: it is left as it is.
      put.run('w-done', JSON.stringify({ id: 'w-done', expiresAt: T0, settled: { at: T0 } }));
    })();
    old.close();

    const store = sqliteStore({ path });
    try {
      const settled = await store.settle({ now: T0, writId: 'w-old', status: 'failed' });
      expect(settled.labelsAdded).toEqual(['untrusted-content']);
      expect(settled.writ.labels).toEqual(['untrusted-content']);
      expect(settled.writ).not.toHaveProperty('labelsOnSuccess');
      expect((await store.getSession('s1', T0))?.labels).toEqual(['untrusted-content']);
    } finally {
      await store.close();
    }
    const reopened = new Database(path, { readonly: true });
    try {
      const done = reopened
        .prepare("SELECT value FROM state WHERE kind = 'writ' AND key = 'w-done'")
        .pluck()
        .get();
      expect(JSON.parse(done as string)).toEqual({
        id: 'w-done',
        expiresAt: T0,
        settled: { at: T0 },
      });
    } finally {
      reopened.close();
    }
  });
});

describe('sqlite: rows written by earlier versions', () => {
  it('drops a capture kept without an end when its writ settles after it is final', async () => {
    const path = freshPath();
    await sqliteStore({ path }).close();
    const captured = hold('spend', 3, 'capture');
    const old = new Database(path);
    try {
      old.prepare("INSERT INTO shared (kind, key, value) VALUES ('budget', 'spend', ?)").run(
        JSON.stringify({
          key: 'spend',
          limit: 100,
          windowEnd: null,
          spent: 3,
          holds: [],
          expiredCaptures: [{ writ: 'w-cap', amount: 3 }],
        }),
      );
      old
        .prepare("INSERT INTO state (kind, key, value) VALUES ('writ', 'w-cap', ?)")
        .run(JSON.stringify(writRecord('w-cap', [captured])));
    } finally {
      old.close();
    }
    const store = sqliteStore({ path });
    try {
      // Two days on, the capture is final: the settle charges nothing more, and the entry,
      // which no `until` would ever have removed, goes.
      await store.settle({
        now: T0 + 2 * 86_400_000,
        writId: 'w-cap',
        status: 'succeeded',
        cost: 9,
      });
      expect((await store.listBudgets(T0))[0]).toMatchObject({ spent: 3, held: 0 });
      const value = budgetRowValue<string>(path, 'value');
      expect(JSON.parse(value).expiredCaptures).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('reads a rate bucket kept as a fractional time, rounding it up', async () => {
    const path = freshPath();
    await sqliteStore({ path }).close();
    const old = new Database(path);
    try {
      old
        .prepare("INSERT INTO shared (kind, key, value) VALUES ('rate', 'calls', ?)")
        .run(JSON.stringify({ tat: T0 + 0.4 }));
    } finally {
      old.close();
    }
    // 6/1s, no burst: the bucket is due at T0 + 0.4 ms, so the first whole ms is T0 + 1.
    const rate: PlanOp = {
      kind: 'rate',
      invariant: 'rate_limits.calls',
      key: 'calls',
      count: 6,
      periodMs: 1_000,
      burst: 1,
    };
    const store = sqliteStore({ path });
    try {
      expect(await store.authorize(request(writRecord('w-1', [rate])))).toMatchObject({
        status: 'refused',
        reason: { code: 'RATE_LIMITED', resetAt: new Date(T0 + 1).toISOString() },
      });
      expect(
        await store.authorize({ ...request(writRecord('w-2', [rate])), now: T0 + 1 }),
      ).toMatchObject({ status: 'granted' });
    } finally {
      await store.close();
    }
  });

  it('captures an old-shape hold at its expiry, and a late settle corrects it', async () => {
    const path = freshPath();
    await sqliteStore({ path }).close();
    const old = new Database(path);
    try {
      const capture = { amount: 3, expiresAt: T0 + 1_000, onExpiry: 'capture' };
      old
        .prepare("INSERT INTO shared (kind, key, value) VALUES ('budget', 'spend', ?)")
        .run(oldBudgetRow(5, { 'w-cap': capture }));
      old
        .prepare("INSERT INTO state (kind, key, value) VALUES ('writ', 'w-cap', ?)")
        .run(JSON.stringify(writRecord('w-cap', [hold('spend', 3)])));
    } finally {
      old.close();
    }
    const store = sqliteStore({ path });
    try {
      expect((await store.listBudgets(T0))[0]).toMatchObject({ spent: 5, held: 3 });
      expect((await store.listBudgets(T0 + 2_000))[0]).toMatchObject({ spent: 8, held: 0 });
      await store.settle({ now: T0 + 2_000, writId: 'w-cap', status: 'succeeded', cost: 1 });
      expect((await store.listBudgets(T0 + 2_000))[0]).toMatchObject({ spent: 6, held: 0 });
    } finally {
      await store.close();
    }
  });

  it('reads holds, captures and leases kept as objects by writ id, and settles them', async () => {
    const path = freshPath();
    await sqliteStore({ path }).close();
    const slot: PlanOp = {
      kind: 'concurrency',
      invariant: 'concurrency.slots',
      key: 'slots',
      max: 1,
      leaseMs: 60_000,
    };
    const old = new Database(path);
    try {
      const put = old.prepare('INSERT INTO shared (kind, key, value) VALUES (?, ?, ?)');
      put.run(
        'budget',
        'spend',
        oldBudgetRow(
          5,
          { 'w-old': { amount: 10, expiresAt: T0 + 60_000, onExpiry: 'release' } },
          { 'w-gone': 7 },
        ),
      );
      put.run(
        'lease',
        'slots',
        JSON.stringify({ fence: 3, leases: { 'w-old': { expiresAt: T0 + 60_000, token: 3 } } }),
      );
      const putWrit = old.prepare("INSERT INTO state (kind, key, value) VALUES ('writ', ?, ?)");
      putWrit.run('w-old', JSON.stringify(writRecord('w-old', [hold('spend', 10), slot])));
      putWrit.run('w-gone', JSON.stringify(writRecord('w-gone', [hold('spend', 7)])));
    } finally {
      old.close();
    }

    const store = sqliteStore({ path });
    try {
      expect(await store.listBudgets(T0)).toEqual([
        { key: 'spend', limit: 100, spent: 5, held: 10, remaining: 85, windowEnd: null },
      ]);
      // The old lease still holds the one slot.
      expect(await store.authorize(request(writRecord('w-new', [slot])))).toMatchObject({
        status: 'refused',
        reason: { code: 'CONCURRENCY_LIMIT' },
      });
      await store.settle({ now: T0, writId: 'w-old', status: 'succeeded', cost: 12 });
      expect(await store.listBudgets(T0)).toEqual([
        { key: 'spend', limit: 100, spent: 17, held: 0, remaining: 83, windowEnd: null },
      ]);
      // A late settle of the writ whose hold was captured at expiry corrects the amount.
      await store.settle({ now: T0, writId: 'w-gone', status: 'succeeded', cost: 2 });
      expect((await store.listBudgets(T0))[0]).toMatchObject({ spent: 12, held: 0 });
      expect(await store.authorize(request(writRecord('w-next', [slot])))).toEqual({
        status: 'granted',
        fencing: { slots: 4 },
      });
    } finally {
      await store.close();
    }
  });
});

describe('sqlite: WAL checkpoints from a worker thread', () => {
  const walBytes = (path: string) => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);

  it('checkpoints the WAL from the worker, so it starts over, and closes with it', async () => {
    const path = freshPath();
    const writ = payEngine(sqliteStore({ path }));
    const initial = statSync(path).size;
    const decide = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        const decision = await writ.authorize(pay(0.001, `k-${i}`));
        expect(decision.outcome).toBe('allow');
        await writ.settle(decision.writ!, { status: 'succeeded', result: { i } });
      }
    };
    // 600 commits: a few thousand pages, below the 10,000 at which SQLite checkpoints by
    // itself once the worker runs. Only the worker can move them into the database file.
    await decide(0, 300);
    for (let waited = 0; statSync(path).size <= initial + 2 ** 18 && waited < 10_000; waited += 50)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(statSync(path).size).toBeGreaterThan(initial + 2 ** 18);
    // Checkpointed to its end, the WAL starts over at the next commit instead of growing:
    // 600 more commits leave it about as long as the first 600 did, not twice as long.
    const firstRound = walBytes(path);
    await decide(300, 300);
    expect(walBytes(path)).toBeLessThan(firstRound * 1.5);
    await writ.close();
    // The store's own connection closed last, so it checkpointed what was left and removed
    // the WAL: the worker's connection was closed before it.
    expect(existsSync(`${path}-wal`)).toBe(false);

    const reopened = sqliteStore({ path });
    try {
      expect(await reopened.verifyLog()).toMatchObject({ ok: true, entries: 1_200 });
      expect((await reopened.listBudgets(T0))[0]).toMatchObject({ spent: 0.6, held: 0 });
    } finally {
      await reopened.close();
    }
  }, 60_000);

  it('starts no worker again while closing, and leaves no connection open', async () => {
    const path = freshPath();
    const store = sqliteStore({ path });
    const writ = payEngine(store);
    // 200 commits: the worker runs, and the next ask is due at the 256th.
    for (let i = 0; i < 100; i++)
      await writ.settle((await writ.authorize(pay(0.001, `k-${i}`))).writ!, { status: 'failed' });
    // Decisions that commit while close waits for the worker used to start another one,
    // which no one closed: asked to checkpoint, it held the file open for good.
    const closing = store.close();
    await Promise.allSettled(
      Array.from({ length: 70 }, (_, i) => writ.authorize(pay(0.001, `late-${i}`))),
    );
    await closing;
    // Long enough for a worker started meanwhile to have opened the file.
    await pause(500);
    expect(existsSync(`${path}-wal`)).toBe(false);
    const other = new Database(path);
    try {
      expect(other.pragma('journal_mode = DELETE', { simple: true })).toBe('delete');
    } finally {
      other.close();
    }
  });

  it.each([
    ['never closes its store', ''],
    ['closes its store', 'await store.close();'],
  ])(
    'lets a process that %s finish',
    async (_, close) => {
      const path = freshPath();
      // 200 commits start the worker; nothing else keeps the event loop alive.
      const run = await runStoreProcess(
        `const store = m.sqliteStore({ path: process.argv[1] });
        for (let i = 0; i < 200; i++) await store.putSession('s' + i, {}, 0);
        ${close}
        console.log('done');`,
        path,
      );
      expect(run).toEqual({ code: 0, stdout: 'done\n', stderr: '' });
      const store = sqliteStore({ path });
      try {
        expect(await store.listSessions(T0)).toHaveLength(200);
      } finally {
        await store.close();
      }
    },
    30_000,
  );
});
