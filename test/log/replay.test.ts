import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import { createWrit } from '../../src/engine/writ.js';
import type { LogEntry } from '../../src/log/entry.js';
import { replayLog } from '../../src/log/replay.js';
import { loadPolicy } from '../../src/runtime/load-policy.js';
import { memoryStore } from '../../src/store/memory/index.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';

const POLICY = `
version: 1
name: replay-test
tools:
  send_money:
    - forbid: 'args.amount <= 0.0'
    - require_approval: 'args.amount > 400.0'
    - allow: 'args.recipient in session.attrs.payees'
  read_inbox:
    - allow: true
  deploy:
    - allow: true
  charge_card:
    - allow: 'args.card_number.startsWith("4")'
labels:
  untrusted: { when: 'tool == "read_inbox"' }
flow:
  - require_approval: '"untrusted" in session.labels && tool == "send_money" && args.amount > 200.0'
budgets:
  daily: { match: 'tool == "send_money"', per: 'principal.tenant', limit: 2000, window: 1d, cost: 'args.amount' }
rate_limits:
  inbox: { match: 'tool == "read_inbox"', per: 'principal.id', rate: 5/1m, burst: 2 }
concurrency:
  deploys: { match: 'tool == "deploy"', per: 'args.cluster', max: 1, lease: 2m }
idempotency:
  payments: { match: 'tool == "send_money"', key: 'request.idempotencyKey' }
redact: [args.card_number]
`;

/** A deterministic pseudo-random sequence, so the recorded run is the same every time. */
function prng(seed: number) {
  let s = seed;
  return (n: number) => {
    s = (s * 1_103_515_245 + 12_345) % 2_147_483_648;
    // The high bits: the low ones of this generator repeat with short periods, and `s % 10`
    // could go a whole run without one value.
    return Math.floor((s / 2_147_483_648) * n);
  };
}

/** Records a long, varied run on SQLite and returns its log. */
async function recordRun(store: Store, steps: number): Promise<LogEntry[]> {
  const clock = manualClock('2026-11-23T08:00:00Z');
  const writ = createWrit({ policy: loadPolicy(POLICY), store, clock, ids: sequentialIds() });
  const rand = prng(7);
  const open: string[] = [];
  let lastPayment: { tool: string; args: object; idempotencyKey?: string } | undefined;
  for (let s = 0; s < 5; s++) await writ.sessions.open(`s${s}`, { payees: ['alice', 'bob'] });
  for (let i = 0; i < steps; i++) {
    clock.advance(rand(20_000));
    const principal = { id: `agent-${rand(3)}`, tenant: `t${rand(2)}` };
    const session = { id: `s${rand(5)}` };
    const pick = rand(10);
    // Now and then an agent retries its last payment exactly: a replay once it succeeded.
    const action =
      lastPayment && rand(6) === 0
        ? lastPayment
        : pick < 5
          ? {
              tool: 'send_money',
              args: {
                recipient: ['alice', 'bob', 'mallory'][rand(3)]!,
                amount: [5, 50, 150, 300, 500, -1][rand(6)]!,
              },
              idempotencyKey: `k${rand(40)}`,
            }
          : pick < 7
            ? { tool: 'read_inbox', args: {} }
            : pick < 9
              ? { tool: 'deploy', args: { cluster: ['prod', 'dev'][rand(2)]! } }
              : { tool: 'charge_card', args: { card_number: `4${rand(1000)}` } };
    if (action.tool === 'send_money') lastPayment = action;
    const decision = await writ.authorize({ ...action, principal, session });
    if (decision.approval && rand(3) > 0) {
      await writ.approvals[rand(4) === 0 ? 'deny' : 'approve'](decision.approval.id, {
        approver: 'owner',
      });
    }
    if (decision.writ) open.push(decision.writ.id);
    if (open.length > 0 && rand(3) > 0) {
      const id = open.splice(rand(open.length), 1)[0]!;
      const status = (['succeeded', 'succeeded', 'failed', 'cancelled'] as const)[rand(4)]!;
      await writ.settle(id, {
        status,
        ...(rand(2) === 0 && { cost: rand(100) }),
        result: { ok: i },
      });
    }
  }
  const entries: LogEntry[] = [];
  for (let after = 0; ; ) {
    const page = await store.readLog(after, 500);
    if (page.length === 0) break;
    entries.push(...page);
    after = page.at(-1)!.seq;
  }
  expect(await store.verifyLog()).toMatchObject({ ok: true, entries: entries.length });
  await writ.close();
  return entries;
}

describe('writ replay', () => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-replay-'));
  let log: LogEntry[] = [];

  it('reproduces every recorded decision exactly with the same policy', async () => {
    log = await recordRun(sqliteStore({ path: join(dir, 'run.db') }), 1500);
    const decisions = log.filter((e) => e.decision);
    const outcomes = new Set(decisions.map((e) => e.decision!.outcome));
    expect(outcomes).toEqual(new Set(['allow', 'deny', 'approval_required', 'replay']));
    expect(log.some((e) => e.settlement) && log.some((e) => e.approval)).toBe(true);

    const policy = loadPolicy(POLICY);
    expect(new Set(decisions.map((e) => e.decision!.policyHash))).toEqual(new Set([policy.hash]));
    const report = await replayLog(log, policy);
    // The card rule reads the card number, which the log only has as a digest.
    expect(report.notReplayable.length).toBe(
      decisions.filter((e) => e.decision!.action.tool === 'charge_card').length,
    );
    expect(report.changed).toEqual([]);
    expect(report.unchanged + report.notReplayable.length).toBe(decisions.length);
    expect(report.unchanged).toBeGreaterThan(1000);
  });

  it('says when a log starts part way, as an export --since does', async () => {
    expect((await replayLog(log, loadPolicy(POLICY))).startsAt).toBeUndefined();
    // Without the entries before it, the state they built is missing: the same policy can
    // decide differently, and the report says where the log starts.
    const slice = log.slice(log.length / 2);
    expect((await replayLog(slice, loadPolicy(POLICY))).startsAt).toBe(slice[0]!.seq);
  });

  it('lists the decisions a changed policy would change, old and new', async () => {
    const stricter = loadPolicy(POLICY.replace('limit: 2000', 'limit: 300'));
    const report = await replayLog(log, stricter);
    expect(report.changed.length).toBeGreaterThan(0);
    const first = report.changed[0]!;
    expect(first.tool).toBe('send_money');
    expect(first.after.outcome).toBe('deny');
    expect(report.changed.some((c) => c.after.reasons[0]?.code === 'BUDGET_EXHAUSTED')).toBe(true);
  });

  it('never guesses about arguments it only has as digests', async () => {
    const charges = log.filter((e) => e.decision?.action.tool === 'charge_card');
    expect(charges.length).toBeGreaterThan(0);
    for (const e of charges)
      expect(String((e.decision!.action.args as { card_number: string }).card_number)).toMatch(
        /^sha256:/,
      );
    const report = await replayLog(log, loadPolicy(POLICY));
    expect(report.notReplayable.map((n) => n.paths)).toEqual(
      charges.map(() => ['args.card_number']),
    );
  });

  it('decides a decision with redacted arguments that no rule reads, as it was recorded', async () => {
    const policy = (rule: string) =>
      loadPolicy(
        [
          'version: 1',
          'tools:',
          '  save_note:',
          `    - ${rule}`,
          'rate_limits:',
          "  notes: { match: 'true', per: 'principal.id', rate: 2/1m, burst: 2 }",
          'redact: [args.secret]',
          '',
        ].join('\n'),
      );
    const store = memoryStore();
    const writ = createWrit({
      policy: policy('allow: \'args.title != ""\''),
      store,
      clock: manualClock('2026-11-23T08:00:00Z'),
      ids: sequentialIds(),
    });
    for (const title of ['a', '', 'b', 'c'])
      await writ.authorize({
        tool: 'save_note',
        args: { title, secret: `s3cret-${title}` },
        principal: { id: 'agent' },
        session: { id: 's' },
      });
    const recorded = await store.readLog(0, 100);
    await writ.close();
    expect(recorded.map((e) => e.decision!.outcome)).toEqual(['allow', 'deny', 'allow', 'deny']);
    expect(recorded.every((e) => e.decision!.redacted[0] === 'args.secret')).toBe(true);

    const same = await replayLog(recorded, policy('allow: \'args.title != ""\''));
    expect(same).toMatchObject({ decisions: 4, unchanged: 4, changed: [], notReplayable: [] });
    // What can be compared still is: a rule that decides otherwise changes the decisions.
    const stricter = await replayLog(recorded, policy('allow: \'args.title == "a"\''));
    // The third call is refused now; so the fourth, rate limited before, finds the bucket
    // with room and is refused by the rule instead: same outcome, other reasons.
    expect(stricter.changed.map((c) => [c.seq, c.before.outcome, c.after.outcome])).toEqual([
      [3, 'allow', 'deny'],
      [4, 'deny', 'deny'],
    ]);
    expect(stricter.changed[1]!.before.reasons[0]!.code).toBe('RATE_LIMITED');
  });

  it('does not decide on digests of session attributes: it lists those decisions', async () => {
    const policy = loadPolicy(
      [
        'version: 1',
        'tools:',
        `  login: [{ allow: 'session.attrs.token == "TOK"' }]`,
        '  ping: [{ allow: true }]',
        'redact: [session.attrs.token]',
        '',
      ].join('\n'),
    );
    const store = memoryStore();
    const writ = createWrit({
      policy,
      store,
      clock: manualClock('2026-11-23T08:00:00Z'),
      ids: sequentialIds(),
    });
    await writ.sessions.open('s1', { token: 'TOK' });
    for (const tool of ['login', 'ping'])
      await writ.authorize({ tool, args: {}, principal: { id: 'agent' }, session: { id: 's1' } });
    const recorded = await store.readLog(0, 100);
    await writ.close();
    expect(recorded[0]!.session).toMatchObject({ redacted: ['session.attrs.token'] });
    expect(recorded.slice(1).map((e) => e.decision!.outcome)).toEqual(['allow', 'allow']);
    const report = await replayLog(recorded, policy);
    // The policy reads the hidden token: decisions in that session are not replayable,
    // rather than falsely "changed" (as for arguments, what the policy reads anywhere counts).
    expect(report).toMatchObject({ decisions: 2, unchanged: 0, changed: [] });
    expect(report.notReplayable).toEqual(
      [1, 2].map((i) => ({
        seq: i + 1,
        decisionId: recorded[i]!.decision!.id,
        paths: ['session.attrs.token'],
      })),
    );
  });
});
