import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import type { PlanOp } from '../../src/core/plan.js';
import { createWrit } from '../../src/engine/writ.js';
import { type SqliteStoreOptions, sqliteStore } from '../../src/store/sqlite/index.js';
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

const variants: [string, SqliteStoreOptions][] = [
  ['sqlite (synchronous NORMAL)', { synchronous: 'NORMAL' }],
  ['sqlite (synchronous FULL, group commit)', { synchronous: 'FULL' }],
];

for (const [name, options] of variants) {
  describeStoreConformance(name, () => sqliteStore({ ...options, path: freshPath() }));
}

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const hold = (key: string, amount: number): PlanOp => ({
  kind: 'budget',
  invariant: 'budgets.spend',
  key,
  amount,
  limit: 100,
  windowEnd: null,
  holdTtlMs: 60_000,
  onExpiry: 'release',
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
    labelsOnSuccess: labels as string[],
    fencing: {},
  };
}

describe('sqlite: faults and durability', () => {
  for (const [name, options] of variants) {
    it(`${name}: a step that fails half way leaves no trace, and its neighbours commit`, async () => {
      const store = sqliteStore({ ...options, path: freshPath() });
      try {
        const request = (writ: WritRecord) => ({
          now: T0,
          writ,
          ops: writ.ops,
          sessionId: 's1',
          sessionVersion: 0,
        });
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
      const policy = [
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
      const clock = manualClock(T0);
      const pay = (amount: number, key: string) => ({
        tool: 'pay',
        args: { amount },
        principal: { id: 'agent-7' },
        session: { id: 's1' },
        idempotencyKey: key,
      });
      const first = sqliteStore({ ...options, path });
      const w1 = createWrit({ policy, store: first, clock, ids: sequentialIds() });
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
      const w2 = createWrit({ policy, store: second, clock, ids });
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
  }
});
