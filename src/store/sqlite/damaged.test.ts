import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../core/clock.js';
import type { PlanOp } from '../../core/plan.js';
import { createWrit } from '../../engine/writ.js';
import type { AuthorizeRequest, Store, WritRecord } from '../types.js';
import { type SqliteStoreOptions, sqliteStore } from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function freshPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'writ-damaged-'));
  dirs.push(dir);
  return join(dir, 'writ.db');
}

const T0 = Date.parse('2026-11-23T10:00:00.000Z');

const POLICY = [
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
  'rate_limits:',
  '  calls:',
  '    rate: 100/1m',
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

const engine = (store: Store) =>
  createWrit({ policy: POLICY, store, clock: manualClock(T0), ids: sequentialIds() });

/**
 * A store at `path` holding one of every kind of record: an open session, a settled and an
 * open writ, budget, rate, lease, idempotency claims, an approval request, the policy and
 * the log. Returns the ids it made.
 */
async function storeWithEverything(path: string) {
  const store = sqliteStore({ path });
  const w = engine(store);
  await w.sessions.open('s1', { user: 'u' });
  const settled = await w.authorize(pay(5, 'k1'));
  await w.settle(settled.writ!, { status: 'succeeded', result: { ok: true } });
  const open = await w.authorize(pay(7, 'k2'));
  const asks = await w.authorize(pay(60, 'k3'));
  await store.close();
  return { decision: settled.id, openWrit: open.writ!.id, approval: asks.approval!.id };
}

/** Replaces the value of every stored record of `kind` with `value`; returns a key of one. */
function damage(path: string, kind: string, value: string): string {
  const db = new Database(path);
  try {
    const table = ['budget', 'rate', 'lease', 'log-head'].includes(kind) ? 'shared' : 'state';
    const changed = db.prepare(`UPDATE ${table} SET value = ? WHERE kind = ?`).run(value, kind);
    expect(changed.changes, kind).toBeGreaterThan(0);
    return db
      .prepare<[string], string>(`SELECT key FROM ${table} WHERE kind = ? LIMIT 1`)
      .pluck()
      .get(kind)!;
  } finally {
    db.close();
  }
}

describe('sqlite: records of the wrong shape', () => {
  it('are a STORE_FAILURE naming the record, on every read that parses one', async () => {
    const path = freshPath();
    const ids = await storeWithEverything(path);
    const reads: [string, string, (s: Store, key: string) => Promise<unknown>, RegExp][] = [
      ['budget', '[1]', (s) => s.listBudgets(T0), /budget record spend is damaged: it is/],
      [
        'budget',
        '{"key":"spend","limit":100,"windowEnd":null,"spent":0,"holds":[{"writ":"w"}],"expiredCaptures":[]}',
        (s) => s.listBudgets(T0),
        /holds\[0\]\.amount is missing, not an amount ≥ 0/,
      ],
      ['session', '{"id":"s1"}', (s) => s.getSession('s1', T0), /session record s1 is damaged/],
      ['session', 'null', (s) => s.listSessions(T0), /session record s1 is damaged: it is null/],
      ['writ', '{}', (s) => s.listOpenWrits(T0), /writ record \S+ is damaged: id is missing/],
      [
        'writ',
        '{"id":"x","expiresAt":1,"settled":{"at":1,"status":"done"}}',
        (s) => s.settle({ now: T0, writId: ids.openWrit, status: 'failed' }),
        /settled\.status is "done", not "succeeded" or "failed" or "cancelled"/,
      ],
      ['approval', '{"id":3}', (s) => s.getApproval(ids.approval, T0), /approval record \S+ is/],
      ['approval', '[]', (s) => s.listApprovals(T0), /approval record \S+ is damaged/],
      [
        'approval-index',
        '{}',
        (s, key) => {
          const [a, policy, b, digest] = key.split(':');
          return s.findApproval(`${b}:${digest}`, `${a}:${policy}`, T0);
        },
        /approval-index record \S+ is damaged: it is \{\}, not a string/,
      ],
      ['policy', '{"a":1}', (s, key) => s.getPolicy(key), /policy record \S+ is damaged/],
      ['log-head', '{"seq":"1","hash":"x"}', (s) => s.logHead(), /log-head record head is/],
      [
        'idem',
        '1',
        (s, key) =>
          s.requestApproval({
            approval: {
              id: 'apr-idem',
              actionDigest: 'd',
              policyHash: 'p',
              action: {},
              requestedBy: 'agent',
              reasons: [],
              status: 'pending',
              createdAt: T0,
              expiresAt: T0 + 60_000,
            },
            claims: [idem(key)],
          }),
        /idem record \S+ is damaged/,
      ],
      ['rate', '{"tat":"soon"}', (s) => s.sweep(T0, 10), /rate record \S+ is damaged: tat is/],
      ['lease', '{"fence":1}', (s, key) => s.authorize(takeLease(key)), /lease record \S+ is/],
    ];
    for (const [kind, value, read, message] of reads) {
      const copy = freshPath();
      writeFileSync(copy, readFileSync(path));
      const key = damage(copy, kind, value);
      const store = sqliteStore({ path: copy });
      try {
        await expect(read(store, key), `${kind} ${value}`).rejects.toMatchObject({
          code: 'STORE_FAILURE',
          message: expect.stringMatching(message),
        });
      } finally {
        await store.close();
      }
    }
  });

  it('deny a decision that reads one (fail closed), even where its arithmetic would let it through', async () => {
    const budget = (fields: string) =>
      `{"key":"spend","limit":100,"windowEnd":null,${fields},"expiredCaptures":[]}`;
    // Each would compute as room: 100 - "x" is NaN, and 1 > NaN is false; JSON's 1e999 is
    // Infinity, and Infinity - Infinity is NaN; a negative amount makes room of its own;
    // a rate of 0 parts per millisecond multiplies the queue away.
    const cases: [string, string, string][] = [
      ['budget', budget('"spent":"x","holds":[]'), 'spent is "x", not an amount ≥ 0'],
      ['budget', budget('"spent":1e999,"holds":[]'), 'spent is Infinity, not an amount ≥ 0'],
      ['budget', budget('"spent":-500,"holds":[]'), 'spent is -500, not an amount ≥ 0'],
      [
        'budget',
        budget(
          '"spent":0,"holds":[{"writ":"w","amount":-1e999,"expiresAt":1e15,"onExpiry":"release"}]',
        ),
        'holds[0].amount is -Infinity, not an amount ≥ 0',
      ],
      ['rate', `{"tat":${T0 + 3_600_000},"frac":0,"per":0}`, 'per is 0, not a whole number ≥ 1'],
    ];
    for (const [kind, value, problem] of cases) {
      const path = freshPath();
      await storeWithEverything(path);
      damage(path, kind, value);
      const store = sqliteStore({ path });
      try {
        const decision = await engine(store).authorize(pay(1, 'k9'));
        expect(decision.outcome, value).toBe('deny');
        expect(decision.reasons, value).toEqual([
          expect.objectContaining({
            code: 'STORE_UNAVAILABLE',
            error: expect.stringMatching(
              new RegExp(
                `record \\S+ is damaged: ${problem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
              ),
            ),
          }),
        ]);
      } finally {
        await store.close();
      }
    }
  });
});

const idem = (key: string) => ({
  kind: 'idempotency' as const,
  invariant: 'idempotency.once',
  key,
  digest: 'd',
  ttlMs: 1,
  onExpiry: 'in_doubt' as const,
});

/** An authorization that takes a lease on `key`. */
const takeLease = (key: string): AuthorizeRequest => {
  const ops: PlanOp[] = [
    { kind: 'concurrency', invariant: 'concurrency.slots', key, max: 5, leaseMs: 60_000 },
  ];
  const writ: WritRecord = {
    id: 'w-lease',
    decisionId: 'dec-lease',
    actionDigest: 'd',
    sessionId: 's1',
    tool: 'pay',
    issuedAt: T0,
    expiresAt: T0 + 60_000,
    ops,
    labels: [],
    fencing: {},
  };
  return { now: T0, writ, ops, sessionId: 's1' };
};

/** Flips every byte of the file after its first page (the schema), as a failing disk might. */
function garble(path: string) {
  const bytes = readFileSync(path);
  for (let i = 4096; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0x5a;
  writeFileSync(path, bytes);
}

const variants: [string, SqliteStoreOptions][] = [
  ['one transaction per step', {}],
  ['group commit', { synchronous: 'FULL' }],
];

describe('sqlite: a file damaged on disk', () => {
  for (const [name, options] of variants) {
    it(`fails every call with a STORE_FAILURE naming the file, not the driver's error (${name})`, async () => {
      const path = freshPath();
      const ids = await storeWithEverything(path);
      garble(path);
      const store = sqliteStore({ ...options, path });
      const failure = {
        code: 'STORE_FAILURE',
        message: `the SQLite store ${path} failed: database disk image is malformed`,
      };
      try {
        const calls: [string, () => Promise<unknown>][] = [
          ['readLog', () => store.readLog(0, 10)],
          ['verifyLog', () => store.verifyLog()],
          ['findDecision', () => store.findDecision(ids.decision)],
          ['logHead', () => store.logHead()],
          ['listBudgets', () => store.listBudgets(T0)],
          ['listSessions', () => store.listSessions(T0)],
          ['getApproval', () => store.getApproval(ids.approval, T0)],
          ['sweep', () => store.sweep(T0, 10)],
          ['settle', () => store.settle({ now: T0, writId: ids.openWrit, status: 'failed' })],
          ['putSession', () => store.putSession('s2', {}, T0)],
          [
            'decideApproval',
            () => store.decideApproval(ids.approval, { approve: true, approver: 'bob' }, T0),
          ],
        ];
        for (const [call, run] of calls) await expect(run(), call).rejects.toMatchObject(failure);
        // The engine denies: a store that cannot answer never allows.
        const decision = await engine(store).authorize(pay(1, 'k9'));
        expect(decision.outcome).toBe('deny');
        expect(decision.reasons[0]).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      } finally {
        await store.close();
      }
    });
  }
});
