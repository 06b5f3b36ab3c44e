import { expect } from 'vitest';
import { type Decision, reason } from '../core/decision.js';
import { digestJson } from '../core/digest.js';
import type { WritError } from '../core/errors.js';
import { type IdempotencyOp, MAX_AMOUNT, type PlanOp } from '../core/plan.js';
import { entryHash, GENESIS_HASH } from '../log/entry.js';
import type { ApprovalRecord, BudgetState, Store, WritRecord } from '../store/types.js';
import {
  AGENT,
  action,
  allowed,
  type ConformanceCase,
  DAY,
  denied,
  example,
  HOUR,
  iso,
  MINUTE,
  rejectsWith,
  SECOND,
  T0,
} from './harness.js';

/*
 * The example-based cases: one semantic each, driven through `createWrit` (and, where the
 * engine cannot reach a corner, through the Store methods), with exact expectations.
 * Every case starts at T0 = 2026-11-23T10:00:00Z.
 */

const DAY_KEY = 'daily-spend:tenant-a:2026-11-23';
const NEXT_DAY_KEY = 'daily-spend:tenant-a:2026-11-24';
const DAY_END = Date.parse('2026-11-24T00:00:00.000Z');

/** `send_money` allowed, with the tenant's daily budget; `extra` lines go under the budget. */
function spendPolicy(extra: string[] = []): string {
  return [
    'version: 1',
    'tools:',
    '  send_money:',
    '    - allow: true',
    'budgets:',
    '  daily-spend:',
    `    match: 'tool == "send_money"'`,
    `    per: 'principal.tenant'`,
    '    limit: 500',
    '    window: 1d',
    `    cost: 'args.amount'`,
    ...extra.map((line) => `    ${line}`),
    '',
  ].join('\n');
}

const pay = (amount: number, extra: Record<string, unknown> = {}) =>
  action('send_money', { recipient: 'bob', amount }, extra);

function budget(key: string, limit: number, spent: number, held: number, windowEnd: number | null) {
  return { key, limit, spent, held, remaining: limit - spent - held, windowEnd } as BudgetState;
}

const budgets: ConformanceCase[] = [
  example('budgets: authorize holds the cost', async ({ writ }) => {
    const w = writ(spendPolicy());
    const granted = allowed(await w.authorize(pay(120)));
    expect(granted.reservations).toEqual([{ kind: 'budget', key: DAY_KEY, amount: 120 }]);
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 120, DAY_END)]);
  }),

  example(
    'budgets: a cost above what is left is refused with remaining and resetAt',
    async ({ writ }) => {
      const w = writ(spendPolicy());
      allowed(await w.authorize(pay(400)));
      denied(await w.authorize(pay(150)), {
        code: 'BUDGET_EXHAUSTED',
        rule: 'budgets.daily-spend',
        key: DAY_KEY,
        remaining: 100,
        resetAt: iso(DAY_END),
      });
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 400, DAY_END)]);
      allowed(await w.authorize(pay(100)));
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 500, DAY_END)]);
      denied(await w.authorize(pay(0.01)), {
        code: 'BUDGET_EXHAUSTED',
        rule: 'budgets.daily-spend',
        key: DAY_KEY,
        remaining: 0,
        resetAt: iso(DAY_END),
      });
    },
  ),

  example('budgets: capturing a smaller actual releases the rest', async ({ writ }) => {
    const w = writ(spendPolicy());
    const granted = allowed(await w.authorize(pay(200)));
    const settled = await w.settle(granted, { status: 'succeeded', cost: 150 });
    expect(settled.overage).toEqual({});
    expect(settled.writ.settled).toEqual({ at: T0, status: 'succeeded', cost: 150 });
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 150, 0, DAY_END)]);
    allowed(await w.authorize(pay(350)));
  }),

  example(
    'budgets: a success settled without a cost captures the held amount',
    async ({ writ }) => {
      const w = writ(spendPolicy());
      await w.settle(allowed(await w.authorize(pay(75))), { status: 'succeeded' });
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 75, 0, DAY_END)]);
    },
  ),

  example('budgets: a larger actual is overage and reduces what is left', async ({ writ }) => {
    const w = writ(spendPolicy());
    const granted = allowed(await w.authorize(pay(100)));
    const settled = await w.settle(granted, { status: 'succeeded', cost: 130 });
    expect(settled.overage).toEqual({ [DAY_KEY]: 30 });
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 130, 0, DAY_END)]);
    denied(await w.authorize(pay(371)), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.daily-spend',
      key: DAY_KEY,
      remaining: 370,
      resetAt: iso(DAY_END),
    });
    // Overage can take a budget past its limit: it is counted, and nothing more fits.
    const rest = allowed(await w.authorize(pay(370)));
    expect((await w.settle(rest, { status: 'succeeded', cost: 400 })).overage).toEqual({
      [DAY_KEY]: 30,
    });
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 530, 0, DAY_END)]);
    denied(await w.authorize(pay(0)), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.daily-spend',
      key: DAY_KEY,
      remaining: 0,
      resetAt: iso(DAY_END),
    });
  }),

  example('budgets: failed and cancelled settles void the hold', async ({ writ }) => {
    const w = writ(spendPolicy());
    const failed = await w.settle(allowed(await w.authorize(pay(300))), { status: 'failed' });
    expect(failed.overage).toEqual({});
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 0, DAY_END)]);
    await w.settle(allowed(await w.authorize(pay(500))), { status: 'cancelled' });
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 0, DAY_END)]);
    allowed(await w.authorize(pay(500)));
  }),

  example(
    'budgets: a cost reported with a failure is captured, and beyond the hold is overage',
    async ({ writ }) => {
      const w = writ(spendPolicy());
      const partly = await w.settle(allowed(await w.authorize(pay(100))), {
        status: 'failed',
        cost: 40,
      });
      expect(partly.overage).toEqual({});
      expect(partly.writ.settled).toEqual({ at: T0, status: 'failed', cost: 40 });
      const over = await w.settle(allowed(await w.authorize(pay(100))), {
        status: 'cancelled',
        cost: 160,
      });
      expect(over.overage).toEqual({ [DAY_KEY]: 60 });
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 200, 0, DAY_END)]);
    },
  ),

  example('budgets: large amounts stay exact, up to MAX_AMOUNT', async ({ writ }) => {
    const big = (limit: number) =>
      writ(
        spendPolicy()
          .replace('limit: 500', `limit: ${limit}`)
          .replace('window: 1d', 'window: lifetime'),
      );
    // Each in a tenant of its own: the engines share one store.
    const as = (tenant: string) => ({ principal: { ...AGENT, tenant } });
    // The whole of a 1e14 budget in one call.
    allowed(await big(1e14).authorize(pay(1e14, as('t1'))));
    // 3 spent of 5e9, then exactly the rest.
    const w = big(5e9);
    await w.settle(allowed(await w.authorize(pay(3, as('t2')))), { status: 'succeeded' });
    expect((await w.budgets()).find((b) => b.key.endsWith(':t2'))).toMatchObject({
      spent: 3,
      remaining: 4_999_999_997,
    });
    allowed(await w.authorize(pay(4_999_999_997, as('t2'))));
    // Cents beside a large limit: the rest of 123456789.07 after 123456789 is 0.07.
    const cents = big(123_456_789.07);
    await cents.settle(allowed(await cents.authorize(pay(123_456_789, as('t4')))), {
      status: 'succeeded',
    });
    expect((await cents.budgets()).find((b) => b.key.endsWith(':t4'))).toMatchObject({
      remaining: 0.07,
    });
    allowed(await cents.authorize(pay(0.07, as('t4'))));
    // The bound itself.
    allowed(await big(1e15).authorize(pay(1e15, as('t3'))));
  }),

  example('budgets: fractional costs fit a limit exactly', async ({ writ }) => {
    const w = writ(
      spendPolicy().replace('limit: 500', 'limit: 0.3').replace('window: 1d', 'window: lifetime'),
    );
    const key = 'daily-spend:tenant-a';
    allowed(await w.authorize(pay(0.1)));
    allowed(await w.authorize(pay(0.2)));
    const [state] = await w.budgets();
    expect(state).toEqual({ key, limit: 0.3, spent: 0, held: 0.3, remaining: 0, windowEnd: null });
    denied(await w.authorize(pay(0.01)), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.daily-spend',
      key,
      remaining: 0,
    });
  }),

  example('budgets: fixed UTC windows start a new key each day', async ({ writ, clock }) => {
    const w = writ(spendPolicy());
    clock.set('2026-11-23T23:59:59.999Z');
    await w.settle(allowed(await w.authorize(pay(500))), { status: 'succeeded' });
    denied(await w.authorize(pay(1)), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.daily-spend',
      key: DAY_KEY,
      remaining: 0,
      resetAt: '2026-11-24T00:00:00.000Z',
    });
    clock.advance(1);
    const next = allowed(await w.authorize(pay(200)));
    expect(next.reservations).toEqual([{ kind: 'budget', key: NEXT_DAY_KEY, amount: 200 }]);
    expect(await w.budgets()).toEqual([
      budget(DAY_KEY, 500, 500, 0, DAY_END),
      budget(NEXT_DAY_KEY, 500, 0, 200, DAY_END + DAY),
    ]);
  }),

  example('budgets: hourly windows are keyed by the hour they start', async ({ writ, clock }) => {
    const w = writ(spendPolicy().replace('window: 1d', 'window: 1h'));
    clock.set('2026-11-23T10:59:00.000Z');
    const first = allowed(await w.authorize(pay(10)));
    expect(first.reservations).toEqual([
      { kind: 'budget', key: 'daily-spend:tenant-a:2026-11-23T10:00:00Z', amount: 10 },
    ]);
    clock.advance(MINUTE);
    const second = allowed(await w.authorize(pay(10)));
    expect(second.reservations).toEqual([
      { kind: 'budget', key: 'daily-spend:tenant-a:2026-11-23T11:00:00Z', amount: 10 },
    ]);
  }),

  example('budgets: lifetime budgets never reset', async ({ writ, clock }) => {
    const w = writ(
      [
        'version: 1',
        'tools:',
        '  call_llm:',
        '    - allow: true',
        'budgets:',
        '  total:',
        '    limit: 3',
        '    window: lifetime',
        '',
      ].join('\n'),
    );
    const call = action('call_llm', {});
    for (let i = 0; i < 3; i++)
      await w.settle(allowed(await w.authorize(call)), { status: 'succeeded' });
    denied(await w.authorize(call), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.total',
      key: 'total',
      remaining: 0,
    });
    clock.advance(400 * DAY);
    denied(await w.authorize(call), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.total',
      key: 'total',
      remaining: 0,
    });
    expect(await w.budgets()).toEqual([budget('total', 3, 3, 0, null)]);
  }),

  example('budgets: an expired hold is released (on_expiry: release)', async ({ writ, clock }) => {
    const w = writ(spendPolicy(['hold_ttl: 10m', 'on_expiry: release']));
    const first = allowed(await w.authorize(pay(300)));
    expect(first.expiresAt).toBe(iso(T0 + 10 * MINUTE));
    clock.advance(10 * MINUTE - 1);
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 300, DAY_END)]);
    denied(await w.authorize(pay(201)), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.daily-spend',
      key: DAY_KEY,
      remaining: 200,
      resetAt: iso(DAY_END),
    });
    clock.advance(1);
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 0, DAY_END)]);
    allowed(await w.authorize(pay(200)));
    // The call ran after all: a late settle captures what it really cost.
    const late = await w.settle(first, { status: 'succeeded', cost: 250 });
    expect(late.overage).toEqual({});
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 250, 200, DAY_END)]);
  }),

  example(
    'budgets: an expired hold is captured (on_expiry: capture); a late settle corrects it',
    async ({ writ, clock }) => {
      const w = writ(spendPolicy(['hold_ttl: 10m', 'on_expiry: capture']));
      const a = allowed(await w.authorize(pay(300)));
      clock.advance(10 * MINUTE);
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 300, 0, DAY_END)]);
      expect((await w.settle(a, { status: 'succeeded', cost: 120 })).overage).toEqual({});
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 120, 0, DAY_END)]);

      const b = allowed(await w.authorize(pay(100)));
      clock.advance(10 * MINUTE);
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 220, 0, DAY_END)]);
      await w.settle(b, { status: 'failed' });
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 120, 0, DAY_END)]);

      const c = allowed(await w.authorize(pay(50)));
      clock.advance(10 * MINUTE);
      expect((await w.settle(c, { status: 'succeeded', cost: 80 })).overage).toEqual({
        [DAY_KEY]: 30,
      });
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 200, 0, DAY_END)]);

      const d = allowed(await w.authorize(pay(40)));
      clock.advance(10 * MINUTE);
      await w.settle(d, { status: 'succeeded' });
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 240, 0, DAY_END)]);
    },
  ),

  example(
    'budgets: a capture at expiry is final a day later; a settle then changes nothing, and says so',
    async ({ writ, clock, store }) => {
      const w = writ(
        spendPolicy(['hold_ttl: 10m', 'on_expiry: capture']).replace(
          'window: 1d',
          'window: lifetime',
        ),
      );
      const late = allowed(await w.authorize(pay(100)));
      const last = allowed(await w.authorize(pay(50)));
      clock.advance(10 * MINUTE);
      const key = 'daily-spend:tenant-a';
      expect(await w.budgets()).toEqual([budget(key, 500, 150, 0, null)]);
      // One millisecond before the day is out, a late settle still corrects its capture…
      clock.advance(DAY - 1);
      expect((await w.settle(last, { status: 'succeeded', cost: 20 })).uncounted).toBeUndefined();
      expect(await w.budgets()).toEqual([budget(key, 500, 120, 0, null)]);
      // …and from then on the capture is what was spent: the settle's cost is not counted,
      // which its result and its log entry say rather than leave the reader to find out.
      clock.advance(1);
      const settled = await w.settle(late, { status: 'succeeded', cost: 400 });
      expect(settled.overage).toEqual({});
      expect(settled.uncounted).toEqual([key]);
      expect(await w.budgets()).toEqual([budget(key, 500, 120, 0, null)]);
      const settlements = (await store.readLog(0, 100)).flatMap((e) =>
        e.settlement ? [e.settlement] : [],
      );
      expect(settlements.map((s) => [s.cost, s.uncounted])).toEqual([
        [20, undefined],
        [400, [key]],
      ]);
    },
  ),

  example('budgets: every matching budget must fit', async ({ writ }) => {
    const w = writ(
      `${spendPolicy()}  agent-spend:\n    match: 'tool == "send_money"'\n    per: 'principal.id'\n    limit: 100\n    window: lifetime\n    cost: 'args.amount'\n`,
    );
    const granted = allowed(await w.authorize(pay(80)));
    expect(granted.reservations).toEqual([
      { kind: 'budget', key: DAY_KEY, amount: 80 },
      { kind: 'budget', key: 'agent-spend:agent-7', amount: 80 },
    ]);
    denied(await w.authorize(pay(30)), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.agent-spend',
      key: 'agent-spend:agent-7',
      remaining: 20,
    });
    expect(await w.budgets()).toEqual([
      budget('agent-spend:agent-7', 100, 0, 80, null),
      budget(DAY_KEY, 500, 0, 80, DAY_END),
    ]);
    const other = { principal: { id: 'agent-8', tenant: 'tenant-a' } };
    allowed(await w.authorize(pay(100, other)));
    denied(await w.authorize(pay(321, { principal: { id: 'agent-9', tenant: 'tenant-a' } })), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.daily-spend',
      key: DAY_KEY,
      remaining: 320,
      resetAt: iso(DAY_END),
    });
    // …and that refusal held nothing on agent-9's own budget.
    expect((await w.budgets()).map((b) => b.key)).toEqual([
      'agent-spend:agent-7',
      'agent-spend:agent-8',
      DAY_KEY,
    ]);
  }),
];

/**
 * A policy where every kind of reservation applies to `send_money`, so that a refusal by
 * one can be checked to have reserved nothing on the others. `perLane` names the invariant
 * partitioned by `args.lane` (the one made to refuse); the others are global.
 */
function everythingPolicy(perLane: 'budget' | 'rate' | 'concurrency' | 'none'): string {
  const lane = (kind: typeof perLane) => (perLane === kind ? [`    per: 'args.lane'`] : []);
  return [
    'version: 1',
    'tools:',
    '  send_money:',
    '    - allow: true',
    'budgets:',
    '  spend:',
    ...lane('budget'),
    `    limit: ${perLane === 'budget' ? 150 : 500}`,
    '    window: lifetime',
    `    cost: 'args.amount'`,
    'rate_limits:',
    '  calls:',
    ...lane('rate'),
    `    rate: ${perLane === 'rate' ? '1/1h' : '2/1h'}`,
    'concurrency:',
    '  slots:',
    ...lane('concurrency'),
    `    max: ${perLane === 'concurrency' ? 1 : 2}`,
    'idempotency:',
    '  payments:',
    `    key: 'request.idempotencyKey'`,
    'replay:',
    '  require_nonce: true',
    '  max_age: 1d',
    '',
  ].join('\n');
}

const laneCall = (lane: string, amount: number, key: string, nonce: string) =>
  action('send_money', { lane, amount }, { idempotencyKey: key, nonce, issuedAt: iso(T0) });

const atomicity: ConformanceCase[] = [
  example('atomicity: a call refused by the rate limit reserves nothing', async ({ writ }) => {
    const w = writ(everythingPolicy('rate'));
    allowed(await w.authorize(laneCall('A', 100, 'k1', 'n1')));
    denied(await w.authorize(laneCall('A', 100, 'k2', 'n2')), {
      code: 'RATE_LIMITED',
      rule: 'rate_limits.calls',
      key: 'calls:A',
      remaining: 0,
      resetAt: iso(T0 + HOUR),
    });
    expect(await w.budgets()).toEqual([budget('spend', 500, 0, 100, null)]);
    // Nonce n2 unused, key k2 unclaimed, no budget held, no slot or fencing token taken:
    // 100 + 400 fits 500 and 2 slots hold only if the refused call left nothing behind.
    const next = allowed(await w.authorize(laneCall('B', 400, 'k2', 'n2')));
    expect(next.fencing).toEqual({ slots: 2 });
  }),

  example('atomicity: a call refused by concurrency reserves nothing', async ({ writ }) => {
    const w = writ(everythingPolicy('concurrency'));
    allowed(await w.authorize(laneCall('A', 100, 'k1', 'n1')));
    denied(await w.authorize(laneCall('A', 100, 'k2', 'n2')), {
      code: 'CONCURRENCY_LIMIT',
      rule: 'concurrency.slots',
      key: 'slots:A',
      remaining: 0,
      resetAt: iso(T0 + 5 * MINUTE),
    });
    expect(await w.budgets()).toEqual([budget('spend', 500, 0, 100, null)]);
    // The rate limit holds 2 tokens: the refusal must not have spent the second one.
    const next = allowed(await w.authorize(laneCall('B', 400, 'k2', 'n2')));
    expect(next.fencing).toEqual({ 'slots:B': 1 });
  }),

  example('atomicity: a call refused by a budget reserves nothing', async ({ writ }) => {
    const w = writ(everythingPolicy('budget'));
    allowed(await w.authorize(laneCall('A', 100, 'k1', 'n1')));
    denied(await w.authorize(laneCall('A', 100, 'k2', 'n2')), {
      code: 'BUDGET_EXHAUSTED',
      rule: 'budgets.spend',
      key: 'spend:A',
      remaining: 50,
    });
    const next = allowed(await w.authorize(laneCall('B', 100, 'k2', 'n2')));
    expect(next.fencing).toEqual({ slots: 2 });
    expect(await w.budgets()).toEqual([
      budget('spend:A', 150, 0, 100, null),
      budget('spend:B', 150, 0, 100, null),
    ]);
  }),

  example('atomicity: a call refused by idempotency reserves nothing', async ({ writ }) => {
    const w = writ(everythingPolicy('none'));
    allowed(await w.authorize(laneCall('A', 100, 'k1', 'n1')));
    denied(await w.authorize(laneCall('A', 100, 'k1', 'n2')), {
      code: 'IDEMPOTENCY_IN_FLIGHT',
      rule: 'idempotency.payments',
      key: 'payments:k1',
      // The writ lives as long as its longest reservation: the budget hold's 15 minutes.
      resetAt: iso(T0 + 15 * MINUTE),
    });
    denied(await w.authorize(laneCall('A', 300, 'k1', 'n3')), {
      code: 'IDEMPOTENCY_MISMATCH',
      rule: 'idempotency.payments',
      key: 'payments:k1',
    });
    expect(await w.budgets()).toEqual([budget('spend', 500, 0, 100, null)]);
    const next = allowed(await w.authorize(laneCall('A', 400, 'k2', 'n2')));
    expect(next.fencing).toEqual({ slots: 2 });
  }),

  example('atomicity: a call refused for its nonce reserves nothing', async ({ writ }) => {
    const w = writ(everythingPolicy('none'));
    allowed(await w.authorize(laneCall('A', 100, 'k1', 'n1')));
    denied(await w.authorize(laneCall('A', 400, 'k2', 'n1')), {
      code: 'NONCE_REPLAYED',
      rule: 'replay',
      key: 'agent-7:n1',
    });
    const next = allowed(await w.authorize(laneCall('A', 400, 'k2', 'n2')));
    expect(next.fencing).toEqual({ slots: 2 });
  }),
];

const MAIL = [
  'version: 1',
  'tools:',
  '  send_email:',
  '    - allow: true',
  'rate_limits:',
  '  outbound-mail:',
  `    match: 'tool == "send_email"'`,
  `    per: 'principal.id'`,
  '    rate: 10/1m',
  '    burst: 3',
  '',
].join('\n');
const mail = (extra: Record<string, unknown> = {}) =>
  action('send_email', { to: 'a@example.com' }, extra);
const limited = (resetAt: number, key = 'outbound-mail:agent-7') => ({
  code: 'RATE_LIMITED' as const,
  rule: 'rate_limits.outbound-mail',
  key,
  remaining: 0,
  resetAt: iso(resetAt),
});

const rateLimits: ConformanceCase[] = [
  example('rate limits: a burst passes, then RATE_LIMITED with when to retry', async ({ writ }) => {
    const w = writ(MAIL);
    for (let i = 0; i < 3; i++) {
      const granted = allowed(await w.authorize(mail()));
      expect(granted.reservations).toEqual([{ kind: 'rate', key: 'outbound-mail:agent-7' }]);
    }
    denied(await w.authorize(mail()), limited(T0 + 6 * SECOND));
    // Another principal has its own bucket.
    allowed(await w.authorize(mail({ principal: { id: 'agent-8' } })));
  }),

  example('rate limits: tokens refill over time', async ({ writ, clock }) => {
    const w = writ(MAIL);
    for (let i = 0; i < 3; i++) allowed(await w.authorize(mail()));
    clock.advance(6 * SECOND - 1);
    denied(await w.authorize(mail()), limited(T0 + 6 * SECOND));
    clock.advance(1);
    allowed(await w.authorize(mail()));
    denied(await w.authorize(mail()), limited(T0 + 12 * SECOND));
    // Idle for a minute: the bucket is full again — burst, not the whole rate.
    clock.advance(MINUTE);
    for (let i = 0; i < 3; i++) allowed(await w.authorize(mail()));
    denied(await w.authorize(mail()), limited(clock.now() + 6 * SECOND));
  }),

  example(
    'rate limits: an interval that is no whole number of ms is exact at real times',
    async ({ writ, clock }) => {
      // 6/1s: an interval of 166.66… ms, added to an epoch time of 1.8e12 ms.
      const w = writ(MAIL.replace('rate: 10/1m', 'rate: 6/1s').replace('burst: 3', 'burst: 6'));
      for (let i = 0; i < 6; i++) allowed(await w.authorize(mail()));
      // The next token is due 166.67 ms on: the first whole millisecond is 167.
      denied(await w.authorize(mail()), limited(T0 + 167));
      clock.advance(166);
      denied(await w.authorize(mail()), limited(T0 + 167));
      clock.advance(1);
      allowed(await w.authorize(mail()));
      // A second after that call, the bucket is full again: six tokens, not five.
      clock.advance(1000);
      for (let i = 0; i < 6; i++) allowed(await w.authorize(mail()));
      denied(await w.authorize(mail()), limited(T0 + 1167 + 167));
    },
  ),

  example(
    'rate limits: an interval under a millisecond allows a call each millisecond',
    async ({ writ, clock }) => {
      // 10,000/1s with no burst: 0.1 ms apart, so one call in any one millisecond.
      const w = writ(MAIL.replace('rate: 10/1m', 'rate: 10000/1s').replace('burst: 3', 'burst: 1'));
      for (let ms = 0; ms < 5; ms++) {
        allowed(await w.authorize(mail()));
        denied(await w.authorize(mail()), limited(clock.now() + 1));
        clock.advance(1);
      }
    },
  ),

  example('rate limits: a token is spent at authorize, whatever the settle', async ({ writ }) => {
    const w = writ(MAIL);
    for (let i = 0; i < 3; i++)
      await w.settle(allowed(await w.authorize(mail())), { status: 'failed' });
    denied(await w.authorize(mail()), limited(T0 + 6 * SECOND));
  }),
];

const DEPLOYS = [
  'version: 1',
  'tools:',
  '  "k8s.*":',
  '    - allow: true',
  'concurrency:',
  '  deploys:',
  `    match: 'tool.startsWith("k8s.")'`,
  `    per: 'args.cluster'`,
  '    max: 2',
  '    lease: 10m',
  '',
].join('\n');
const deploy = (cluster = 'prod') => action('k8s.apply', { cluster });
const full = (resetAt: number) => ({
  code: 'CONCURRENCY_LIMIT' as const,
  rule: 'concurrency.deploys',
  key: 'deploys:prod',
  remaining: 0,
  resetAt: iso(resetAt),
});

const concurrency: ConformanceCase[] = [
  example('concurrency: at most max holders per key', async ({ writ }) => {
    const w = writ(DEPLOYS);
    const first = allowed(await w.authorize(deploy()));
    expect(first.fencing).toEqual({ 'deploys:prod': 1 });
    expect(first.reservations).toEqual([{ kind: 'concurrency', key: 'deploys:prod' }]);
    expect(first.expiresAt).toBe(iso(T0 + 10 * MINUTE));
    expect(allowed(await w.authorize(deploy())).fencing).toEqual({ 'deploys:prod': 2 });
    denied(await w.authorize(deploy()), full(T0 + 10 * MINUTE));
    expect(allowed(await w.authorize(deploy('staging'))).fencing).toEqual({
      'deploys:staging': 1,
    });
  }),

  example('concurrency: settle releases the slot', async ({ writ }) => {
    const w = writ(DEPLOYS);
    const first = allowed(await w.authorize(deploy()));
    allowed(await w.authorize(deploy()));
    await w.settle(first, { status: 'succeeded' });
    expect(allowed(await w.authorize(deploy())).fencing).toEqual({ 'deploys:prod': 3 });
    denied(await w.authorize(deploy()), full(T0 + 10 * MINUTE));
  }),

  example('concurrency: an unsettled lease expires', async ({ writ, clock }) => {
    const w = writ(DEPLOYS);
    allowed(await w.authorize(deploy()));
    clock.advance(MINUTE);
    allowed(await w.authorize(deploy()));
    clock.advance(9 * MINUTE - 1);
    denied(await w.authorize(deploy()), full(T0 + 10 * MINUTE));
    clock.advance(1);
    expect(allowed(await w.authorize(deploy())).fencing).toEqual({ 'deploys:prod': 3 });
    denied(await w.authorize(deploy()), full(T0 + 11 * MINUTE));
  }),

  example(
    'concurrency: a lease longer than the default writ lifetime holds for all of it',
    async ({ writ, clock }) => {
      // A deploy may take an hour: its writ is not cut to the engine's 15-minute default.
      const w = writ(DEPLOYS.replace('lease: 10m', 'lease: 1h').replace('max: 2', 'max: 1'));
      expect(allowed(await w.authorize(deploy())).expiresAt).toBe(iso(T0 + HOUR));
      clock.advance(HOUR - 1);
      denied(await w.authorize(deploy()), full(T0 + HOUR));
      clock.advance(1);
      expect(allowed(await w.authorize(deploy())).fencing).toEqual({ 'deploys:prod': 2 });
    },
  ),

  example(
    'concurrency: fencing tokens grow per key, across release and expiry',
    async ({ writ, clock }) => {
      const w = writ(DEPLOYS);
      const a = allowed(await w.authorize(deploy()));
      const b = allowed(await w.authorize(deploy()));
      clock.advance(10 * MINUTE);
      const c = allowed(await w.authorize(deploy()));
      const d = allowed(await w.authorize(deploy()));
      expect([a, b, c, d].map((x) => x.fencing?.['deploys:prod'])).toEqual([1, 2, 3, 4]);
      // A late settle of an expired lease must not free a slot someone else now holds.
      await w.settle(a, { status: 'succeeded' });
      await w.settle(b, { status: 'failed' });
      denied(await w.authorize(deploy()), full(T0 + 20 * MINUTE));
      await w.settle(c, { status: 'succeeded' });
      expect(allowed(await w.authorize(deploy())).fencing).toEqual({ 'deploys:prod': 5 });
      await w.settle(d, { status: 'cancelled' });
      expect(allowed(await w.authorize(deploy())).fencing).toEqual({ 'deploys:prod': 6 });
      expect(allowed(await w.authorize(deploy('staging'))).fencing).toEqual({
        'deploys:staging': 1,
      });
    },
  ),
];

function idemPolicy(options: { ttl?: string; onExpiry?: string; derived?: boolean } = {}) {
  return [
    spendPolicy(),
    'idempotency:',
    '  payments:',
    `    match: 'tool == "send_money"'`,
    ...(options.derived ? [] : [`    key: 'request.idempotencyKey'`]),
    `    ttl: ${options.ttl ?? '24h'}`,
    `    on_expiry: ${options.onExpiry ?? 'in_doubt'}`,
    '',
  ].join('\n');
}
const keyed = (amount: number, key: string, extra: Record<string, unknown> = {}) =>
  pay(amount, { idempotencyKey: key, ...extra });
const KEY = 'payments:K1';

const idempotency: ConformanceCase[] = [
  example('idempotency: a duplicate while in flight is IDEMPOTENCY_IN_FLIGHT', async ({ writ }) => {
    const w = writ(idemPolicy());
    const first = allowed(await w.authorize(keyed(100, 'K1')));
    expect(first.reservations).toEqual([
      { kind: 'idempotency', key: KEY },
      { kind: 'budget', key: DAY_KEY, amount: 100 },
    ]);
    denied(await w.authorize(keyed(100, 'K1')), {
      code: 'IDEMPOTENCY_IN_FLIGHT',
      rule: 'idempotency.payments',
      key: KEY,
      resetAt: iso(T0 + 15 * MINUTE),
    });
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 0, 100, DAY_END)]);
  }),

  example(
    'idempotency: after success, replay with the stored result and no new writ',
    async ({ writ }) => {
      const w = writ(idemPolicy());
      const first = allowed(await w.authorize(keyed(100, 'K1')));
      await w.settle(first, { status: 'succeeded', result: { transfer: 'tx-1', ok: true } });
      const replay = await w.authorize(keyed(100, 'K1'));
      expect(replay.outcome).toBe('replay');
      expect(replay.result).toEqual({ transfer: 'tx-1', ok: true });
      expect(replay.writ).toBeUndefined();
      expect(replay.reasons.map((r) => r.code)).toEqual(['IDEMPOTENT_REPLAY']);
      expect(replay.reasons[0]!.message).toContain(first.id);
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 100, 0, DAY_END)]);

      let runs = 0;
      const executed = await w.execute(keyed(100, 'K1'), () => {
        runs++;
        return { transfer: 'tx-2' };
      });
      expect(executed.outcome).toBe('replay');
      expect(executed.outcome === 'replay' && executed.result).toEqual({
        transfer: 'tx-1',
        ok: true,
      });
      expect(runs).toBe(0);
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 100, 0, DAY_END)]);
    },
  ),

  example("idempotency: a replayed result is the caller's own copy", async ({ writ }) => {
    const w = writ(idemPolicy());
    const first = allowed(await w.authorize(keyed(100, 'K1')));
    await w.settle(first, { status: 'succeeded', result: { transfer: { id: 'tx-1' } } });
    const replay = await w.authorize(keyed(100, 'K1'));
    (replay.result as { transfer: { id: string } }).transfer.id = 'changed';
    const again = await w.execute(keyed(100, 'K1'), () => ({ transfer: { id: 'tx-2' } }));
    (again as { result: { transfer: { id: string } } }).result.transfer.id = 'changed too';
    expect((await w.authorize(keyed(100, 'K1'))).result).toEqual({ transfer: { id: 'tx-1' } });
  }),

  example(
    'idempotency: execute keeps a result as JSON would send it, and says when it cannot',
    async ({ writ }) => {
      const w = writ(idemPolicy());
      // Fields that are undefined are dropped and a date is its text, as JSON.stringify
      // writes them; the retry replays that, not null.
      const at = new Date(T0);
      const first = await w.execute(keyed(1, 'K1'), () => ({ id: 'tx-1', memo: undefined, at }));
      expect(first.outcome === 'allow' && first.result).toEqual({
        id: 'tx-1',
        memo: undefined,
        at,
      });
      const replay = await w.execute(keyed(1, 'K1'), () => 'not run');
      expect(replay.outcome === 'replay' && replay.result).toEqual({ id: 'tx-1', at: iso(T0) });
      // A result JSON cannot hold is settled as null, and the caller told so.
      await rejectsWith(
        w.execute(keyed(1, 'K2'), () => ({ amount: 10n })),
        'USAGE',
      );
      const kept = await w.execute(keyed(1, 'K2'), () => 'not run');
      expect(kept.outcome === 'replay' && kept.result).toBeNull();
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 2, 0, DAY_END)]);
    },
  ),

  example('idempotency: a success settled without a result replays null', async ({ writ }) => {
    const w = writ(idemPolicy());
    await w.settle(allowed(await w.authorize(keyed(1, 'K1'))), { status: 'succeeded' });
    const replay = await w.authorize(keyed(1, 'K1'));
    expect(replay.outcome).toBe('replay');
    expect(replay.result).toBeNull();
  }),

  example(
    'idempotency: the same key for another action is IDEMPOTENCY_MISMATCH',
    async ({ writ }) => {
      const w = writ(idemPolicy());
      const mismatch = {
        code: 'IDEMPOTENCY_MISMATCH' as const,
        rule: 'idempotency.payments',
        key: KEY,
      };
      const first = allowed(await w.authorize(keyed(100, 'K1')));
      denied(await w.authorize(keyed(101, 'K1')), mismatch);
      denied(
        await w.authorize(keyed(100, 'K1', { principal: { id: 'agent-8', tenant: 'tenant-a' } })),
        mismatch,
      );
      await w.settle(first, { status: 'succeeded', result: 'ok' });
      denied(await w.authorize(keyed(101, 'K1')), mismatch);
      expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 100, 0, DAY_END)]);
    },
  ),

  example(
    'idempotency: a writ that expired unsettled leaves its key in doubt',
    async ({ writ, clock }) => {
      const w = writ(idemPolicy({ onExpiry: 'in_doubt' }));
      const first = allowed(await w.authorize(keyed(100, 'K1')));
      const second = allowed(await w.authorize(keyed(50, 'K2')));
      clock.advance(15 * MINUTE);
      const doubt = {
        code: 'IDEMPOTENCY_IN_DOUBT' as const,
        rule: 'idempotency.payments',
        key: KEY,
      };
      denied(await w.authorize(keyed(100, 'K1')), doubt);
      clock.advance(HOUR);
      denied(await w.authorize(keyed(100, 'K1')), doubt);
      // Resolving the original settles the doubt: a success replays, a failure frees the key.
      await w.settle(first, { status: 'succeeded', result: 'late' });
      const replay = await w.authorize(keyed(100, 'K1'));
      expect(replay.outcome).toBe('replay');
      expect(replay.result).toBe('late');
      await w.settle(second, { status: 'failed' });
      allowed(await w.authorize(keyed(50, 'K2')));
    },
  ),

  example(
    'idempotency: openWrits lists the calls that may have run; settling one by id resolves its doubt',
    async ({ writ, clock }) => {
      const w = writ(idemPolicy({ onExpiry: 'in_doubt' }));
      const first = allowed(await w.authorize(keyed(100, 'K1')));
      clock.advance(1);
      const second = allowed(await w.authorize(keyed(50, 'K2')));
      const done = allowed(await w.authorize(keyed(10, 'K3')));
      await w.settle(done, { status: 'succeeded' });
      const listed = async () =>
        (await w.openWrits()).map((o) => [o.writ.id, o.expired, o.claims] as const);
      expect(await listed()).toEqual([
        [first.id, false, [{ key: KEY, status: 'in_flight' }]],
        [second.id, false, [{ key: 'payments:K2', status: 'in_flight' }]],
      ]);
      const [open] = await w.openWrits();
      expect(open!.writ).toMatchObject({
        id: first.id,
        decisionId: first.id.replace(/^wr_/, 'dec_'),
        tool: 'send_money',
        issuedAt: T0,
        expiresAt: T0 + 15 * MINUTE,
      });
      expect(open!.writ.settled).toBeUndefined();

      // The process died: past their expiry the keys are in doubt, and retries are refused.
      clock.advance(15 * MINUTE);
      expect(await listed()).toEqual([
        [first.id, true, [{ key: KEY, status: 'in_doubt' }]],
        [second.id, true, [{ key: 'payments:K2', status: 'in_doubt' }]],
      ]);
      // An operator who found out what happened settles them by id, with no writ in hand.
      await w.settle(first.id, { status: 'succeeded', result: 'tx-1' });
      await w.settle(second.id, { status: 'failed' });
      expect(await w.openWrits()).toEqual([]);
      const replay = await w.authorize(keyed(100, 'K1'));
      expect(replay.outcome).toBe('replay');
      expect(replay.result).toBe('tx-1');
      allowed(await w.authorize(keyed(50, 'K2')));
    },
  ),

  example(
    'idempotency: on_expiry: retry lets the key be claimed again',
    async ({ writ, clock }) => {
      const w = writ(idemPolicy({ onExpiry: 'retry' }));
      const first = allowed(await w.authorize(keyed(100, 'K1')));
      clock.advance(15 * MINUTE - 1);
      denied(await w.authorize(keyed(100, 'K1')), {
        code: 'IDEMPOTENCY_IN_FLIGHT',
        rule: 'idempotency.payments',
        key: KEY,
        resetAt: iso(T0 + 15 * MINUTE),
      });
      clock.advance(1);
      const retry = allowed(await w.authorize(keyed(100, 'K1')));
      expect(retry.id).not.toBe(first.id);
      // The expired original settling late does not take the key back from the retry.
      await w.settle(first, { status: 'succeeded', result: 'first' });
      denied(await w.authorize(keyed(100, 'K1')), {
        code: 'IDEMPOTENCY_IN_FLIGHT',
        rule: 'idempotency.payments',
        key: KEY,
        resetAt: iso(T0 + 30 * MINUTE),
      });
      await w.settle(retry, { status: 'succeeded', result: 'retry' });
      const replay = await w.authorize(keyed(100, 'K1'));
      expect(replay.outcome).toBe('replay');
      expect(replay.result).toBe('retry');
    },
  ),

  example('idempotency: a failed or cancelled settle frees the key', async ({ writ }) => {
    const w = writ(idemPolicy());
    await w.settle(allowed(await w.authorize(keyed(100, 'K1'))), { status: 'failed' });
    const again = allowed(await w.authorize(keyed(100, 'K1')));
    await w.settle(again, { status: 'cancelled' });
    // Freed entirely: even another action may now use the key.
    const other = allowed(await w.authorize(keyed(7, 'K1')));
    await w.settle(other, { status: 'succeeded', result: 7 });
    expect((await w.authorize(keyed(7, 'K1'))).result).toBe(7);
  }),

  example(
    'idempotency: a claim outlives a ttl shorter than its writ, so a running call never runs twice',
    async ({ writ, clock }) => {
      // ttl 1m, the writ 15m (the default, no hold_ttl): at 90 s the first call may still be
      // running, and its key must still be claimed.
      const w = writ(idemPolicy({ ttl: '1m' }));
      const first = allowed(await w.authorize(keyed(100, 'K1')));
      clock.advance(90_000);
      denied(await w.authorize(keyed(100, 'K1')), {
        code: 'IDEMPOTENCY_IN_FLIGHT',
        rule: 'idempotency.payments',
        key: KEY,
        resetAt: iso(T0 + 15 * MINUTE),
      });
      await w.settle(first, { status: 'succeeded', result: 'paid' });
      expect(await w.authorize(keyed(100, 'K1'))).toMatchObject({
        outcome: 'replay',
        result: 'paid',
      });
      // Once the writ's lifetime is over, so is the claim.
      clock.advance(15 * MINUTE);
      allowed(await w.authorize(keyed(100, 'K1')));
    },
  ),

  example('idempotency: the key is forgotten after its ttl', async ({ writ, clock }) => {
    const w = writ(idemPolicy({ ttl: '1h' }));
    await w.settle(allowed(await w.authorize(keyed(100, 'K1'))), {
      status: 'succeeded',
      result: 'once',
    });
    clock.advance(HOUR - 1);
    expect((await w.authorize(keyed(100, 'K1'))).outcome).toBe('replay');
    denied(await w.authorize(keyed(5, 'K1')), {
      code: 'IDEMPOTENCY_MISMATCH',
      rule: 'idempotency.payments',
      key: KEY,
    });
    clock.advance(1);
    const again = allowed(await w.authorize(keyed(5, 'K1')));
    expect(again.reservations[0]).toEqual({ kind: 'idempotency', key: KEY });
  }),

  example(
    'idempotency: without key:, the key derives from session, tool and args',
    async ({ writ }) => {
      const w = writ(idemPolicy({ derived: true }));
      const args = { recipient: 'bob', amount: 10 };
      const derived = `payments:${digestJson({ session: 'run-1', tool: 'send_money', args }).slice(7)}`;
      const first = allowed(await w.authorize(pay(10)));
      expect(first.reservations[0]).toEqual({ kind: 'idempotency', key: derived });
      // The idempotency key a caller sends plays no part in a derived key.
      denied(await w.authorize(pay(10, { idempotencyKey: 'ignored' })), {
        code: 'IDEMPOTENCY_IN_FLIGHT',
        rule: 'idempotency.payments',
        key: derived,
        resetAt: iso(T0 + 15 * MINUTE),
      });
      allowed(await w.authorize(pay(11)));
      allowed(await w.authorize(pay(10, { session: { id: 'run-2' } })));
      // Same session, tool and args but someone else: the same key, another action.
      denied(await w.authorize(pay(10, { principal: { id: 'agent-8', tenant: 'tenant-a' } })), {
        code: 'IDEMPOTENCY_MISMATCH',
        rule: 'idempotency.payments',
        key: derived,
      });
      await w.settle(first, { status: 'succeeded', result: 'r' });
      expect((await w.authorize(pay(10))).outcome).toBe('replay');
    },
  ),
];

const NONCES = [
  'version: 1',
  'tools:',
  '  ping:',
  '    - allow: true',
  'replay:',
  '  require_nonce: true',
  '  max_age: 5m',
  '',
].join('\n');
const ping = (nonce: string | undefined, issuedAt: number, principal: object = AGENT) =>
  action('ping', {}, { principal, issuedAt: iso(issuedAt), ...(nonce !== undefined && { nonce }) });

const nonces: ConformanceCase[] = [
  example('nonces: a nonce is accepted once, then NONCE_REPLAYED', async ({ writ, clock }) => {
    const w = writ(NONCES);
    const first = allowed(await w.authorize(ping('n-1', T0)));
    expect(first.reservations).toEqual([{ kind: 'nonce', key: 'agent-7:n-1' }]);
    const replayed = { code: 'NONCE_REPLAYED' as const, rule: 'replay', key: 'agent-7:n-1' };
    denied(await w.authorize(ping('n-1', T0)), replayed);
    // Whatever became of the first call, the nonce stays used.
    await w.settle(first, { status: 'failed' });
    denied(await w.authorize(ping('n-1', T0)), replayed);
    // Nonces are per principal.
    allowed(await w.authorize(ping('n-1', T0, { id: 'agent-8' })));
    // Remembered for twice max_age, that moment included, so a replay inside the age
    // window is always caught.
    clock.advance(10 * MINUTE);
    denied(await w.authorize(ping('n-1', clock.now())), replayed);
    clock.advance(1);
    allowed(await w.authorize(ping('n-1', clock.now())));
  }),

  example(
    "nonces: a request issued max_age ahead cannot come back at the window's far edge",
    async ({ writ, clock }) => {
      const w = writ(NONCES);
      // Issued 5 minutes ahead: accepted from now until 10 minutes from now, included.
      allowed(await w.authorize(ping('edge', T0 + 5 * MINUTE)));
      clock.advance(10 * MINUTE);
      denied(await w.authorize(ping('edge', T0 + 5 * MINUTE)), {
        code: 'NONCE_REPLAYED',
        rule: 'replay',
        key: 'agent-7:edge',
      });
    },
  ),

  example('nonces: a colon in a principal id does not make two nonces one', async ({ writ }) => {
    const w = writ(NONCES);
    const a = allowed(await w.authorize(ping('b:c', T0, { id: 'a' })));
    const ab = allowed(await w.authorize(ping('c', T0, { id: 'a:b' })));
    expect([a.reservations, ab.reservations]).toEqual([
      [{ kind: 'nonce', key: 'a:b:c' }],
      [{ kind: 'nonce', key: 'a\\:b:c' }],
    ]);
  }),

  example(
    'nonces: require_nonce refuses a request without one (NONCE_REQUIRED)',
    async ({ writ }) => {
      const w = writ(NONCES);
      denied(await w.authorize(ping(undefined, T0)), {
        code: 'NONCE_REQUIRED',
        rule: 'replay.require_nonce',
      });
    },
  ),

  example(
    'nonces: max_age refuses requests issued too early or too late (REQUEST_EXPIRED)',
    async ({ writ }) => {
      const w = writ(NONCES);
      const expired = { code: 'REQUEST_EXPIRED' as const, rule: 'replay.max_age' };
      denied(await w.authorize(ping('old', T0 - 5 * MINUTE - 1)), expired);
      denied(await w.authorize(ping('ahead', T0 + 5 * MINUTE + 1)), expired);
      denied(await w.authorize(action('ping', {}, { nonce: 'no-time' })), expired);
      // Refused before the store: those nonces were not used up.
      allowed(await w.authorize(ping('old', T0 - 5 * MINUTE)));
      allowed(await w.authorize(ping('ahead', T0 + 5 * MINUTE)));
      allowed(await w.authorize(ping('no-time', T0)));
    },
  ),
];

const writs: ConformanceCase[] = [
  example('writs: a writ settles once; unknown writs are refused', async ({ writ, store }) => {
    const w = writ(spendPolicy());
    const granted = allowed(await w.authorize(pay(100)));
    await w.settle(granted, { status: 'succeeded', cost: 40 });
    await rejectsWith(w.settle(granted, { status: 'succeeded', cost: 1 }), 'WRIT_INVALID');
    await rejectsWith(w.settle(granted.id, { status: 'failed' }), 'WRIT_INVALID');
    await rejectsWith(
      store.settle({ now: T0, writId: granted.id, status: 'cancelled' }),
      'WRIT_INVALID',
    );
    await rejectsWith(w.settle('wr_unknown', { status: 'succeeded' }), 'WRIT_INVALID');
    await rejectsWith(
      store.settle({ now: T0, writId: 'wr_unknown', status: 'failed' }),
      'WRIT_INVALID',
    );
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 40, 0, DAY_END)]);
  }),

  example('writs: settle reports the writ as settled', async ({ writ }) => {
    const w = writ(spendPolicy());
    const granted = allowed(await w.authorize(pay(100)));
    const settled = await w.settle(granted, { status: 'cancelled' });
    expect(settled.writ).toMatchObject({
      id: granted.id,
      actionDigest: granted.actionDigest,
      sessionId: 'run-1',
      tool: 'send_money',
      issuedAt: T0,
      expiresAt: T0 + 15 * MINUTE,
      settled: { at: T0, status: 'cancelled' },
    });
    expect(settled.labelsAdded).toEqual([]);
  }),
];

const SESSIONS = [
  'version: 1',
  'tools:',
  '  send_money:',
  `    - allow: 'args.recipient in session.attrs.payees'`,
  '  get_webpage:',
  '    - allow: true',
  'labels:',
  '  untrusted-content:',
  `    when: 'tool == "get_webpage"'`,
  'flow:',
  `  - forbid: '"untrusted-content" in session.labels && tool == "send_money"'`,
  '',
].join('\n');
const sendTo = (recipient: string, attrs: Record<string, unknown> = {}) =>
  action('send_money', { recipient }, { session: { id: 'run-1', attrs } });
const browse = () => action('get_webpage', { url: 'https://example.com' });

/** A writ record for driving `store.authorize` directly. */
function directWrit(id: string, ops: PlanOp[], sessionId = 'run-1'): WritRecord {
  return {
    id,
    decisionId: `dec-${id}`,
    actionDigest: `sha256:${'ab'.repeat(32)}`,
    sessionId,
    tool: 'send_money',
    issuedAt: T0,
    expiresAt: T0 + 10 * MINUTE,
    ops,
    labels: [],
    fencing: {},
  };
}
const DIRECT_OPS: PlanOp[] = [
  { kind: 'nonce', invariant: 'replay', key: 'agent-7:n-1', expiresAt: T0 + 10 * MINUTE },
  {
    kind: 'idempotency',
    invariant: 'idempotency.payments',
    key: 'payments:K1',
    digest: `sha256:${'ab'.repeat(32)}`,
    ttlMs: HOUR,
    onExpiry: 'in_doubt',
  },
  {
    kind: 'budget',
    invariant: 'budgets.spend',
    key: 'spend',
    amount: 10,
    limit: 100,
    windowEnd: null,
    holdTtlMs: 10 * MINUTE,
    onExpiry: 'release',
  },
  {
    kind: 'rate',
    invariant: 'rate_limits.calls',
    key: 'calls',
    count: 1,
    periodMs: HOUR,
    burst: 1,
  },
  { kind: 'concurrency', invariant: 'concurrency.slots', key: 'slots', max: 1, leaseMs: MINUTE },
];

const sessions: ConformanceCase[] = [
  example('sessions: attrs given at open override attrs sent with the action', async ({ writ }) => {
    const w = writ(SESSIONS);
    allowed(await w.authorize(sendTo('bob', { payees: ['bob'] })));
    const opened = await w.sessions.open('run-1', { payees: ['alice'] });
    expect(opened).toEqual({
      id: 'run-1',
      attrs: { payees: ['alice'] },
      opened: true,
      labels: [],
      version: 1,
    });
    denied(await w.authorize(sendTo('bob', { payees: ['bob'] })), { code: 'NO_MATCHING_RULE' });
    allowed(await w.authorize(sendTo('alice', { payees: ['bob'] })));
    // Other sessions are not affected.
    allowed(
      await w.authorize(
        action(
          'send_money',
          { recipient: 'bob' },
          { session: { id: 'run-2', attrs: { payees: ['bob'] } } },
        ),
      ),
    );
  }),

  example('sessions: labels are added when a call that ran settles', async ({ writ }) => {
    const w = writ(SESSIONS);
    await w.sessions.open('run-1', { payees: ['bob'] });
    // A cancelled call never ran: it marks nothing.
    const cancelled = await w.settle(allowed(await w.authorize(browse())), {
      status: 'cancelled',
    });
    expect(cancelled.labelsAdded).toEqual([]);
    expect(await w.sessions.get('run-1')).toMatchObject({ labels: [], version: 1 });
    allowed(await w.authorize(sendTo('bob')));

    const ok = await w.settle(allowed(await w.authorize(browse())), { status: 'succeeded' });
    expect(ok.labelsAdded).toEqual(['untrusted-content']);
    expect(await w.sessions.get('run-1')).toEqual({
      id: 'run-1',
      attrs: { payees: ['bob'] },
      opened: true,
      labels: ['untrusted-content'],
      version: 2,
    });
    denied(await w.authorize(sendTo('bob')), { code: 'DENIED_BY_RULE', rule: 'flow[0]' });
    // A label already there is not added twice, and the version does not move for nothing.
    const again = await w.settle(allowed(await w.authorize(browse())), { status: 'succeeded' });
    expect(again.labelsAdded).toEqual([]);
    expect((await w.sessions.get('run-1'))?.version).toBe(2);
    // Reopening replaces the attributes and keeps the labels.
    expect(await w.sessions.open('run-1', { payees: ['carol'] })).toEqual({
      id: 'run-1',
      attrs: { payees: ['carol'] },
      opened: true,
      labels: ['untrusted-content'],
      version: 3,
    });
  }),

  example(
    'sessions: a failed call adds its labels: its error may carry what it read',
    async ({ writ }) => {
      const w = writ(SESSIONS);
      await w.sessions.open('run-1', { payees: ['bob'] });
      const failed = await w.settle(allowed(await w.authorize(browse())), { status: 'failed' });
      expect(failed.labelsAdded).toEqual(['untrusted-content']);
      expect(await w.sessions.get('run-1')).toMatchObject({
        labels: ['untrusted-content'],
        version: 2,
      });
      denied(await w.authorize(sendTo('bob')), { code: 'DENIED_BY_RULE', rule: 'flow[0]' });
    },
  ),

  example(
    'sessions: a call nobody settled labels its session when its writ expires, for good',
    async ({ writ, clock }) => {
      const w = writ(SESSIONS);
      await w.sessions.open('run-1', { payees: ['bob'] });
      const crashed = allowed(await w.authorize(browse()));
      // While the call runs its result has not reached the agent: nothing is labelled yet.
      clock.advance(15 * MINUTE - 1);
      expect(await w.sessions.get('run-1')).toMatchObject({ labels: [], version: 1 });
      const before = allowed(await w.authorize(sendTo('bob')));
      // From the writ's expiry the call may have run: its labels are on the session, though
      // nobody settled it and nothing was written (the version stays) — and a sweep that
      // forgets the writ keeps them.
      clock.advance(1);
      expect(await w.sessions.get('run-1')).toMatchObject({
        labels: ['untrusted-content'],
        version: 1,
      });
      denied(await w.authorize(sendTo('bob')), { code: 'DENIED_BY_RULE', rule: 'flow[0]' });
      clock.advance(DAY + HOUR);
      await w.sweep();
      await rejectsWith(w.settle(crashed, { status: 'cancelled' }), 'WRIT_INVALID');
      await rejectsWith(w.settle(before, { status: 'succeeded' }), 'WRIT_INVALID');
      expect(await w.sessions.list()).toEqual([
        {
          id: 'run-1',
          attrs: { payees: ['bob'] },
          opened: true,
          labels: ['untrusted-content'],
          version: 1,
        },
      ]);
    },
  ),

  example(
    'sessions: a late settle does not take back labels an expiry gave; an early cancel leaves none',
    async ({ writ, clock }) => {
      const w = writ(SESSIONS);
      await w.sessions.open('run-1', { payees: ['bob'] });
      const late = allowed(await w.authorize(browse()));
      const early = allowed(await w.authorize(browse()));
      expect((await w.settle(early, { status: 'cancelled' })).labelsAdded).toEqual([]);
      clock.advance(15 * MINUTE);
      expect((await w.settle(late, { status: 'cancelled' })).labelsAdded).toEqual([]);
      expect(await w.sessions.get('run-1')).toMatchObject({
        labels: ['untrusted-content'],
        version: 1,
      });
      // Reopening keeps them too.
      expect(await w.sessions.open('run-1', { payees: ['bob'] })).toMatchObject({
        labels: ['untrusted-content'],
        version: 2,
      });
    },
  ),

  example('sessions: labels stick to sessions the host never opened', async ({ writ }) => {
    const w = writ(SESSIONS);
    await w.settle(allowed(await w.authorize(browse())), { status: 'succeeded' });
    expect(await w.sessions.get('run-1')).toEqual({
      id: 'run-1',
      attrs: {},
      opened: false,
      labels: ['untrusted-content'],
      version: 1,
    });
    // Not opened: the action's attrs still count, the stored labels too.
    denied(await w.authorize(sendTo('bob', { payees: ['bob'] })), {
      code: 'DENIED_BY_RULE',
      rule: 'flow[0]',
    });
  }),

  example(
    'sessions: a cancelled call in a session never opened leaves no session behind',
    async ({ writ }) => {
      const w = writ(SESSIONS);
      const first = allowed(await w.authorize(browse()));
      const second = allowed(await w.authorize(browse()));
      // Its labels wait on the session while the calls run…
      expect((await w.sessions.list()).map((s) => s.id)).toEqual(['run-1']);
      await w.settle(first, { status: 'cancelled' });
      expect(await w.sessions.get('run-1')).toMatchObject({ opened: false, labels: [] });
      // …and once none waits, the session holds nothing: no row is kept for ever.
      await w.settle(second, { status: 'cancelled' });
      expect(await w.sessions.list()).toEqual([]);
      expect(await w.sessions.get('run-1')).toBeUndefined();
      // It reads as it did before the calls: the next one is decided on the same session.
      allowed(await w.authorize(sendTo('bob', { payees: ['bob'] })));
    },
  ),

  example('sessions: get and list', async ({ store }) => {
    expect(await store.getSession('nope', T0)).toBeUndefined();
    expect(await store.listSessions(T0)).toEqual([]);
    await store.putSession('b', { n: 2 }, T0);
    await store.putSession('a', { n: 1 }, T0);
    await store.putSession('b', { n: 3 }, T0);
    expect(await store.listSessions(T0)).toEqual([
      { id: 'a', attrs: { n: 1 }, opened: true, labels: [], version: 1 },
      { id: 'b', attrs: { n: 3 }, opened: true, labels: [], version: 2 },
    ]);
  }),

  example(
    'sessions: labels read at a later time than a settle wrote are checked too, not only the version',
    async ({ store }) => {
      const tagged = { ...directWrit('w-p', []), labels: ['tagged'] };
      expect(await store.authorize({ now: T0, writ: tagged, ops: [], sessionId: 'run-1' })).toEqual(
        { status: 'granted', fencing: {} },
      );
      // A decision at a time past the writ's expiry reads its labels on the session…
      const later = T0 + 11 * MINUTE;
      const read = await store.getSession('run-1', later);
      expect(read).toMatchObject({ labels: ['tagged'], version: 0 });
      // …while a settle whose time was before the expiry cancels the writ: nothing was ever
      // labelled, nothing moved the version, and the session nobody opened is gone.
      await store.settle({ now: T0 + 9 * MINUTE, writId: 'w-p', status: 'cancelled' });
      expect(await store.getSession('run-1', later)).toBeUndefined();
      // The decision rests on labels that are no longer so: a conflict.
      const request = { now: later, ops: [], sessionId: 'run-1', sessionVersion: read!.version };
      expect(
        await store.authorize({
          ...request,
          writ: directWrit('w-d', []),
          sessionLabels: read!.labels,
        }),
      ).toEqual({ status: 'conflict', on: 'session' });
      expect(await store.authorize({ ...request, writ: directWrit('w-e', []) })).toEqual({
        status: 'granted',
        fencing: {},
      });
    },
  ),

  example(
    'sessions: a stale session version is a conflict and applies nothing',
    async ({ store }) => {
      await store.putSession('run-1', { payees: ['bob'] }, T0);
      const request = { now: T0, ops: DIRECT_OPS, sessionId: 'run-1' };
      expect(
        await store.authorize({
          ...request,
          writ: directWrit('w-1', DIRECT_OPS),
          sessionVersion: 0,
        }),
      ).toEqual({ status: 'conflict', on: 'session' });
      expect(
        await store.authorize({
          ...request,
          writ: directWrit('w-2', DIRECT_OPS),
          sessionVersion: 2,
        }),
      ).toEqual({ status: 'conflict', on: 'session' });
      expect(await store.listBudgets(T0)).toEqual([]);
      await rejectsWith(store.settle({ now: T0, writId: 'w-1', status: 'failed' }), 'WRIT_INVALID');
      // Nothing was taken: the same nonce, key, budget, token and slot are all still free.
      expect(
        await store.authorize({
          ...request,
          writ: directWrit('w-3', DIRECT_OPS),
          sessionVersion: 1,
        }),
      ).toEqual({ status: 'granted', fencing: { slots: 1 } });
      expect(await store.listBudgets(T0)).toEqual([budget('spend', 100, 0, 10, null)]);
      // A session never opened is at version 0.
      expect(
        await store.authorize({
          now: T0,
          ops: [],
          sessionId: 'run-9',
          writ: directWrit('w-4', [], 'run-9'),
          sessionVersion: 0,
        }),
      ).toEqual({ status: 'granted', fencing: {} });
    },
  ),

  example('settle: a store refuses a cost beyond MAX_AMOUNT itself', async ({ store }) => {
    // An unbounded cost could make spent infinite, which JSON stores as null: an empty
    // budget on a store that writes JSON, a full one on one that does not.
    const request = { now: T0, sessionId: 'run-1', sessionVersion: 0 };
    await store.authorize({ ...request, ops: DIRECT_OPS, writ: directWrit('w-1', DIRECT_OPS) });
    for (const cost of [Number.MAX_VALUE, MAX_AMOUNT * 2, -1]) {
      await rejectsWith(
        store.settle({ now: T0, writId: 'w-1', status: 'succeeded', cost }),
        'USAGE',
      );
    }
    const before = await store.listBudgets(T0);
    await store.settle({ now: T0, writId: 'w-1', status: 'succeeded', cost: MAX_AMOUNT });
    const after = await store.listBudgets(T0);
    expect(after.map((b) => b.spent)).toEqual(before.map((b) => b.spent + MAX_AMOUNT));
  }),

  example('sessions: a refused op is reported and nothing else is applied', async ({ store }) => {
    const request = { now: T0, sessionId: 'run-1', sessionVersion: 0 };
    expect(
      await store.authorize({ ...request, ops: DIRECT_OPS, writ: directWrit('w-1', DIRECT_OPS) }),
    ).toEqual({ status: 'granted', fencing: { slots: 1 } });
    // Only the last op (the slot) refuses; the nonce, key and budget before it must not stick.
    const ops: PlanOp[] = [
      { ...DIRECT_OPS[0]!, key: 'agent-7:n-2' } as PlanOp,
      { ...DIRECT_OPS[1]!, key: 'payments:K2' } as PlanOp,
      DIRECT_OPS[2]!,
      { ...DIRECT_OPS[3]!, key: 'calls:other' } as PlanOp,
      DIRECT_OPS[4]!,
    ];
    const refused = await store.authorize({ ...request, ops, writ: directWrit('w-2', ops) });
    expect(refused).toMatchObject({
      status: 'refused',
      reason: {
        code: 'CONCURRENCY_LIMIT',
        rule: 'concurrency.slots',
        key: 'slots',
        resetAt: iso(T0 + MINUTE),
      },
    });
    expect(await store.listBudgets(T0)).toEqual([budget('spend', 100, 0, 10, null)]);
    const retried = [...ops.slice(0, 4)];
    expect(
      await store.authorize({ ...request, ops: retried, writ: directWrit('w-3', retried) }),
    ).toEqual({ status: 'granted', fencing: {} });
    expect(await store.listBudgets(T0)).toEqual([budget('spend', 100, 0, 20, null)]);
  }),
];

const APPROVALS = [
  'version: 1',
  'tools:',
  '  send_money:',
  `    - require_approval: 'args.amount > 100'`,
  '      expires: 15m',
  '    - allow: true',
  '',
].join('\n');

/** {@link APPROVALS} with the payment's idempotency key claimed, as a caller sends it. */
const KEYED_APPROVALS = [
  APPROVALS,
  'idempotency:',
  '  payments:',
  `    match: 'tool == "send_money"'`,
  `    key: 'request.idempotencyKey'`,
  '    ttl: 24h',
  '',
].join('\n');

const approvals: ConformanceCase[] = [
  example(
    'approvals: approval_required opens one pending approval; retries share it',
    async ({ writ }) => {
      const w = writ(APPROVALS);
      const asked = await w.authorize(pay(250));
      expect(asked.outcome).toBe('approval_required');
      expect(asked.writ).toBeUndefined();
      expect(asked.reasons.map((r) => [r.code, r.rule])).toEqual([
        ['APPROVAL_REQUIRED', 'tools.send_money[0]'],
        ['ALLOWED_BY_RULE', 'tools.send_money[1]'],
      ]);
      const id = asked.approval!.id;
      expect(asked.approval).toEqual({ id, expiresAt: iso(T0 + 15 * MINUTE) });
      const pending = await w.approvals.list('pending');
      expect(pending).toEqual([
        {
          id,
          actionDigest: asked.actionDigest,
          policyHash: w.policy.hash,
          action: {
            tool: 'send_money',
            args: { recipient: 'bob', amount: 250 },
            principal: AGENT,
            session: 'run-1',
          },
          requestedBy: 'agent-7',
          reasons: asked.reasons,
          status: 'pending',
          createdAt: T0,
          expiresAt: T0 + 15 * MINUTE,
        },
      ]);
      expect(await w.approvals.get(id)).toEqual(pending[0]);
      const retry = await w.authorize(pay(250));
      expect(retry.outcome).toBe('approval_required');
      expect(retry.approval?.id).toBe(id);
      expect(await w.approvals.list()).toHaveLength(1);
      expect(await w.approvals.list('approved')).toEqual([]);
      expect(await w.approvals.get('apr_unknown')).toBeUndefined();
    },
  ),

  example('approvals: the principal who asked cannot decide', async ({ writ }) => {
    const w = writ(APPROVALS);
    const id = (await w.authorize(pay(250))).approval!.id;
    await rejectsWith(w.approvals.approve(id, { approver: 'agent-7' }), 'APPROVAL_INVALID');
    await rejectsWith(w.approvals.deny(id, { approver: 'agent-7' }), 'APPROVAL_INVALID');
    // Nor under another case, a compatibility form of the same letters, or with invisible
    // characters (a zero-width space, a combining grapheme joiner, a variation selector).
    for (const approver of [
      'Agent-7',
      'AGENT-7',
      '\uff41gent-7',
      'agent-7\u200b',
      'agent\u034f-7',
      'agent-7\ufe0f',
    ]) {
      await rejectsWith(w.approvals.approve(id, { approver }), 'APPROVAL_INVALID');
    }
    await rejectsWith(
      w.approvals.approve('apr_unknown', { approver: 'alice' }),
      'APPROVAL_INVALID',
    );
    expect((await w.approvals.get(id))?.status).toBe('pending');
  }),

  example('approvals: an approval binds to what its approver saw', async ({ writ }) => {
    const w = writ(APPROVALS);
    const asked = (estimate: number, extra: Record<string, unknown> = {}) =>
      w.authorize(pay(250, { estimate: { cost: estimate }, ...extra }));
    const id = (await asked(150)).approval!.id;
    expect((await w.approvals.get(id))?.action).toMatchObject({ estimate: { cost: 150 } });
    await w.approvals.approve(id, { approver: 'alice' });
    // The same call with another estimate, roles or attributes is not what was approved.
    for (const other of [
      asked(900_000),
      asked(150, { principal: { ...AGENT, roles: ['admin'] } }),
      asked(150, { principal: { ...AGENT, attrs: { tier: 'gold' } } }),
      asked(150, { session: { id: 'run-1', attrs: { payees: ['mallory'] } } }),
      asked(150, { session: { id: 'run-1', labels: ['exempt'] } }),
      asked(150, { idempotencyKey: 'K9' }),
      asked(150, { meta: { ticket: 'OPS-1' } }),
    ]) {
      const decided = await other;
      expect(decided.outcome).toBe('approval_required');
      expect(decided.approval?.id).not.toBe(id);
    }
    // What was approved goes through, once; a new nonce or time is still the same call.
    allowed(await asked(150, { nonce: 'n-9', issuedAt: iso(T0) }));
    expect((await w.approvals.get(id))?.status).toBe('consumed');
  }),

  example('approvals: someone in particular decides', async ({ writ }) => {
    // An approval by an empty or unprintable name would bind nobody, and would pass the
    // check that the approver is not the principal who asked.
    const w = writ(APPROVALS);
    const id = (await w.authorize(pay(250))).approval!.id;
    // Nor a name with spaces at its ends (` agent-7` reads as the principal who asked),
    // one that shows nothing, or one with a bidi control (which reorders what surrounds it).
    for (const approver of [
      '',
      '\u0000',
      'x'.repeat(257),
      '   ',
      ' agent-7',
      'agent-7 ',
      '\u200b',
      'agent\u202e-7',
    ]) {
      await rejectsWith(w.approvals.approve(id, { approver }), 'USAGE');
      await rejectsWith(w.approvals.deny(id, { approver }), 'USAGE');
    }
    await rejectsWith(
      w.approvals.approve(id, undefined as unknown as { approver: string }),
      'USAGE',
    );
    expect((await w.approvals.get(id))?.status).toBe('pending');
  }),

  example('approvals: an approval lets the same call through once', async ({ writ, clock }) => {
    const w = writ(APPROVALS);
    const id = (await w.authorize(pay(250))).approval!.id;
    clock.advance(MINUTE);
    const approved = await w.approvals.approve(id, { approver: 'alice', note: 'fine' });
    expect(approved).toMatchObject({
      id,
      status: 'approved',
      decidedBy: 'alice',
      decidedAt: T0 + MINUTE,
      note: 'fine',
    });
    await rejectsWith(w.approvals.deny(id, { approver: 'bob' }), 'APPROVAL_INVALID');
    const granted = await w.authorize(pay(250));
    allowed(granted);
    // The grant names its approval, and every rule that matched: the one that asked for it too.
    expect(granted.reasons.map((r) => [r.code, r.rule])).toEqual([
      ['APPROVAL_GRANTED', id],
      ['APPROVAL_REQUIRED', 'tools.send_money[0]'],
      ['ALLOWED_BY_RULE', 'tools.send_money[1]'],
    ]);
    expect((await w.approvals.get(id))?.status).toBe('consumed');
    await rejectsWith(w.approvals.approve(id, { approver: 'alice' }), 'APPROVAL_INVALID');
    // Used up: the next identical call asks again, with a new request.
    const again = await w.authorize(pay(250));
    expect(again.outcome).toBe('approval_required');
    expect(again.approval?.id).not.toBe(id);
    expect((await w.approvals.list('pending')).map((a) => a.id)).toEqual([again.approval!.id]);
  }),

  example(
    'approvals: a denied approval denies the call (APPROVAL_DENIED) until the request expires',
    async ({ writ, clock }) => {
      const w = writ(APPROVALS);
      const id = (await w.authorize(pay(250))).approval!.id;
      clock.advance(10 * MINUTE);
      const decided = await w.approvals.deny(id, { approver: 'alice', note: 'not this one' });
      expect(decided).toMatchObject({ status: 'denied', decidedBy: 'alice', note: 'not this one' });
      clock.advance(5 * MINUTE - 1);
      const refused = await w.authorize(pay(250));
      denied(refused, { code: 'APPROVAL_DENIED', rule: id, resetAt: iso(T0 + 15 * MINUTE) });
      expect(refused.reasons[0]!.message).toBe('not this one');
      expect(await w.approvals.list('pending')).toEqual([]);
      // Past the request's expiry the same call asks again; the denial stays on record.
      clock.advance(1);
      const again = await w.authorize(pay(250));
      expect(again.outcome).toBe('approval_required');
      expect(again.approval?.id).not.toBe(id);
      expect(again.reasons.map((r) => r.code)).not.toContain('APPROVAL_DENIED');
      expect((await w.approvals.get(id))?.status).toBe('denied');
      expect((await w.approvals.list('pending')).map((a) => a.id)).toEqual([again.approval!.id]);
    },
  ),

  example(
    'approvals: an expired approval is replaced, with APPROVAL_EXPIRED',
    async ({ writ, clock }) => {
      const w = writ(APPROVALS);
      const first = (await w.authorize(pay(250))).approval!.id;
      clock.advance(15 * MINUTE);
      expect((await w.approvals.get(first))?.status).toBe('expired');
      await rejectsWith(w.approvals.approve(first, { approver: 'alice' }), 'APPROVAL_INVALID');
      const renewed = await w.authorize(pay(250));
      expect(renewed.outcome).toBe('approval_required');
      const second = renewed.approval!.id;
      expect(second).not.toBe(first);
      expect(renewed.reasons).toContainEqual(
        expect.objectContaining({ code: 'APPROVAL_EXPIRED', rule: first }),
      );
      expect(renewed.approval?.expiresAt).toBe(iso(T0 + 30 * MINUTE));
      // An approval granted but not used in time expires too.
      await w.approvals.approve(second, { approver: 'alice' });
      clock.advance(15 * MINUTE);
      const third = await w.authorize(pay(250));
      expect(third.outcome).toBe('approval_required');
      expect(third.approval?.id).not.toBe(second);
      expect(third.reasons).toContainEqual(
        expect.objectContaining({ code: 'APPROVAL_EXPIRED', rule: second }),
      );
      expect((await w.approvals.list('expired')).map((a) => a.id).sort()).toEqual(
        [first, second].sort(),
      );
    },
  ),

  example('approvals: an approval is bound to the exact action', async ({ writ }) => {
    const w = writ(APPROVALS);
    const a = await w.authorize(pay(250));
    const b = await w.authorize(pay(251));
    const c = await w.authorize(pay(250, { session: { id: 'run-2' } }));
    const ids = [a, b, c].map((d) => d.approval!.id);
    expect(new Set(ids).size).toBe(3);
    await w.approvals.approve(ids[0]!, { approver: 'alice' });
    expect((await w.authorize(pay(251))).outcome).toBe('approval_required');
    expect((await w.authorize(pay(250, { session: { id: 'run-2' } }))).outcome).toBe(
      'approval_required',
    );
    allowed(await w.authorize(pay(250)));
  }),

  example(
    'approvals: store.authorize refuses an approval that is not approved',
    async ({ writ, store }) => {
      const w = writ(APPROVALS);
      const asked = await w.authorize(pay(250));
      const id = asked.approval!.id;
      const request = (writId: string, digest: string) => ({
        now: T0,
        ops: DIRECT_OPS.slice(2, 3),
        sessionId: 'run-1',
        sessionVersion: 0,
        approvalId: id,
        writ: { ...directWrit(writId, DIRECT_OPS.slice(2, 3)), actionDigest: digest },
      });
      expect(await store.authorize(request('w-1', asked.actionDigest))).toEqual({
        status: 'conflict',
        on: 'approval',
      });
      await w.approvals.approve(id, { approver: 'alice' });
      // Approved, but for another action.
      expect(await store.authorize(request('w-2', `sha256:${'cd'.repeat(32)}`))).toEqual({
        status: 'conflict',
        on: 'approval',
      });
      expect(await store.listBudgets(T0)).toEqual([]);
      expect((await store.getApproval(id, T0))?.status).toBe('approved');
      expect(await store.authorize(request('w-3', asked.actionDigest))).toEqual({
        status: 'granted',
        fencing: {},
      });
      expect((await store.getApproval(id, T0))?.status).toBe('consumed');
      expect(await store.authorize(request('w-4', asked.actionDigest))).toEqual({
        status: 'conflict',
        on: 'approval',
      });
      expect(await store.listBudgets(T0)).toEqual([budget('spend', 100, 0, 10, null)]);
    },
  ),

  example(
    'approvals: a call whose plan cannot be worked out is refused before anyone is asked',
    async ({ writ }) => {
      // The budget's cost reads an argument this call lacks: approved, authorize would
      // refuse it for that, so a person is not asked first.
      const w = writ(
        `${APPROVALS}budgets:\n  spend:\n    match: 'tool == "send_money"'\n    per: 'args.recipient'\n    limit: 1000\n    window: lifetime\n    cost: 'args.amount'\n`,
      );
      const refused = await w.authorize(action('send_money', { amount: 250 }));
      denied(refused, { code: 'CONDITION_ERROR', rule: 'budgets.spend.per' });
      expect(refused.approval).toBeUndefined();
      expect(await w.approvals.list()).toEqual([]);
      // With what it needs, the same call asks.
      const asked = await w.authorize(action('send_money', { amount: 250, recipient: 'bob' }));
      expect(asked.outcome).toBe('approval_required');
    },
  ),

  example(
    'approvals: a key held for another action is refused before anyone is asked (IDEMPOTENCY_MISMATCH)',
    async ({ writ, store }) => {
      const w = writ(KEYED_APPROVALS);
      const mismatch = {
        code: 'IDEMPOTENCY_MISMATCH' as const,
        rule: 'idempotency.payments',
        key: KEY,
      };
      const first = allowed(await w.authorize(keyed(50, 'K1')));
      // Approved, the call could never run with K1: nobody is asked, and the agent learns now.
      const refused = await w.authorize(keyed(250, 'K1'));
      denied(refused, mismatch);
      expect(refused.approval).toBeUndefined();
      expect(refused.reasons.map((r) => r.code)).toEqual([
        'IDEMPOTENCY_MISMATCH',
        'APPROVAL_REQUIRED',
        'ALLOWED_BY_RULE',
      ]);
      expect(await w.approvals.list()).toEqual([]);
      await w.settle(first, { status: 'succeeded', result: 'paid' });
      denied(await w.authorize(keyed(250, 'K1')), mismatch);
      expect(await w.approvals.list()).toEqual([]);
      // Issued together, the call that reaches the store first claims the key, in every
      // store: the other is checked in the step that would ask, after that claim.
      const [claimed, late] = await Promise.all([
        w.authorize(keyed(60, 'K2')),
        w.authorize(keyed(260, 'K2')),
      ]);
      allowed(claimed);
      denied(late, { ...mismatch, key: 'payments:K2' });
      expect(await w.approvals.list()).toEqual([]);
      // Logged as the denials they are, naming no approval.
      const logged = (await store.readLog(0, 100)).flatMap((e) => (e.decision ? [e.decision] : []));
      expect(logged.map((d) => [d.outcome, d.reasons[0]?.code, d.approvalId])).toEqual([
        ['allow', 'ALLOWED_BY_RULE', undefined],
        ['deny', 'IDEMPOTENCY_MISMATCH', undefined],
        ['deny', 'IDEMPOTENCY_MISMATCH', undefined],
        ['allow', 'ALLOWED_BY_RULE', undefined],
        ['deny', 'IDEMPOTENCY_MISMATCH', undefined],
      ]);
      expect(logged[1]).toMatchObject({ id: refused.id, reasons: refused.reasons });
    },
  ),

  example(
    'approvals: a retry of a call that succeeded replays before anyone is asked, also when it races the settle',
    async ({ writ, store }) => {
      const w = writ(KEYED_APPROVALS);
      const asked = await w.authorize(keyed(250, 'K1'));
      await w.approvals.approve(asked.approval!.id, { approver: 'alice' });
      const first = allowed(await w.authorize(keyed(250, 'K1')));
      // While the approved call is in flight, a retry asks again: that call may still fail,
      // and then this one needs its own approval to run (authorize answers for the key then).
      const waiting = await w.authorize(keyed(250, 'K1'));
      expect(waiting.outcome).toBe('approval_required');
      // The success is settled as the retry comes in: the retry reads the key while it is
      // still in flight, and reaches the store after the settle — its step sees the success.
      const [, retry] = await Promise.all([
        w.settle(first, { status: 'succeeded', result: { transfer: 'tx-1' } }),
        w.authorize(keyed(250, 'K1')),
      ]);
      expect(retry).toMatchObject({ outcome: 'replay', result: { transfer: 'tx-1' } });
      expect(retry.reasons.map((r) => r.code)).toEqual(['IDEMPOTENT_REPLAY']);
      expect(retry.reasons[0]!.message).toContain(first.id);
      expect(retry.approval).toBeUndefined();
      // Replayed, not asked: only the approval used and the one asked while in flight.
      const approvals = await w.approvals.list();
      expect(approvals.map((a) => [a.id, a.status])).toEqual([
        [asked.approval!.id, 'consumed'],
        [waiting.approval!.id, 'pending'],
      ]);
      expect((await w.authorize(keyed(250, 'K1'))).outcome).toBe('replay');
      expect(await w.approvals.list()).toEqual(approvals);
      const last = (await store.readLog(0, 100)).at(-1)!.decision;
      expect(last).toMatchObject({ outcome: 'replay', reasons: retry.reasons });
      expect(last?.approvalId).toBeUndefined();
    },
  ),

  example(
    'approvals: store.requestApproval answers from the claims in its step, recording no approval',
    async ({ store }) => {
      const claim = DIRECT_OPS[1] as IdempotencyOp;
      const other = { ...claim, digest: `sha256:${'cd'.repeat(32)}` };
      const free = { ...claim, key: 'payments:K9' };
      const step = (id: string, claims: IdempotencyOp[]) => {
        const decision: Decision = {
          id: `dec-${id}`,
          outcome: 'approval_required',
          reasons: [],
          policyHash: 'sha256:p',
          at: iso(T0),
          actionDigest: claims[claims.length - 1]!.digest,
        };
        const approval: ApprovalRecord = {
          id,
          actionDigest: `sha256:${id}`,
          policyHash: 'sha256:p',
          action: { tool: 'send_money' },
          requestedBy: 'agent-7',
          reasons: [],
          status: 'pending',
          createdAt: T0,
          expiresAt: T0 + 15 * MINUTE,
        };
        // K1 is a value the log hides, as `redact:` hides an argument a key is built from.
        const log = { decision, action: { tool: 'send_money' }, redacted: [], secrets: ['K1'] };
        return { approval, claims, log };
      };
      const ids = async () => (await store.listApprovals(T0)).map((a) => a.id);
      // No claim held: asked, as without claims.
      expect(await store.requestApproval(step('apr-1', [free, claim]))).toMatchObject({
        status: 'requested',
        approval: { id: 'apr-1' },
      });
      const ops = [claim];
      expect(
        await store.authorize({ now: T0, writ: directWrit('w-1', ops), ops, sessionId: 'run-1' }),
      ).toEqual({ status: 'granted', fencing: {} });
      // In flight for this action: still asked.
      expect(await store.requestApproval(step('apr-2', [free, claim]))).toMatchObject({
        status: 'requested',
        approval: { id: 'apr-2' },
      });
      const mismatch = {
        status: 'refused',
        reason: reason('IDEMPOTENCY_MISMATCH', { rule: 'idempotency.payments', key: KEY }),
      };
      expect(await store.requestApproval(step('apr-3', [free, other]))).toEqual(mismatch);
      await store.settle({ now: T0, writId: 'w-1', status: 'succeeded', result: { id: 'tx' } });
      const replay = await store.requestApproval(step('apr-4', [free, claim]));
      expect(replay).toEqual({ status: 'replay', result: { id: 'tx' }, writId: 'w-1' });
      expect(await store.requestApproval(step('apr-5', [other, claim]))).toEqual(mismatch);
      // The claims were checked, not taken: the key is still w-1's, and K9 is free.
      expect(await store.requestApproval(step('apr-6', [free]))).toMatchObject({
        status: 'requested',
      });
      expect(await ids()).toEqual(['apr-1', 'apr-2', 'apr-6']);
      // A replayed result is the caller's own copy.
      if (replay.status === 'replay') (replay.result as { id: string }).id = 'changed';
      expect(await store.requestApproval(step('apr-7', [claim]))).toMatchObject({
        result: { id: 'tx' },
      });
      // Each answer is logged in the same step, a hidden key shown as the log hides it.
      const logged = (await store.readLog(0, 100)).flatMap((e) => (e.decision ? [e.decision] : []));
      expect(logged.map((d) => [d.id, d.outcome, d.approvalId, d.reasons[0]?.key])).toEqual([
        ['dec-apr-1', 'approval_required', 'apr-1', undefined],
        ['dec-apr-2', 'approval_required', 'apr-2', undefined],
        ['dec-apr-3', 'deny', undefined, 'payments:[redacted]'],
        ['dec-apr-4', 'replay', undefined, undefined],
        ['dec-apr-5', 'deny', undefined, 'payments:[redacted]'],
        ['dec-apr-6', 'approval_required', 'apr-6', undefined],
        ['dec-apr-7', 'replay', undefined, undefined],
      ]);
      expect(logged[3]!.reasons[0]).toMatchObject({ code: 'IDEMPOTENT_REPLAY' });
    },
  ),
];

const SHADOW = [
  'version: 1',
  'mode: shadow',
  'tools:',
  '  send_money:',
  `    - forbid: 'args.amount > 1000'`,
  `    - require_approval: 'args.amount > 100'`,
  '    - allow: true',
  'budgets:',
  '  spend:',
  '    limit: 100',
  '    window: lifetime',
  `    cost: 'args.amount'`,
  'replay:',
  '  require_nonce: true',
  '  max_age: 1d',
  '',
].join('\n');

/** Shadow mode, with a call under review waiting for approval, and idempotency keys. */
const SHADOW_KEYED = [
  'version: 1',
  'mode: shadow',
  'tools:',
  '  send_money:',
  `    - require_approval: 'has(request.meta.review)'`,
  '    - allow: true',
  'idempotency:',
  '  payments:',
  `    match: 'tool == "send_money"'`,
  `    key: 'request.idempotencyKey'`,
  '    ttl: 24h',
  '',
].join('\n');

const shadow: ConformanceCase[] = [
  example(
    'shadow mode: a denial is an allow with the shadow decision and an empty writ',
    async ({ writ }) => {
      const w = writ(SHADOW);
      const n = (i: number) => ({ nonce: `n-${i}`, issuedAt: iso(T0) });
      const forbidden = await w.authorize(pay(2000, n(1)));
      const writ1 = allowed(forbidden);
      expect(writ1.reservations).toEqual([]);
      expect(forbidden.reasons.map((r) => r.code)).toEqual(['SHADOW_MODE']);
      expect(forbidden.shadow?.outcome).toBe('deny');
      expect(forbidden.shadow?.reasons[0]).toMatchObject({
        code: 'DENIED_BY_RULE',
        rule: 'tools.send_money[0]',
      });
      expect(await w.budgets()).toEqual([]);
      // The shadow writ settles like any other, and changes nothing.
      await w.settle(writ1, { status: 'succeeded', cost: 2000 });
      expect(await w.budgets()).toEqual([]);

      // Allowed calls still reserve for real; what would not fit passes without reserving.
      allowed(await w.authorize(pay(80, n(2))));
      const over = await w.authorize(pay(50, n(3)));
      expect(allowed(over).reservations).toEqual([]);
      expect(over.shadow?.reasons[0]).toMatchObject({
        code: 'BUDGET_EXHAUSTED',
        key: 'spend',
        remaining: 20,
      });
      expect(await w.budgets()).toEqual([budget('spend', 100, 0, 80, null)]);

      const asked = await w.authorize(pay(500, n(4)));
      allowed(asked);
      expect(asked.shadow?.outcome).toBe('approval_required');
      expect(asked.approval).toBeUndefined();
      expect(await w.approvals.list()).toEqual([]);
    },
  ),

  example('shadow mode: envelope denials pass too, also in an opened session', async ({ writ }) => {
    const unlogged = writ(SHADOW, { log: false });
    await unlogged.sessions.open('run-9', {});
    const quiet = await unlogged.authorize(pay(10, { session: { id: 'run-9' } }));
    expect(allowed(quiet).reservations).toEqual([]);
    expect(quiet.shadow?.reasons[0]).toMatchObject({ code: 'NONCE_REQUIRED' });

    const w = writ(SHADOW);
    await w.sessions.open('run-1', {});
    const missing = await w.authorize(pay(10));
    expect(allowed(missing).reservations).toEqual([]);
    expect(missing.shadow?.reasons[0]).toMatchObject({ code: 'NONCE_REQUIRED' });
    let ran = false;
    const executed = await w.execute(pay(10), () => {
      ran = true;
      return 'done';
    });
    expect(executed.outcome).toBe('allow');
    expect(ran).toBe(true);
    allowed(await w.authorize(pay(10, { nonce: 'x', issuedAt: iso(T0) })));
    const replayed = await w.authorize(pay(10, { nonce: 'x', issuedAt: iso(T0) }));
    expect(allowed(replayed).reservations).toEqual([]);
    expect(replayed.shadow?.reasons[0]).toMatchObject({ code: 'NONCE_REPLAYED' });
  }),

  example(
    'shadow mode: a call that would wait for approval is answered by its idempotency keys, as enforced',
    async ({ writ, store }) => {
      for (const log of [true, false]) {
        const w = writ(SHADOW_KEYED, { log });
        const key = log ? 'K1' : 'K2';
        const review = { meta: { review: true } };
        const first = allowed(await w.authorize(keyed(250, key)));
        // Another action with the key: enforced, it would be refused before anyone is
        // asked; in shadow mode it runs, reserving nothing, and the decision says why.
        const other = await w.authorize(keyed(500, key, review));
        expect(allowed(other).reservations).toEqual([]);
        expect(other.shadow?.outcome).toBe('deny');
        expect(other.shadow?.reasons.map((r) => [r.code, r.key])).toEqual([
          ['IDEMPOTENCY_MISMATCH', `payments:${key}`],
          ['APPROVAL_REQUIRED', undefined],
          ['ALLOWED_BY_RULE', undefined],
        ]);
        await w.settle(first, { status: 'succeeded', result: 'paid' });
        // The first call again, under review: it ran already, so it replays.
        const again = await w.authorize(keyed(250, key, review));
        expect(again).toMatchObject({ outcome: 'replay', result: 'paid' });
        expect(again.writ).toBeUndefined();
        // A call no key answers would still wait for approval.
        const fresh = await w.authorize(keyed(250, `${key}-new`, review));
        expect([fresh.outcome, fresh.shadow?.outcome]).toEqual(['allow', 'approval_required']);
        expect(await w.approvals.list()).toEqual([]);
      }
      const logged = (await store.readLog(0, 100)).flatMap((e) => (e.decision ? [e.decision] : []));
      expect(logged.map((d) => [d.outcome, d.shadow?.outcome])).toEqual([
        ['allow', undefined],
        ['allow', 'deny'],
        ['replay', undefined],
        ['allow', 'approval_required'],
      ]);
    },
  ),
];

/** `store` with some methods made to fail, as an unreachable database would. */
function failing(store: Store, broken: ReadonlySet<string>): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (typeof property === 'string' && broken.has(property))
        return () => Promise.reject(new Error(`${property}: connection lost`));
      return value.bind(target);
    },
  });
}

const failures: ConformanceCase[] = [
  example(
    'failures: a store that throws gives deny STORE_UNAVAILABLE, never allow',
    async ({ writ, store }) => {
      const broken = failing(store, new Set(['authorize']));
      const w = writ(spendPolicy(), { store: broken });
      const refused = await w.authorize(pay(10));
      denied(refused, { code: 'STORE_UNAVAILABLE' });
      let ran = false;
      const executed = await w.execute(pay(10), () => {
        ran = true;
      });
      expect(executed.outcome).toBe('deny');
      expect(ran).toBe(false);
      expect(await store.listBudgets(T0)).toEqual([]);

      // The approval on record is read only for a tool that may need one.
      for (const [method, policy] of [
        ['getSession', spendPolicy()],
        ['findApproval', APPROVALS],
      ] as const) {
        const reads = writ(policy, { store: failing(store, new Set([method])) });
        denied(await reads.authorize(pay(10)), { code: 'STORE_UNAVAILABLE' });
      }
      const approvals = writ(APPROVALS, { store: failing(store, new Set(['requestApproval'])) });
      denied(await approvals.authorize(pay(500)), { code: 'STORE_UNAVAILABLE' });
      const settles = writ(spendPolicy(), { store: failing(store, new Set(['settle'])) });
      const granted = allowed(await settles.authorize(pay(10)));
      await expect(settles.settle(granted, { status: 'succeeded' })).rejects.toThrow(
        'connection lost',
      );
      expect(await store.listBudgets(T0)).toEqual([budget(DAY_KEY, 500, 0, 10, DAY_END)]);
    },
  ),

  example(
    'failures: a closed store answers nothing, each call a STORE_FAILURE',
    async ({ writ, store }) => {
      const w = writ(SESSIONS);
      await w.sessions.open('run-1', { payees: ['bob'] });
      await store.close();
      const calls: [string, () => Promise<unknown>][] = [
        ['getSession', () => store.getSession('run-1', T0)],
        ['listSessions', () => store.listSessions(T0)],
        ['listBudgets', () => store.listBudgets(T0)],
        ['listApprovals', () => store.listApprovals(T0)],
        ['getApproval', () => store.getApproval('apr-1', T0)],
        ['listOpenWrits', () => store.listOpenWrits(T0)],
        ['logHead', () => store.logHead()],
        ['readLog', () => store.readLog(0, 10)],
        ['findDecision', () => store.findDecision('dec-1')],
        ['verifyLog', () => store.verifyLog()],
        ['getPolicy', () => store.getPolicy('sha256:x')],
        ['sweep', () => store.sweep(T0, 10)],
        ['putSession', () => store.putSession('run-2', {}, T0)],
      ];
      for (const [name, call] of calls) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect([name, (error as WritError | undefined)?.code]).toEqual([name, 'STORE_FAILURE']);
      }
      // The engine fails closed on it.
      denied(await w.authorize(sendTo('bob')), { code: 'STORE_UNAVAILABLE' });
    },
  ),

  example(
    'sessions: in shadow mode, a call nobody settled labels its session at expiry too',
    async ({ writ, clock, store }) => {
      const w = writ(
        `${SESSIONS}mode: shadow\n`.replace(
          '  - forbid: \'"untrusted-content" in session.labels && tool == "send_money"\'',
          '  - forbid: \'"untrusted-content" in session.labels && tool == "send_money"\'\n  - forbid: \'tool == "get_webpage" && args.url == "blocked"\'',
        ),
      );
      await w.sessions.open('run-1', { payees: ['bob'] });
      // A call the policy would deny: shadow mode lets it run, and it labels like any other.
      const blocked = await w.authorize(action('get_webpage', { url: 'blocked' }));
      expect([blocked.outcome, blocked.shadow?.outcome]).toEqual(['allow', 'deny']);
      clock.advance(15 * MINUTE);
      expect(await w.sessions.get('run-1')).toMatchObject({ labels: ['untrusted-content'] });
      const next = await w.authorize(sendTo('bob'));
      expect(next.outcome).toBe('allow');
      expect(next.shadow?.reasons[0]).toMatchObject({ code: 'DENIED_BY_RULE', rule: 'flow[0]' });
      expect((await store.readLog(0, 100)).at(-1)?.decision?.shadow?.outcome).toBe('deny');
    },
  ),

  example('failures: shadow mode fails closed too', async ({ writ, store }) => {
    const w = writ(SHADOW, { store: failing(store, new Set(['authorize'])) });
    denied(await w.authorize(pay(2000, { nonce: 'a' })), { code: 'STORE_UNAVAILABLE' });
    denied(await w.authorize(pay(10)), { code: 'STORE_UNAVAILABLE' });
    denied(await w.authorize(pay(10, { nonce: 'b' })), { code: 'STORE_UNAVAILABLE' });
  }),
];

const snapshots: ConformanceCase[] = [
  example(
    'records: the store keeps its own copies of what it is given and returns',
    async ({ store, writ }) => {
      const attrs = { payees: ['bob'] };
      const opened = await store.putSession('run-1', attrs, T0);
      attrs.payees.push('mallory');
      opened.attrs.payees = ['eve'];
      opened.labels.push('x');
      const read = await store.getSession('run-1', T0);
      expect(read).toEqual({
        id: 'run-1',
        attrs: { payees: ['bob'] },
        opened: true,
        labels: [],
        version: 1,
      });
      read!.version = 99;
      (await store.listSessions(T0))[0]!.labels.push('y');
      expect(await store.getSession('run-1', T0)).toEqual({
        id: 'run-1',
        attrs: { payees: ['bob'] },
        opened: true,
        labels: [],
        version: 1,
      });

      const w = writ(APPROVALS);
      const id = (await w.authorize(pay(250))).approval!.id;
      const approval = await store.getApproval(id, T0);
      approval!.status = 'approved';
      (approval!.action.args as Record<string, unknown>).amount = 1;
      (await store.listApprovals(T0))[0]!.requestedBy = 'alice';
      expect(await store.getApproval(id, T0)).toMatchObject({
        status: 'pending',
        requestedBy: 'agent-7',
        action: { args: { amount: 250 } },
      });
      const record = {
        ...(await store.getApproval(id, T0))!,
        id: 'apr-own',
        actionDigest: `sha256:${'ef'.repeat(32)}`,
      };
      const stored = await store.requestApproval({ approval: record });
      record.status = 'approved';
      expect(stored.status).toBe('requested');
      if (stored.status === 'requested') stored.approval.requestedBy = 'alice';
      expect(await store.getApproval('apr-own', T0)).toMatchObject({
        status: 'pending',
        requestedBy: 'agent-7',
      });
    },
  ),
];

const LOGGED = [
  'version: 1',
  'tools:',
  '  send_money:',
  `    - require_approval: 'args.amount > 100'`,
  '    - allow: true',
  'budgets:',
  '  spend:',
  '    limit: 150',
  '    window: lifetime',
  `    cost: 'args.amount'`,
  '',
].join('\n');

const decisionLog: ConformanceCase[] = [
  example(
    'log: every decision, settlement, approval and session change is one chained entry',
    async ({ writ, store }) => {
      const w = writ(LOGGED);
      await w.sessions.open('run-1', { team: 'a' });
      const granted = await w.authorize(pay(100));
      const refused = await w.authorize(action('nope', {}));
      const asked = await w.authorize(pay(120));
      await w.approvals.approve(asked.approval!.id, { approver: 'alice' });
      const over = await w.authorize(pay(120));
      await w.settle(granted.writ!, { status: 'succeeded', cost: 90, result: { ok: true } });
      const invalid = await w.authorize({ tool: 7 });

      const log = await store.readLog(0, 1000);
      expect(log.map((e) => [e.seq, e.kind])).toEqual([
        [1, 'session'],
        [2, 'decision'],
        [3, 'decision'],
        [4, 'decision'],
        [5, 'approval'],
        [6, 'decision'],
        [7, 'settlement'],
        [8, 'decision'],
      ]);
      log.forEach((entry, i) => {
        expect(entry.at).toBe(iso(T0));
        expect(entry.prevHash).toBe(i === 0 ? GENESIS_HASH : log[i - 1]!.hash);
        expect(entry.hash).toBe(entryHash(entry));
      });
      expect(log[0]!.session).toEqual({ id: 'run-1', attrs: { team: 'a' }, version: 1 });
      expect(log[1]!.decision).toMatchObject({
        id: granted.id,
        outcome: 'allow',
        actionDigest: granted.actionDigest,
        writId: granted.writ!.id,
        reservations: [{ kind: 'budget', key: 'spend', amount: 100 }],
      });
      expect(log[2]!.decision).toMatchObject({ id: refused.id, outcome: 'deny' });
      expect(log[3]!.decision).toMatchObject({
        id: asked.id,
        outcome: 'approval_required',
        approvalId: asked.approval!.id,
      });
      expect(log[4]!.approval).toEqual({ id: asked.approval!.id, status: 'approved', by: 'alice' });
      // The approved call did not fit the budget: logged as the denial it became.
      expect(log[5]!.decision).toMatchObject({ id: over.id, outcome: 'deny' });
      expect(log[5]!.decision?.reasons[0]).toMatchObject({
        code: 'BUDGET_EXHAUSTED',
        remaining: 50,
      });
      expect(log[5]!.decision?.writId).toBeUndefined();
      expect(log[6]!.settlement).toEqual({
        writId: granted.writ!.id,
        decisionId: granted.id,
        status: 'succeeded',
        cost: 90,
        overage: {},
        labelsAdded: [],
        resultDigest: digestJson({ ok: true }),
      });
      expect(log[7]!.decision).toMatchObject({ id: invalid.id, outcome: 'deny' });

      expect(await store.readLog(3, 2)).toEqual(log.slice(3, 5));
      expect(await store.readLog(8, 10)).toEqual([]);
      const head = { seq: 8, hash: log[7]!.hash };
      expect(await store.logHead()).toEqual(head);
      expect(await store.verifyLog()).toEqual({ ok: true, entries: 8, head });
      expect(await store.findDecision(asked.id)).toEqual(log[3]);
      expect(await store.findDecision('dec_unknown')).toBeUndefined();
    },
  ),

  example('log: a step that applies nothing logs nothing', async ({ writ, store }) => {
    expect(await store.logHead()).toBeUndefined();
    expect(await store.verifyLog()).toMatchObject({ ok: true, entries: 0 });
    await store.putSession('run-1', {}, T0);
    const w = writ(LOGGED);
    const draft = {
      id: 'dec-direct',
      outcome: 'allow' as const,
      reasons: [],
      policyHash: w.policy.hash,
      at: iso(T0),
      actionDigest: `sha256:${'ab'.repeat(32)}`,
    };
    const ops = DIRECT_OPS.slice(2, 3);
    const conflict = await store.authorize({
      now: T0,
      writ: directWrit('w-1', ops),
      ops,
      sessionId: 'run-1',
      sessionVersion: 0,
      log: { decision: draft, action: { tool: 'send_money' }, redacted: [] },
    });
    expect(conflict).toMatchObject({ status: 'conflict', on: 'session' });
    expect((await store.readLog(0, 100)).map((e) => e.kind)).toEqual(['session']);
    await rejectsWith(
      store.settle({ now: T0, writId: 'wr_unknown', status: 'failed' }),
      'WRIT_INVALID',
    );
    await rejectsWith(
      store.decideApproval('apr_unknown', { approve: true, approver: 'alice' }, T0),
      'APPROVAL_INVALID',
    );
    expect(await store.logHead()).toMatchObject({ seq: 1 });
  }),

  example('policies: texts are kept once, by hash', async ({ store, writ }) => {
    expect(await store.getPolicy('sha256:unknown')).toBeUndefined();
    const sources = [{ path: 'a.yaml', text: 'version: 1\n' }];
    await store.putPolicy('sha256:aa', sources);
    await store.putPolicy('sha256:aa', [{ path: 'other.yaml', text: 'changed' }]);
    expect(await store.getPolicy('sha256:aa')).toEqual(sources);
    const w = writ(LOGGED);
    await w.authorize(pay(1));
    expect(await store.getPolicy(w.policy.hash)).toEqual(w.policy.sources);
  }),
];

/** Payments that leave every kind of record: those a sweep removes and those it keeps. */
const SWEPT = [
  spendPolicy(),
  'rate_limits:',
  '  calls:',
  `    match: 'tool == "send_money"'`,
  `    per: 'principal.id'`,
  '    rate: 10/1m',
  'concurrency:',
  '  slots:',
  `    match: 'tool == "send_money"'`,
  `    per: 'principal.tenant'`,
  '    max: 5',
  '    lease: 20m',
  'idempotency:',
  '  payments:',
  `    match: 'tool == "send_money"'`,
  `    key: 'request.idempotencyKey'`,
  '    ttl: 1h',
  'replay:',
  '  max_age: 5m',
  '',
].join('\n');
const sweptPay = (amount: number, key: string, now: number) =>
  pay(amount, { idempotencyKey: key, nonce: key, issuedAt: iso(now) });

const sweeps: ConformanceCase[] = [
  example('sweep: removes only what can no longer change an answer', async ({ writ, clock }) => {
    const w = writ(SWEPT);
    const done = allowed(await w.authorize(sweptPay(10, 'K1', T0)));
    await w.settle(done, { status: 'succeeded', result: 'paid' });
    const open = allowed(await w.authorize(sweptPay(20, 'K2', T0)));
    // Nothing has run its course yet: the rate bucket is still draining.
    expect(await w.sweep()).toEqual({ examined: 7, removed: {}, done: true });

    // Just past the nonce window (twice max_age, that moment included): the nonces stay for
    // the minute a sweep leaves to decisions that read an earlier time; the rate bucket,
    // refilled long before, goes.
    clock.advance(10 * MINUTE + 1);
    expect(await w.sweep()).toEqual({ examined: 7, removed: { rate: 1 }, done: true });
    // A minute on the nonces go, before the writs' expiry and the claims' TTL.
    clock.advance(MINUTE);
    expect(await w.sweep()).toEqual({ examined: 6, removed: { nonce: 2 }, done: true });
    // A minute past the writs' expiry (their 20-minute lease): the settled one goes, the
    // open one stays.
    clock.advance(10 * MINUTE - 1);
    expect((await w.sweep()).removed).toEqual({ writ: 1 });
    await rejectsWith(w.settle(done, { status: 'succeeded' }), 'WRIT_INVALID');
    // Past the claims' TTL: both go, the in-doubt one too.
    clock.advance(HOUR);
    expect((await w.sweep()).removed).toEqual({ idem: 2 });
    expect(await w.sweep()).toEqual({ examined: 1, removed: {}, done: true });

    // What is kept still answers: the budget and the lease of the open writ, its settle.
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 10, 0, DAY_END)]);
    const settled = await w.settle(open, { status: 'succeeded', cost: 20 });
    expect(settled.overage).toEqual({});
    expect(await w.budgets()).toEqual([budget(DAY_KEY, 500, 30, 0, DAY_END)]);
    // And a swept key or nonce is simply free again, as it already was.
    allowed(await w.authorize(sweptPay(10, 'K1', clock.now())));
  }),

  example(
    'sweep: an unsettled writ goes once a late settle can change nothing',
    async ({ writ, clock }) => {
      const w = writ(
        [
          spendPolicy(['hold_ttl: 10m', 'on_expiry: capture']),
          'idempotency:',
          '  payments:',
          `    match: 'tool == "send_money" && has(request.idempotencyKey)'`,
          `    key: 'request.idempotencyKey'`,
          '    ttl: 48h',
          '',
        ].join('\n'),
      );
      const captured = allowed(await w.authorize(pay(30)));
      const inDoubt = allowed(await w.authorize(keyed(20, 'K1')));
      expect((await w.openWrits()).map((o) => [o.writ.id, o.claims.length])).toEqual([
        [captured.id, 0],
        [inDoubt.id, 1],
      ]);
      // A late settle corrects the capture for a day after the writ's expiry (its 10-minute
      // hold), and a sweep leaves a minute on top…
      clock.advance(10 * MINUTE + DAY + MINUTE - 1);
      expect((await w.sweep()).removed).toEqual({});
      clock.advance(1);
      // …and then it is final: that writ goes. The other still answers for its claim.
      expect((await w.sweep()).removed).toEqual({ writ: 1 });
      await rejectsWith(w.settle(captured, { status: 'failed' }), 'WRIT_INVALID');
      expect((await w.openWrits()).map((o) => o.writ.id)).toEqual([inDoubt.id]);
      // Until the claim's TTL is over (and the minute a sweep leaves after it).
      clock.advance(2 * DAY - (10 * MINUTE + DAY) - 1);
      expect((await w.sweep()).removed).toEqual({});
      clock.advance(1);
      expect((await w.sweep()).removed).toEqual({ idem: 1, writ: 1 });
      expect(await w.openWrits()).toEqual([]);
    },
  ),

  example(
    'sweep: a claim just over stays for a decision that read an earlier time',
    async ({ store }) => {
      const claim = DIRECT_OPS[1]!;
      const paid = (id: string, now: number) =>
        store.authorize({ now, writ: directWrit(id, [claim]), ops: [claim], sessionId: 'run-1' });
      await paid('w-1', T0);
      await store.settle({ now: T0, writId: 'w-1', status: 'succeeded', result: 'paid' });
      // One process sweeps as the claim's hour ends, while another's retry, whose time was
      // read a moment before, waits for the lock: removed, the claim would let it run again.
      await store.sweep(T0 + HOUR, 1_000);
      expect(await paid('w-2', T0 + HOUR - 1)).toMatchObject({ status: 'replay', result: 'paid' });
    },
  ),

  example(
    'sweep: a small limit resumes where it stopped and visits everything',
    async ({ writ, clock }) => {
      const w = writ(SWEPT);
      for (let i = 0; i < 7; i++) {
        const granted = allowed(await w.authorize(sweptPay(1, `K${i}`, T0)));
        await w.settle(granted, { status: 'succeeded' });
      }
      clock.advance(2 * HOUR);
      const removed: Record<string, number> = {};
      let sweeps = 0;
      for (let report = await w.sweep({ limit: 2 }); ; report = await w.sweep({ limit: 2 })) {
        sweeps++;
        for (const [kind, n] of Object.entries(report.removed))
          removed[kind] = (removed[kind] ?? 0) + n;
        if (report.done) break;
      }
      expect(removed).toEqual({ idem: 7, nonce: 7, rate: 1, writ: 7 });
      expect(sweeps).toBe(4);
      expect(await w.sweep()).toEqual({ examined: 0, removed: {}, done: true });
    },
  ),

  example(
    'sweep: one pass looks at each record once, however unequal the kinds',
    async ({ writ }) => {
      const w = writ(SWEPT);
      // 3 claims, nonces and writs, one rate bucket; nothing has run its course.
      for (let i = 0; i < 3; i++) allowed(await w.authorize(sweptPay(1, `K${i}`, T0)));
      const reports = [];
      for (let report = await w.sweep({ limit: 2 }); ; report = await w.sweep({ limit: 2 })) {
        reports.push(report);
        if (report.done) break;
      }
      // A kind that reached its end waits for the others instead of starting over.
      expect(reports.map((r) => r.examined)).toEqual([7, 3]);
      expect(reports.reduce((n, r) => n + r.examined, 0)).toBe(10);
    },
  ),
];

/** Every example-based case. */
export const CONFORMANCE_CASES: ConformanceCase[] = [
  ...budgets,
  ...atomicity,
  ...rateLimits,
  ...concurrency,
  ...idempotency,
  ...nonces,
  ...writs,
  ...sessions,
  ...approvals,
  ...shadow,
  ...failures,
  ...snapshots,
  ...decisionLog,
  ...sweeps,
];
