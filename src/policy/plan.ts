import type { Action } from '../core/action.js';
import { type Reason, reason } from '../core/decision.js';
import { actionDigest, digestJson } from '../core/digest.js';
import { isAmount, MAX_AMOUNT, type PlanOp } from '../core/plan.js';
import { type CelContext, withoutStackTraces } from './cel.js';
import type { CompiledPolicy, Expr } from './compile.js';
import { firstLine, type ScopeVerdict, test } from './evaluate.js';

/** The reservations an allowed action needs, or why they could not be worked out. */
export type InvariantPlan = { ok: true; ops: PlanOp[] } | { ok: false; reasons: Reason[] };

const DAY_MS = 86_400_000;

/**
 * Works out, purely, which invariants apply to an action and what each reserves; `digest`
 * is the action digest an idempotency claim is bound to. An error in any `match`, key or
 * cost denies with `CONDITION_ERROR`: an invariant that might apply is never skipped. Ops
 * come in a fixed order (nonce, idempotency, budgets, rate limits, concurrency) so every
 * store checks them the same way.
 */
export const planInvariants = (...args: Parameters<typeof plan>): InvariantPlan =>
  withoutStackTraces((a) => plan(...a), args);

/**
 * A scope verdict as the engine gives it before any state is read: a call it would let
 * through, or ask a person about, whose plan cannot be worked out (a condition error in a
 * budget's `per:` or cost) is denied, with the plan's reasons first. What `writ test` and
 * `writ check` answer, so that they pass nothing the engine refuses for the policy's sake.
 */
export function verdictWithPlan(
  policy: CompiledPolicy,
  action: Action,
  ctx: CelContext,
  now: number,
  verdict: ScopeVerdict,
): ScopeVerdict {
  if (verdict.outcome === 'deny') return verdict;
  const planned = planInvariants(policy, action, ctx, now, actionDigest(action));
  return planned.ok
    ? verdict
    : { outcome: 'deny', reasons: [...planned.reasons, ...verdict.reasons] };
}

function plan(
  policy: CompiledPolicy,
  action: Action,
  ctx: CelContext,
  now: number,
  digest: string,
): InvariantPlan {
  const ops: PlanOp[] = [];
  const errors: Reason[] = [];
  const fail = (rule: string, error: string) =>
    errors.push(reason('CONDITION_ERROR', { rule, error }));

  const applies = (id: string, match: Expr): boolean => {
    const result = test(match, ctx);
    if (typeof result === 'object') fail(`${id}.match`, result.error);
    return result === true;
  };
  const keyOf = (id: string, name: string, per: Expr | undefined): string | undefined => {
    if (!per) return name;
    const value = evaluateKey(per, ctx);
    if (typeof value === 'object') {
      fail(`${id}.per`, value.error);
      return undefined;
    }
    return `${name}:${value}`;
  };

  if (action.nonce !== undefined) {
    const retainMs = policy.replay.maxAgeMs ?? DAY_MS;
    ops.push({
      kind: 'nonce',
      invariant: 'replay',
      // The principal's colons escaped, so that principal `a` with nonce `b:c` and
      // principal `a:b` with nonce `c` are two keys, not one.
      key: `${action.principal.id.replace(/[\\:]/g, '\\$&')}:${action.nonce}`,
      // A request is accepted up to max_age either side of its issuedAt, so the same request
      // can come back until 2 × max_age after the first was seen, that moment included.
      expiresAt: now + 2 * retainMs + 1,
    });
  }
  for (const rule of policy.idempotency) {
    if (!applies(rule.id, rule.match)) continue;
    let key: string | undefined;
    if (rule.key) {
      const value = evaluateKey(rule.key, ctx);
      if (typeof value === 'object') fail(`${rule.id}.key`, value.error);
      else key = `${rule.name}:${value}`;
    } else {
      key = `${rule.name}:${derivedKeyDigest(action)}`;
    }
    if (key !== undefined) {
      ops.push({
        kind: 'idempotency',
        invariant: rule.id,
        key,
        digest,
        ttlMs: rule.ttlMs,
        onExpiry: rule.onExpiry,
      });
    }
  }
  for (const budget of policy.budgets) {
    if (!applies(budget.id, budget.match)) continue;
    const base = keyOf(budget.id, budget.name, budget.per);
    const amount = typeof budget.cost === 'number' ? budget.cost : evaluateAmount(budget.cost, ctx);
    if (typeof amount === 'object') fail(`${budget.id}.cost`, amount.error);
    if (base === undefined || typeof amount === 'object') continue;
    const windowStart =
      budget.windowMs === null ? null : Math.floor(now / budget.windowMs) * budget.windowMs;
    ops.push({
      kind: 'budget',
      invariant: budget.id,
      key: windowStart === null ? base : `${base}:${windowLabel(windowStart, budget.windowMs!)}`,
      amount,
      limit: budget.limit,
      windowEnd: windowStart === null ? null : windowStart + budget.windowMs!,
      holdTtlMs: budget.holdTtlMs,
      onExpiry: budget.onExpiry,
    });
  }
  for (const rate of policy.rateLimits) {
    if (!applies(rate.id, rate.match)) continue;
    const key = keyOf(rate.id, rate.name, rate.per);
    if (key !== undefined) {
      ops.push({
        kind: 'rate',
        invariant: rate.id,
        key,
        count: rate.count,
        periodMs: rate.periodMs,
        burst: rate.burst,
      });
    }
  }
  for (const slot of policy.concurrency) {
    if (!applies(slot.id, slot.match)) continue;
    const key = keyOf(slot.id, slot.name, slot.per);
    if (key !== undefined)
      ops.push({
        kind: 'concurrency',
        invariant: slot.id,
        key,
        max: slot.max,
        leaseMs: slot.leaseMs,
      });
  }
  return errors.length > 0 ? { ok: false, reasons: errors } : { ok: true, ops };
}

/** Whole UTC days read as dates; other windows as the RFC 3339 time they start. */
function windowLabel(start: number, windowMs: number): string {
  const iso = new Date(start).toISOString();
  return windowMs % DAY_MS === 0 ? iso.slice(0, 10) : iso.replace('.000Z', 'Z');
}

function evaluateKey(expr: Expr, ctx: CelContext): string | { error: string } {
  try {
    const value = expr(ctx);
    if (typeof value === 'string' && value.length > 0 && value.length <= 512) return value;
    if (typeof value === 'bigint' || (typeof value === 'number' && Number.isFinite(value)))
      return String(value);
    return { error: 'a key must be a non-empty string of at most 512 characters, or a number' };
  } catch (error) {
    return { error: firstLine(error) };
  }
}

function evaluateAmount(expr: Expr, ctx: CelContext): number | { error: string } {
  try {
    const value = expr(ctx);
    const amount = typeof value === 'bigint' ? Number(value) : value;
    if (isAmount(amount)) return amount;
    return { error: `a cost must be a number from 0 to ${MAX_AMOUNT}` };
  } catch (error) {
    return { error: firstLine(error) };
  }
}

/**
 * The digest an idempotency rule without `key:` claims: the same call (session, tool and
 * arguments) is the same effect. Hex, without its `sha256:` prefix.
 */
export function derivedKeyDigest(action: Action): string {
  return digestJson({ session: action.session.id, tool: action.tool, args: action.args }).slice(7);
}
