import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import { createWrit } from '../../src/engine/writ.js';
import type { LogEntry } from '../../src/log/entry.js';
import { loadPolicy } from '../../src/runtime/load-policy.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'writ.js');
const ENFORCED = `
version: 1
name: current
tools:
  send_email:
    - allow: true
`;
const CANDIDATE = `
version: 1
name: next
tools:
  send_email:
    - allow: 'email.domain(args.to) == "example.com"'
`;

const who = { principal: { id: 'agent' }, session: { id: 's' } };

describe('rolling out a policy without blocking anything', () => {
  it('records what a candidate policy would decide beside the enforced one', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'writ-shadow-')), 'writ.db');
    const writ = createWrit({
      policy: loadPolicy(ENFORCED),
      candidate: loadPolicy(CANDIDATE),
      store: sqliteStore({ path }),
      clock: manualClock('2026-11-23T10:00:00Z'),
      ids: sequentialIds(),
    });
    const inside = await writ.authorize({
      ...who,
      tool: 'send_email',
      args: { to: 'bob@example.com' },
    });
    const outside = await writ.authorize({
      ...who,
      tool: 'send_email',
      args: { to: 'eve@evil.test' },
    });
    // The enforced policy decides; the candidate only watches.
    expect([inside.outcome, outside.outcome]).toEqual(['allow', 'allow']);
    const log = await writ.store.readLog(0, 10);
    expect(log.map((e) => e.decision?.candidate?.outcome)).toEqual(['allow', 'deny']);
    await writ.close();

    const run = spawnSync(
      process.execPath,
      [BIN, 'log', 'tail', '--disagreements', '--json', '--store', path],
      { encoding: 'utf8' },
    );
    expect(run.status).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LogEntry);
    expect(lines.map((e) => e.decision?.id)).toEqual([outside.id]);
  });

  it('finds no disagreement between a policy and itself, whatever its invariants and approvals decide', async () => {
    const same = `version: 1
tools:
  pay:
    - require_approval: 'args.amount > 50'
    - allow: true
budgets:
  spend: { match: 'true', limit: 100, window: lifetime, cost: 'args.amount' }
idempotency:
  once: { match: 'true', key: 'request.idempotencyKey' }
`;
    const path = join(mkdtempSync(join(tmpdir(), 'writ-shadow-')), 'writ.db');
    const writ = createWrit({
      policy: loadPolicy(same),
      candidate: loadPolicy(same),
      store: sqliteStore({ path }),
      clock: manualClock('2026-11-23T10:00:00Z'),
      ids: sequentialIds(),
    });
    const pay = (amount: number, key: string) =>
      writ.authorize({ ...who, tool: 'pay', args: { amount }, idempotencyKey: key });
    const asked = await pay(60, 'k1');
    await writ.approvals.approve(asked.approval!.id, { approver: 'alice' });
    const approved = await pay(60, 'k1');
    await writ.settle(approved.writ!, { status: 'succeeded', result: 'ok' });
    const outcomes = [
      asked.outcome,
      approved.outcome,
      (await pay(60, 'k1')).outcome,
      (await pay(50, 'k2')).outcome,
    ];
    // Asked, approved, replayed, and refused by the budget: each as the candidate would have.
    expect(outcomes).toEqual(['approval_required', 'allow', 'replay', 'deny']);
    await writ.close();
    const run = spawnSync(
      process.execPath,
      [BIN, 'log', 'tail', '--disagreements', '--json', '--store', path],
      { encoding: 'utf8' },
    );
    expect([run.status, run.stdout]).toEqual([0, '']);
  });

  it('in shadow mode lets every call through and records what it would have done', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'writ-shadow-')), 'writ.db');
    const writ = createWrit({
      policy: loadPolicy(
        `${CANDIDATE}\nmode: shadow\nbudgets:\n  cap: { match: 'true', limit: 1, window: lifetime }\n`,
      ),
      store: sqliteStore({ path }),
      clock: manualClock('2026-11-23T10:00:00Z'),
      ids: sequentialIds(),
    });
    const first = await writ.authorize({
      ...who,
      tool: 'send_email',
      args: { to: 'bob@example.com' },
    });
    const overBudget = await writ.authorize({
      ...who,
      tool: 'send_email',
      args: { to: 'bob@example.com' },
    });
    const outOfScope = await writ.authorize({
      ...who,
      tool: 'send_email',
      args: { to: 'eve@evil.test' },
    });
    expect(first.outcome).toBe('allow');
    expect(overBudget).toMatchObject({ outcome: 'allow', shadow: { outcome: 'deny' } });
    expect(overBudget.shadow?.reasons[0]?.code).toBe('BUDGET_EXHAUSTED');
    expect(outOfScope).toMatchObject({ outcome: 'allow', shadow: { outcome: 'deny' } });
    // A shadow allow still gets a writ, which reserves nothing and settles normally.
    expect(overBudget.writ?.reservations).toEqual([]);
    await writ.settle(first.writ!, { status: 'succeeded' });
    await writ.settle(overBudget.writ!, { status: 'succeeded' });
    const log = await writ.store.readLog(0, 10);
    expect(log.filter((e) => e.decision?.shadow).map((e) => e.decision!.id)).toEqual([
      overBudget.id,
      outOfScope.id,
    ]);
    expect((await writ.budgets())[0]).toMatchObject({ spent: 1, held: 0 });
    expect(await writ.store.verifyLog()).toMatchObject({ ok: true, entries: 5 });
    await writ.close();
  });
});

describe('a store that fails, then recovers', () => {
  it('denies while it fails and decides normally once it is back', async () => {
    const { memoryStore } = await import('../../src/store/memory/index.js');
    const real = memoryStore();
    let down = true;
    const flaky = new Proxy(real, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) =>
          down ? Promise.reject(new Error('disk on fire')) : value.apply(target, args);
      },
    });
    const writ = createWrit({
      policy: loadPolicy(ENFORCED),
      store: flaky,
      clock: manualClock(0),
      ids: sequentialIds(),
    });
    const failed = await writ.authorize({
      ...who,
      tool: 'send_email',
      args: { to: 'a@example.com' },
    });
    expect(failed.outcome).toBe('deny');
    expect(failed.reasons[0]).toMatchObject({ code: 'STORE_UNAVAILABLE', error: 'disk on fire' });
    down = false;
    const ok = await writ.authorize({ ...who, tool: 'send_email', args: { to: 'a@example.com' } });
    expect(ok.outcome).toBe('allow');
  });
});
