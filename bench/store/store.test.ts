import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CALLERS, entriesWithLogOff, report, storeSets } from './bench.js';
import { srcRuntime as rt } from './runtime.js';
import { action, DECISION_POLICY, RATE_POLICY, type StoreKind } from './subjects.js';
import { measureStores } from './timing.js';

/**
 * The store benchmark times paths that must do what they claim: every writ call allowed and
 * settled, every floor making its writes. No timing is checked here.
 */
const dir = mkdtempSync(join(tmpdir(), 'writ-bench-store-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stores: Record<StoreKind, () => ReturnType<typeof rt.memoryStore>> = {
  memory: () => rt.memoryStore(),
  normal: () => rt.sqliteStore({ path: join(dir, 'normal.db'), synchronous: 'NORMAL' }),
  full: () =>
    rt.sqliteStore({ path: join(dir, 'full.db'), synchronous: 'FULL', groupCommit: false }),
  'full-group': () =>
    rt.sqliteStore({ path: join(dir, 'group.db'), synchronous: 'FULL', groupCommit: true }),
};

describe.each(Object.keys(stores) as StoreKind[])('a decision on the %s store', (kind) => {
  it('holds the budget, takes a token, claims the key; settle captures and stores the result', async () => {
    const writ = rt.createWrit({ policy: DECISION_POLICY, store: stores[kind]() });
    const decided = await Promise.all([1, 2, 3].map((i) => writ.authorize(action(i))));
    expect(decided.map((d) => d.outcome)).toEqual(['allow', 'allow', 'allow']);
    expect(decided[0]!.writ!.reservations.map((r) => (r as { kind: string }).kind)).toEqual([
      'idempotency',
      'budget',
      'rate',
    ]);
    const settled = await Promise.all(
      decided.map((d, i) => writ.settle(d.writ!, { status: 'succeeded', result: { n: i } })),
    );
    expect(settled.map((s) => s.writ.settled?.status)).toEqual(Array(3).fill('succeeded'));
    expect(await writ.budgets()).toMatchObject([{ key: 'spend:acme', spent: 3, held: 0 }]);
    const again = await writ.authorize(action(2));
    expect(again).toMatchObject({ outcome: 'replay', result: { n: 1 } });
    const log = await writ.store.verifyLog();
    // Three decisions and three settlements, then the replay.
    expect(log).toMatchObject({ ok: true, entries: 7 });
    await writ.close();
  });
});

describe('the rate-limit-only policy', () => {
  it('reserves one rate-limit token and nothing else', async () => {
    const writ = rt.createWrit({ policy: RATE_POLICY, store: rt.memoryStore() });
    const decided = await writ.authorize(action(1));
    expect(decided.outcome).toBe('allow');
    expect(decided.writ!.reservations).toEqual([{ kind: 'rate', key: 'calls:agent-7' }]);
    await writ.close();
  });
});

describe('every measured path', () => {
  const subjects = storeSets(rt).flatMap((set) => set.subjects);

  it('covers each store with the log on and off, the floors and rate-limiter-flexible', () => {
    const names = subjects.map((s) => s.name);
    expect(names).toContain('writ memory, log on');
    expect(names).toContain('writ SQLite FULL, group commit, log off');
    expect(names).toContain('raw better-sqlite3 FULL, group commit (floor)');
    expect(names).toContain('rate-limiter-flexible RateLimiterSQLite NORMAL');
    expect(subjects.filter((s) => s.callers === CALLERS)).toHaveLength(6);
  });

  it.each(subjects.map((s) => [s.name, s] as const))(
    '%s: calls are allowed, and settle where it should',
    async (_, subject) => {
      const caller = await subject.open(dir);
      // `call` throws unless the decision was allow and its settle went through.
      for (let i = 0; i < 3; i++) await caller.call(i);
      await Promise.all(Array.from({ length: subject.callers }, (_, i) => caller.call(3 + i)));
      await caller.close();
    },
  );

  it('measures every path and reports on it', async () => {
    const results = [];
    for (const set of storeSets(rt))
      results.push(...(await measureStores(set.subjects, { warmupMs: 5, rounds: 1, roundMs: 20 })));
    expect(results.every((r) => r.calls > 0 && r.perSecond > 0 && r.p99Ns >= r.p50Ns)).toBe(true);
    const section = report(results, await entriesWithLogOff(rt));
    expect(section).toContain('| writ SQLite NORMAL, log on | 1 |');
    expect(section).toMatch(/Targets \(log on\): memory ≥ 200\.0 k\/s/);
  });
});
