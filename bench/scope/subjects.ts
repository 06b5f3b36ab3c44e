/**
 * The implementations the scope benchmark compares, built from one generated scenario,
 * and the differential check that they all decide alike.
 */
import type { Action } from '../../src/core/action.js';
import type { CompiledPolicy, ScopeVerdict } from '../../src/policy/index.js';
import type { Engine } from '../engine.js';
import { type CedarAuthorizer, createCedar } from './cedar.js';
import {
  compileFloor,
  type Effect,
  generateScenario,
  type Outcome,
  type RequestJson,
  type Scenario,
} from './generate.js';

/** The decision time every implementation is given (writ reads it as `now`). */
export const NOW = Date.parse('2026-11-23T12:00:00Z');

/** Roughly how long a call takes, which sets how it is timed. */
export type Pace = 'fast' | 'slow' | 'very slow';

/** One implementation under test: a function from one item of its input to an outcome. */
export interface Subject<T = unknown> {
  name: string;
  /** What one call does, for the results table. */
  note: string;
  pace: Pace;
  items: readonly T[];
  run: (item: T) => Outcome;
}

/** A scenario with every implementation ready to call. */
export interface Prepared {
  engine: Engine;
  scenario: Scenario;
  policy: CompiledPolicy;
  /** The requests validated once, for the implementations that start from a valid action. */
  actions: Action[];
  floor: (action: Action) => Outcome;
  cedar: CedarAuthorizer;
  /** Milliseconds spent loading: writ compiling the policy, Cedar parsing it. */
  loadMs: { writ: number; cedar: number };
}

/** Generates the scenario and loads it into writ (from `engine`), the floor and Cedar. */
export function prepare(
  engine: Engine,
  options: { seed?: number; requests?: number } = {},
): Prepared {
  const scenario = generateScenario(options);
  let t = performance.now();
  const policy = engine.compilePolicy({ path: 'bench-50-tools.yaml', text: scenario.policyYaml });
  const writMs = performance.now() - t;
  t = performance.now();
  const cedar = createCedar(scenario, engine.normalizePath);
  const cedarMs = performance.now() - t;
  const actions = scenario.requests.map((request, i) => {
    const parsed = engine.parseAction(request);
    if (!parsed.ok)
      throw new Error(`request ${i} is invalid: ${JSON.stringify(parsed.issues.slice(0, 3))}`);
    return parsed.action;
  });
  return {
    engine,
    scenario,
    policy,
    actions,
    floor: compileFloor(scenario.floorSource, engine.pathWithin),
    cedar,
    loadMs: { writ: writMs, cedar: cedarMs },
  };
}

/** writ's pure scope evaluation: context from a validated action, then the rules. */
export function writPure(p: Prepared): (action: Action) => Outcome {
  const { buildContext, evaluateScope } = p.engine;
  const policy = p.policy;
  return (action) => evaluateScope(policy, buildContext(action, NOW)).outcome as Outcome;
}

/** writ's whole scope decision from an untrusted JSON object: validation, rules, digest. */
export function writFull(p: Prepared): (input: RequestJson) => Outcome {
  const { decideScope } = p.engine;
  const policy = p.policy;
  return (input) => decideScope(policy, input, { now: NOW, id: 'bench' }).outcome as Outcome;
}

/** Every implementation, fastest expected first. */
export function subjects(p: Prepared): Subject<never>[] {
  const list: Subject<never>[] = [];
  const add = <T>(s: Subject<T>) => list.push(s as unknown as Subject<never>);
  add({
    name: 'hand-written JS (floor)',
    note: 'generated switch on the tool, first match returns',
    pace: 'fast',
    items: p.actions,
    run: p.floor,
  });
  add({
    name: 'writ evaluateScope',
    note: 'buildContext + evaluateScope on a validated action',
    pace: 'fast',
    items: p.actions,
    run: writPure(p),
  });
  add({
    name: 'writ decideScope',
    note: 'parseAction + evaluateScope + action digest, from a JSON object',
    pace: 'fast',
    items: p.scenario.requests,
    run: writFull(p),
  });
  add({
    name: 'Cedar statefulIsAuthorized',
    note: 'policies preparsed once; request and context built per call',
    pace: 'slow',
    items: p.actions,
    run: p.cedar.decide,
  });
  add({
    name: 'Cedar isAuthorized',
    note: 'policy set passed (and parsed) on every call',
    pace: 'very slow',
    items: p.actions,
    run: p.cedar.decideUnparsed,
  });
  return list;
}

/**
 * The rules in a writ verdict that decided its outcome, in the terms of `CedarVerdict`:
 * the forbids (matched or failed) of a deny, the approvals (matched or failed) of an
 * approval, the allows that matched of an allow. An allow whose condition failed is named
 * in writ's reasons (`CONDITION_ERROR`) but did not allow.
 */
export function writDecisive(verdict: ScopeVerdict, effects: Map<string, Effect>): string[] {
  const wanted: Effect =
    verdict.outcome === 'deny'
      ? 'forbid'
      : verdict.outcome === 'approval_required'
        ? 'require_approval'
        : 'allow';
  const ids = verdict.reasons
    .filter((r) => !(wanted === 'allow' && r.code === 'CONDITION_ERROR'))
    .map((r) => r.rule)
    .filter((id): id is string => id !== undefined && effects.get(id) === wanted);
  return [...new Set(ids)].sort();
}

/** One request on which the implementations disagree. */
export interface Disagreement {
  index: number;
  request: RequestJson;
  writ: { outcome: string; decisive: string[] };
  writFull: string;
  floor: string;
  cedar: { outcome: string; decisive: string[] };
}

/** What the differential check saw. */
export interface DifferentialReport {
  requests: number;
  outcomes: Record<Outcome, number>;
  /** Requests where at least one condition failed (writ reports `CONDITION_ERROR`). */
  conditionErrors: number;
  /** Indices of requests where any condition evaluated for them fails, reported or not. */
  failing: number[];
  /** Requests for tools the policy does not name. */
  unnamed: number;
  disagreements: Disagreement[];
}

/**
 * Runs every request through writ (pure and full), the floor and Cedar and compares the
 * outcomes; between writ and Cedar it also compares the rules that decided.
 */
export function differential(p: Prepared, limit = p.actions.length): DifferentialReport {
  const { buildContext, evaluateScope } = p.engine;
  const pure = (a: Action) => evaluateScope(p.policy, buildContext(a, NOW));
  const full = writFull(p);
  const report: DifferentialReport = {
    requests: 0,
    outcomes: { allow: 0, deny: 0, approval_required: 0 },
    conditionErrors: 0,
    failing: [],
    unnamed: 0,
    disagreements: [],
  };
  for (let i = 0; i < Math.min(limit, p.actions.length); i++) {
    const action = p.actions[i]!;
    const request = p.scenario.requests[i]!;
    const verdict = pure(action);
    const writ = {
      outcome: verdict.outcome,
      decisive: writDecisive(verdict, p.scenario.effects),
    };
    const cedar = p.cedar.verdict(action);
    const floor = p.floor(action);
    const writFullOutcome = full(request);
    report.requests++;
    report.outcomes[verdict.outcome]++;
    if (verdict.reasons.some((r) => r.code === 'CONDITION_ERROR')) report.conditionErrors++;
    const ctx = buildContext(action, NOW);
    const rules = [...(p.policy.rulesFor(action.tool) ?? []), ...p.policy.flowFor(action.tool)];
    if (rules.some((rule) => fails(() => rule.when(ctx)))) report.failing.push(i);
    if (p.policy.rulesFor(action.tool) === undefined) report.unnamed++;
    const agree =
      floor === writ.outcome &&
      writFullOutcome === writ.outcome &&
      cedar.outcome === writ.outcome &&
      cedar.decisive.join('\n') === writ.decisive.join('\n');
    if (!agree) {
      report.disagreements.push({
        index: i,
        request,
        writ,
        writFull: writFullOutcome,
        floor,
        cedar,
      });
    }
  }
  return report;
}

function fails(f: () => unknown): boolean {
  try {
    f();
    return false;
  } catch {
    return true;
  }
}
