import type { Action } from '../core/action.js';
import { type Reason, reason } from '../core/decision.js';
import { messageOf } from '../core/errors.js';
import type { JsonObject } from '../core/json.js';
import {
  type CelContext,
  PrincipalContext,
  RequestContext,
  SessionContext,
  withoutStackTraces,
} from './cel.js';
import type { CompiledPolicy, CompiledRule, Expr, ToolScope } from './compile.js';

/** What evaluation reads of a session's state: trusted attributes and labels set by writ. */
export interface SessionView {
  attrs: JsonObject;
  labels: readonly string[];
}

/** The scope verdict for one action: pure, no state changed. */
export interface ScopeVerdict {
  outcome: 'allow' | 'deny' | 'approval_required';
  /** The decisive reasons first, then every other rule that matched. */
  reasons: Reason[];
  /** With `approval_required`: how long the approval request stays open (shortest rule wins). */
  approvalExpiresMs?: number;
}

/**
 * Builds the context expressions see. Session state from the store (`session`) takes
 * precedence over what the action carries; labels are the union of both.
 */
export function buildContext(action: Action, now: number, session?: SessionView): CelContext {
  const attrs = session?.attrs ?? action.session.attrs;
  const labels = session
    ? mergeLabels(session.labels, action.session.labels)
    : action.session.labels;
  return new EvaluationContext(action, new SessionContext(action.session.id, attrs, labels), now);
}

/** The variables expressions see; `now` is made only when an expression reads it. */
class EvaluationContext implements CelContext {
  readonly tool: string;
  readonly args: JsonObject;
  readonly principal: PrincipalContext;
  readonly request: RequestContext;
  readonly estimate: Record<string, number>;
  readonly #now: number;
  constructor(
    action: Action,
    readonly session: SessionContext,
    now: number,
  ) {
    this.tool = action.tool;
    this.args = action.args;
    this.principal = new PrincipalContext(action);
    this.request = new RequestContext(action);
    this.estimate = action.estimate;
    this.#now = now;
  }
  get now(): Date {
    return new Date(this.#now);
  }
}

function mergeLabels(a: readonly string[], b: readonly string[]): readonly string[] {
  if (b.length === 0) return a;
  return [...new Set([...a, ...b])].sort();
}

/** The outcome of one condition: true, false, or an error message. */
type Test = true | false | { error: string };

/** Evaluates a condition; anything but a boolean result counts as an error. */
export function test(expr: Expr, ctx: CelContext): Test {
  try {
    const value = expr(ctx);
    if (typeof value === 'boolean') return value;
    return { error: `condition returned ${typeof value}, not a bool` };
  } catch (error) {
    return { error: firstLine(error) };
  }
}

function failure(rule: CompiledRule, error: string): Reason {
  return reason('CONDITION_ERROR', {
    rule: rule.id,
    ...(rule.message !== undefined && { message: rule.message }),
    error,
  });
}

/** The first line of what a failed expression threw: cel-js adds the source, highlighted. */
export function firstLine(error: unknown): string {
  return messageOf(error).split('\n')[0]!;
}

/**
 * Decides the scope of an action, order-independently like Cedar: any matching `forbid`
 * denies; else any matching `require_approval` asks for approval unless `approved`; else any
 * matching `allow` allows; else the policy default for a tool it names, and deny for a tool
 * it does not. A condition error forbids in a `forbid`, asks in a `require_approval` and does
 * not allow in an `allow`. `approved` says a person approved this exact action under this
 * policy; an approval stands in for an allow rule but never overrides a `forbid`.
 */
export function evaluateScope(
  policy: CompiledPolicy,
  ctx: CelContext,
  approved = false,
): ScopeVerdict {
  const scope = policy.scopeFor(ctx.tool);
  const found = withoutStackTraces(matchRules, { scope, ctx });
  const verdict = choose(policy, scope.rules !== undefined, ctx.tool, found, approved);
  if (found.brokenAllows.length > 0) verdict.reasons = [...verdict.reasons, ...found.brokenAllows];
  return verdict;
}

/** The rules that matched one action, by effect. */
interface Matches {
  forbids: Reason[];
  approvals: Reason[];
  allows: Reason[];
  /** Allows whose condition failed: they do not allow, but are named, so a broken rule shows. */
  brokenAllows: Reason[];
  approvalExpiresMs: number;
}

/** Shared by every `Matches` until a rule of its kind matches: most decisions match one rule. */
const NONE: Reason[] = Object.freeze([]) as unknown as Reason[];

function matchRules({ scope, ctx }: { scope: ToolScope; ctx: CelContext }): Matches {
  const found: Matches = {
    forbids: NONE,
    approvals: NONE,
    allows: NONE,
    brokenAllows: NONE,
    approvalExpiresMs: Number.POSITIVE_INFINITY,
  };
  if (scope.rules) matchInto(found, scope.rules, ctx);
  matchInto(found, scope.flow, ctx);
  return found;
}

function matchInto(found: Matches, rules: readonly CompiledRule[], ctx: CelContext) {
  for (const rule of rules) {
    const result = test(rule.when, ctx);
    if (result === false) continue;
    const why = result === true ? rule.matched : failure(rule, result.error);
    if (rule.effect === 'forbid') found.forbids = add(found.forbids, why);
    else if (rule.effect === 'require_approval') {
      found.approvals = add(found.approvals, why);
      found.approvalExpiresMs = Math.min(found.approvalExpiresMs, rule.expiresMs!);
    } else if (result === true) found.allows = add(found.allows, why);
    else found.brokenAllows = add(found.brokenAllows, why);
  }
}

function add(reasons: Reason[], why: Reason): Reason[] {
  if (reasons === NONE) return [why];
  reasons.push(why);
  return reasons;
}

const DEFAULT_DENY = Object.freeze(reason('NO_MATCHING_RULE'));
const DEFAULT_APPROVAL = Object.freeze(reason('APPROVAL_REQUIRED', { rule: 'default' }));

function choose(
  policy: CompiledPolicy,
  named: boolean,
  tool: string,
  found: Matches,
  approved: boolean,
): ScopeVerdict {
  const { forbids, approvals, allows } = found;
  if (forbids.length > 0)
    return { outcome: 'deny', reasons: [...forbids, ...approvals, ...allows] };
  if (!named) {
    const unnamed = reason('NO_MATCHING_RULE', {
      message: `the policy does not name the tool ${tool}`,
    });
    return { outcome: 'deny', reasons: [unnamed, ...approvals, ...allows] };
  }
  const askedForApproval =
    approvals.length > 0 || (allows.length === 0 && policy.default === 'require_approval');
  if (approved && askedForApproval) {
    // The rules that asked stay named (every matching rule is): the allow says who approved
    // it, and which rules made it need a person.
    const asked = approvals.length > 0 ? approvals : [DEFAULT_APPROVAL];
    return { outcome: 'allow', reasons: [reason('APPROVAL_GRANTED'), ...asked, ...allows] };
  }
  if (approvals.length > 0) {
    return {
      outcome: 'approval_required',
      reasons: [...approvals, ...allows],
      approvalExpiresMs: found.approvalExpiresMs,
    };
  }
  if (allows.length > 0) return { outcome: 'allow', reasons: allows };
  if (policy.default === 'require_approval') {
    return {
      outcome: 'approval_required',
      reasons: [DEFAULT_APPROVAL],
      approvalExpiresMs: 15 * 60_000,
    };
  }
  return { outcome: 'deny', reasons: [DEFAULT_DENY] };
}

/**
 * The labels a successful call adds to its session: every label rule whose condition
 * holds. A rule whose condition errors sets its label too — labels mark taint, so
 * doubt marks.
 */
export function labelsAfter(policy: CompiledPolicy, ctx: CelContext): string[] {
  if (policy.labels.length === 0) return [];
  return withoutStackTraces(
    ({ labels, ctx }) =>
      labels.filter((label) => test(label.when, ctx) !== false).map((label) => label.name),
    { labels: policy.labels, ctx },
  );
}
