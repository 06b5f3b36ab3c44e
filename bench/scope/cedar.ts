/**
 * The benchmark policy in Cedar, through `@cedar-policy/cedar-wasm` (its Node.js build).
 *
 * The request: principal `Agent::"<id>"`, action `Action::"call"`, resource
 * `Tool::"<tool>"`, no entities, and a context carrying what writ's expressions read
 * (`tool`, `args`, `session.attrs`, `session.labels`, `principal.roles`) plus `norm`, the
 * path arguments normalized by the host because Cedar cannot resolve `..` itself.
 *
 * Cedar answers permit or deny with the determining policies and the policies that failed.
 * writ's three outcomes and its fail-closed rule are read from those: a satisfied *or
 * failed* forbid denies (Cedar itself skips a failed policy), else a satisfied or failed
 * `@writ("require_approval")` permit asks for approval, else a satisfied allow permit
 * allows, else deny.
 */
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Action } from '../../src/core/action.js';
import type { JsonObject } from '../../src/core/json.js';
import type { Effect, Outcome, Scenario } from './generate.js';

type AuthorizationAnswer = ReturnType<typeof cedar.isAuthorized>;

/** A Cedar decision in writ's terms, with the rules that decided it. */
export interface CedarVerdict {
  outcome: Outcome;
  /** The rules behind the outcome: forbids for deny, approvals for approval, allows for allow. */
  decisive: string[];
}

/** The Cedar side of the benchmark. */
export interface CedarAuthorizer {
  /** The policies parsed once (`preparsePolicySet`), one `statefulIsAuthorized` per call. */
  decide(action: Action): Outcome;
  /** The policy set sent with every call (`isAuthorized`): parsed again each time. */
  decideUnparsed(action: Action): Outcome;
  /** As {@link decide}, with the deciding rules, for the differential check. */
  verdict(action: Action): CedarVerdict;
  version: string;
}

let sets = 0;

const ACTION = { type: 'Action', id: 'call' };

/** Builds the Cedar request for an action; see the file comment for its shape. */
function requestBuilder(pathArgs: readonly string[], normalizePath: (p: string) => string) {
  const context = (a: Action) => {
    const norm: Record<string, string> = {};
    for (const name of pathArgs) {
      const value = a.args[name];
      if (typeof value !== 'string') continue;
      try {
        norm[name] = normalizePath(value);
      } catch {
        // Left out: the policy then fails on it, as writ's path.within fails.
      }
    }
    return {
      tool: a.tool,
      args: a.args as JsonObject,
      session: { attrs: a.session.attrs, labels: a.session.labels },
      principal: { roles: a.principal.roles },
      norm,
    };
  };
  return (a: Action) => ({
    principal: { type: 'Agent', id: a.principal.id },
    action: ACTION,
    resource: { type: 'Tool', id: a.tool },
    context: context(a) as cedar.Context,
    entities: [],
  });
}

/**
 * Where a Cedar call's time goes: the same call with one trivial policy and a one-field
 * context, with one policy and this benchmark's context, and with 200 policies that only
 * compare the resource. Each returns Cedar's answer type.
 */
export function cedarProbes(
  scenario: Scenario,
  normalizePath: (p: string) => string,
): { name: string; run: (a: Action) => string }[] {
  const request = requestBuilder(scenario.pathArgs, normalizePath);
  const load = (policies: Record<string, string>) => {
    const id = `writ-bench-probe-${sets++}`;
    const loaded = cedar.preparsePolicySet(id, { staticPolicies: policies });
    if (loaded.type !== 'success') throw new Error('Cedar rejects a probe policy');
    return id;
  };
  const one = load({ p0: 'permit (principal, action, resource) when { context.tool == "x" };' });
  const scopes = load(
    Object.fromEntries(
      scenario.rules.map((r, i) => [
        r.id,
        `permit (principal, action, resource == Tool::"t${i}");`,
      ]),
    ),
  );
  const call = (id: string, full: boolean) => (a: Action) => {
    const r = request(a);
    return cedar.statefulIsAuthorized({
      ...r,
      context: full ? r.context : { tool: a.tool },
      preparsedPolicySetId: id,
    }).type;
  };
  return [
    { name: 'one policy, a one-field context', run: call(one, false) },
    { name: "one policy, this benchmark's context", run: call(one, true) },
    {
      name: `${scenario.rules.length} policies comparing only the resource, this benchmark's context`,
      run: call(scopes, true),
    },
  ];
}

/**
 * Loads the scenario's policies into Cedar. Throws if Cedar rejects any of them.
 * `normalizePath` is writ's helper, which the host applies to path arguments.
 */
export function createCedar(
  scenario: Scenario,
  normalizePath: (p: string) => string,
): CedarAuthorizer {
  const policies = { staticPolicies: scenario.cedarPolicies };
  const setId = `writ-bench-${scenario.seed}-${sets++}`;
  const loaded = cedar.preparsePolicySet(setId, policies);
  if (loaded.type !== 'success')
    throw new Error(
      `Cedar rejects the policies: ${loaded.errors.map((e) => e.message).join('; ')}`,
    );

  const effects = scenario.effects;
  const request = requestBuilder(scenario.pathArgs, normalizePath);

  const outcomeOf = (answer: AuthorizationAnswer): Outcome => {
    if (answer.type !== 'success')
      throw new Error(`Cedar failed: ${answer.errors.map((e) => e.message).join('; ')}`);
    const { reason, errors } = answer.response.diagnostics;
    let approve = false;
    let allow = false;
    for (const id of reason) {
      const effect = effects.get(id);
      if (effect === 'forbid') return 'deny';
      if (effect === 'require_approval') approve = true;
      else allow = true;
    }
    for (const { policyId } of errors) {
      const effect = effects.get(policyId);
      if (effect === 'forbid') return 'deny';
      if (effect === 'require_approval') approve = true;
    }
    return approve ? 'approval_required' : allow ? 'allow' : 'deny';
  };

  const stateful = (a: Action) =>
    cedar.statefulIsAuthorized({ ...request(a), preparsedPolicySetId: setId });

  return {
    version: cedar.getCedarVersion(),
    decide: (a) => outcomeOf(stateful(a)),
    decideUnparsed: (a) => outcomeOf(cedar.isAuthorized({ ...request(a), policies })),
    verdict(a) {
      const answer = stateful(a);
      const outcome = outcomeOf(answer);
      if (answer.type !== 'success') throw new Error('unreachable');
      const { reason, errors } = answer.response.diagnostics;
      const wanted: Effect =
        outcome === 'deny'
          ? 'forbid'
          : outcome === 'approval_required'
            ? 'require_approval'
            : 'allow';
      const ids = new Set(reason.filter((id) => effects.get(id) === wanted));
      // A failed forbid or approval decides too; a failed allow does not allow.
      if (wanted !== 'allow')
        for (const e of errors) if (effects.get(e.policyId) === wanted) ids.add(e.policyId);
      return { outcome, decisive: [...ids].sort() };
    },
  };
}
