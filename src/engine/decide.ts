import { type Action, parseAction } from '../core/action.js';
import { type Decision, isoTime, reason, shadowed } from '../core/decision.js';
import { actionDigest } from '../core/digest.js';
import type { JsonLimits } from '../core/json.js';
import {
  buildContext,
  type CompiledPolicy,
  evaluateScope,
  type ScopeVerdict,
  type SessionView,
  verdictWithPlan,
} from '../policy/index.js';

/** Inputs of a pure scope decision besides the policy and the action. */
export interface ScopeInputs {
  /** Decision time, epoch ms, from the injected clock. */
  now: number;
  /** The decision id, from the injected id source. */
  id: string;
  session?: SessionView;
  /** A person approved this exact action under this policy. */
  approved?: boolean;
  limits?: JsonLimits;
}

/** An action that failed validation, as a denial naming every problem. */
export function invalidRequest(
  policy: CompiledPolicy,
  issues: { path: string; message: string }[],
  inputs: ScopeInputs,
): Decision {
  return {
    id: inputs.id,
    outcome: 'deny',
    reasons: issues.map((i) => reason('INVALID_REQUEST', { message: `${i.path}: ${i.message}` })),
    policyHash: policy.hash,
    at: isoTime(inputs.now),
    actionDigest: '',
  };
}

/**
 * Decides the scope of an untrusted request with no state: validation, then the policy.
 * Same inputs, same decision, byte for byte. This is what `writ check` prints; the engine
 * adds invariants, approvals and the store on top.
 */
export function decideScope(policy: CompiledPolicy, input: unknown, inputs: ScopeInputs): Decision {
  const parsed = parseAction(input, inputs.limits);
  return parsed.ok
    ? decideParsedScope(policy, parsed.action, inputs)
    : invalidRequest(policy, parsed.issues, inputs);
}

/** {@link decideScope} for an action already validated. */
export function decideParsedScope(
  policy: CompiledPolicy,
  action: Action,
  inputs: ScopeInputs,
): Decision {
  return scopeDecision(policy, action, evaluate(policy, action, inputs).verdict, inputs);
}

function evaluate(policy: CompiledPolicy, action: Action, inputs: ScopeInputs) {
  const ctx = buildContext(action, inputs.now, inputs.session);
  return { ctx, verdict: evaluateScope(policy, ctx, inputs.approved) };
}

/**
 * {@link decideParsedScope}, and a plan that cannot be worked out denied as the engine
 * denies it (`verdictWithPlan`): what `writ check` prints.
 */
export function decideParsedStateless(
  policy: CompiledPolicy,
  action: Action,
  inputs: ScopeInputs,
): Decision {
  const { ctx, verdict } = evaluate(policy, action, inputs);
  return scopeDecision(
    policy,
    action,
    verdictWithPlan(policy, action, ctx, inputs.now, verdict),
    inputs,
  );
}

/** Turns a scope verdict into a decision, applying shadow mode. */
export function scopeDecision(
  policy: CompiledPolicy,
  action: Action,
  verdict: ScopeVerdict,
  inputs: ScopeInputs,
): Decision {
  const decision: Decision = {
    id: inputs.id,
    outcome: verdict.outcome,
    reasons: verdict.reasons,
    policyHash: policy.hash,
    at: isoTime(inputs.now),
    actionDigest: actionDigest(action),
  };
  return policy.mode === 'shadow' ? shadowed(decision) : decision;
}
