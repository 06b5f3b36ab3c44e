import fc from 'fast-check';
import { manualClock, sequentialIds } from '../core/clock.js';
import type { Decision } from '../core/decision.js';
import { WritError } from '../core/errors.js';
import type { Json } from '../core/json.js';
import { createWrit, type WritEngine } from '../engine/writ.js';
import { type CompiledPolicy, compilePolicy } from '../policy/index.js';
import type { BudgetState, SessionRecord, Store } from '../store/types.js';
import { type ConformanceCase, T0 } from './harness.js';
import {
  type ClaimExpiry,
  callLabels,
  type ExpectedReason,
  engineRequest,
  flowRule,
  MODEL_LIMITS,
  type ModelAction,
  modelPolicy,
  type Prediction,
  ReferenceModel,
  type SettleStatus,
} from './reference-model.js';

/** One step of a random interleaving. */
export type ModelStep =
  | { kind: 'authorize'; action: ModelAction }
  /** The same request again, as agents retry: one of the last three sent, by index. */
  | { kind: 'retry'; pick: number }
  /** Authorizations issued together (`Promise.all`): they must agree with some order. */
  | { kind: 'batch'; actions: ModelAction[] }
  /** Settles a writ not yet settled, or with `again`, any writ ever issued or an unknown one. */
  | {
      kind: 'settle';
      pick: number;
      again: boolean;
      status: SettleStatus;
      cost: number | undefined;
      /** Then send the same call again, as an agent that lost the response would. */
      thenRetry: boolean;
    }
  | { kind: 'advance'; ms: number }
  /** The host opens (or reopens) a session: its labels stay. */
  | { kind: 'open'; session: ModelAction['session'] }
  /** Removes expired records: it must change no answer, so the model ignores it. */
  | { kind: 'sweep'; limit: number };

/** `undefined` `none` times out of `none + some`, else one of `values`. */
function sometimes<T>(values: T[], none: number, some: number): fc.Arbitrary<T | undefined> {
  return fc.oneof(
    { weight: none, arbitrary: fc.constant(undefined) },
    { weight: some, arbitrary: fc.constantFrom(...values) },
  );
}

// Few distinct values, so that keys, nonces, budgets and slots collide often.
const actionArb: fc.Arbitrary<ModelAction> = fc.record({
  tool: fc.constantFrom('pay', 'pay', 'deploy', 'deploy', 'note'),
  principal: fc.constantFrom('p1', 'p1', 'p2'),
  session: fc.constantFrom('s1', 's1', 's2'),
  to: fc.constantFrom('alice', 'bob', 'bob', 'mallory'),
  amount: fc.constantFrom(0, 1, 3, 3, 5),
  env: fc.constantFrom('a', 'b'),
  key: sometimes(['k1', 'k2', 'k3'], 3, 2),
  nonce: sometimes(['n1', 'n2', 'n3'], 3, 1),
  skew: fc.constantFrom(0, 0, 0, 0, 0, 0, 0, -300_000, 300_000, -600_000, 600_001, -700_000),
}) as fc.Arbitrary<ModelAction>;

/** Steps over a small policy where every invariant is contended. */
export const stepArb: fc.Arbitrary<ModelStep> = fc.oneof(
  { weight: 6, arbitrary: actionArb.map((action) => ({ kind: 'authorize' as const, action })) },
  { weight: 3, arbitrary: fc.nat().map((pick) => ({ kind: 'retry' as const, pick })) },
  {
    weight: 1,
    arbitrary: fc
      .array(actionArb, { minLength: 2, maxLength: 3 })
      .map((actions) => ({ kind: 'batch' as const, actions })),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      pick: fc.nat(),
      again: fc.constantFrom(false, false, false, true),
      status: fc.constantFrom<SettleStatus>('succeeded', 'succeeded', 'failed', 'cancelled'),
      cost: fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined }),
      thenRetry: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc
      .constantFrom(
        1_000,
        5_000,
        10_000,
        29_999,
        30_000,
        60_000,
        120_000,
        600_000,
        1_200_000,
        3_600_000,
      )
      .map((ms) => ({ kind: 'advance' as const, ms })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(1, 2, 1_000).map((limit) => ({ kind: 'sweep' as const, limit })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('s1', 's2').map((session) => ({ kind: 'open' as const, session })),
  },
);

const policies = new Map<ClaimExpiry, CompiledPolicy>();
function policyFor(onExpiry: ClaimExpiry): CompiledPolicy {
  let policy = policies.get(onExpiry);
  if (!policy) {
    policy = compilePolicy({ path: `<model-${onExpiry}>.yaml`, text: modelPolicy(onExpiry) });
    policies.set(onExpiry, policy);
  }
  return policy;
}

/** JSON with sorted keys, to compare values whatever their key order or prototype. */
function canon(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** Why `decision` is not what the model predicted, or `undefined` when it is. */
function mismatch(p: Prediction, d: Decision): string | undefined {
  const got = () => `engine said ${canon(d)}; model said ${canon(p)}`;
  if (d.outcome !== p.outcome) return got();
  if (p.outcome === 'allow') {
    const writ = d.writ;
    if (!writ) return got();
    if (writ.expiresAt !== new Date(p.expiresAt).toISOString()) return got();
    if (canon(writ.reservations) !== canon(p.reservations)) return got();
    if (canon(writ.fencing) !== canon(p.fencing)) return got();
    return undefined;
  }
  if (p.outcome === 'replay') {
    if (d.reasons[0]?.code !== 'IDEMPOTENT_REPLAY' || d.writ) return got();
    return canon(d.result) === canon(p.result) ? undefined : got();
  }
  const first = d.reasons[0];
  if (!first || d.writ) return got();
  const picked: ExpectedReason = { code: first.code };
  for (const field of ['rule', 'key', 'remaining', 'resetAt'] as const) {
    if (field === 'rule' ? p.reason.rule !== undefined : first[field] !== undefined)
      (picked as unknown as Record<string, unknown>)[field] = first[field];
  }
  return canon(picked) === canon(p.reason) ? undefined : got();
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/**
 * The safety properties, checked on what the engine answered — not on the model — so they
 * hold even where the model and the store might share a mistake.
 */
class Invariants {
  /** Lease expiry of each allowed deploy not yet settled. */
  readonly #deploys = new Map<string, number>();
  #lastFence = 0;
  /** The latest execution of each idempotency key. */
  readonly #executions = new Map<
    string,
    { writId: string; at: number; writExpiresAt: number; settled?: SettleStatus }
  >();
  readonly #keyOf = new Map<string, string>();
  /** When each nonce was last accepted. */
  readonly #nonces = new Map<string, number>();
  /** Each allowed call the policy labels, by writ, and how it was settled. */
  readonly #labelled = new Map<
    string,
    {
      session: string;
      labels: string[];
      expiresAt: number;
      settled?: { status: SettleStatus; at: number };
    }
  >();
  /** Where the run is, for the message of a broken invariant. */
  where = '';
  constructor(readonly onExpiry: ClaimExpiry) {}

  #fail(message: string): never {
    fail(this.where ? `${message}, ${this.where}` : message);
  }

  /**
   * The labels session `id` has at `now`: those of every labelled call that ran — settled
   * succeeded or failed — or may have run: not settled by its writ's expiry. Exactly these,
   * no fewer (a flow rule must see them) and no more (nor block on what never ran).
   */
  labelsAt(id: string, now: number): string[] {
    const labels = new Set<string>();
    for (const call of this.#labelled.values()) {
      if (call.session !== id) continue;
      const ran = call.settled
        ? call.settled.status !== 'cancelled' || call.settled.at >= call.expiresAt
        : now >= call.expiresAt;
      if (ran) for (const label of call.labels) labels.add(label);
    }
    return [...labels].sort();
  }

  /** Every decision: a flow rule denies exactly the calls it forbids in the labelled session. */
  decided(a: ModelAction, d: Decision, now: number) {
    const labels = this.labelsAt(a.session, now);
    const rule = flowRule(a, labels);
    const call = `${canon(a)} in session ${a.session} labelled ${canon(labels)}`;
    if (rule !== undefined && d.outcome !== 'deny')
      this.#fail(`${d.outcome} for ${call}, which ${rule} forbids`);
    const flowReasons = d.reasons.filter((r) => r.rule?.startsWith('flow['));
    if (rule === undefined && flowReasons.length > 0)
      this.#fail(`${flowReasons[0]!.rule} denied ${call}, which no flow rule forbids`);
  }

  allowed(a: ModelAction, d: Decision, now: number) {
    const writ = d.writ!;
    const expiresAt = Date.parse(writ.expiresAt);
    if (Math.abs(a.skew) > MODEL_LIMITS.maxAge) this.#fail('allowed a request outside max_age');
    if (a.tool === 'pay' && a.to === 'mallory') this.#fail('allowed a call a forbid rule matches');
    if (a.nonce !== undefined) {
      const key = `${a.principal}:${a.nonce}`;
      const last = this.#nonces.get(key);
      if (last !== undefined && now < last + MODEL_LIMITS.nonceMemory)
        this.#fail(`accepted nonce ${key} twice`);
      this.#nonces.set(key, now);
    }
    if (a.key !== undefined) {
      const last = this.#executions.get(a.key);
      if (last) {
        const freed =
          last.settled === 'failed' ||
          last.settled === 'cancelled' ||
          now >= last.at + MODEL_LIMITS.claimTtl ||
          (this.onExpiry === 'retry' && last.settled === undefined && now >= last.writExpiresAt);
        if (!freed) this.#fail(`executed idempotency key ${a.key} twice`);
      }
      this.#executions.set(a.key, { writId: writ.id, at: now, writExpiresAt: expiresAt });
      this.#keyOf.set(writ.id, a.key);
    }
    if (a.tool === 'deploy') {
      const token = writ.fencing?.slots ?? 0;
      if (!(token > this.#lastFence)) this.#fail(`fencing token ${token} after ${this.#lastFence}`);
      this.#lastFence = token;
      this.#deploys.set(writ.id, expiresAt);
      const holders = [...this.#deploys.values()].filter((at) => at > now).length;
      if (holders > MODEL_LIMITS.slots) this.#fail(`${holders} concurrent holders of slots`);
    }
    const labels = callLabels(a);
    if (labels.length > 0) this.#labelled.set(writ.id, { session: a.session, labels, expiresAt });
  }

  settled(writId: string, status: SettleStatus, now: number) {
    this.#deploys.delete(writId);
    const call = this.#labelled.get(writId);
    if (call) call.settled = { status, at: now };
    const key = this.#keyOf.get(writId);
    const last = key === undefined ? undefined : this.#executions.get(key);
    if (last?.writId === writId) last.settled = status;
  }

  /** Each session has exactly the labels of the calls that ran or may have run in it. */
  sessions(listed: SessionRecord[], now: number) {
    for (const id of ['s1', 's2']) {
      const has = listed.find((s) => s.id === id)?.labels ?? [];
      const labels = this.labelsAt(id, now);
      if (canon(has) !== canon(labels))
        this.#fail(`session ${id} has labels ${canon(has)}, not ${canon(labels)}`);
    }
  }

  budgets(states: BudgetState[], model: ReferenceModel) {
    for (const b of states) {
      if (b.spent + b.held > b.limit + model.allowance(b.key))
        this.#fail(`budget ${b.key} holds and spends ${b.spent + b.held} of ${b.limit}`);
    }
  }
}

function fail(message: string): never {
  throw new Error(`invariant broken: ${message}`);
}

/**
 * Runs `steps` on a store through the engine and on the model; throws at the first
 * difference or broken invariant, naming the step.
 */
export async function runAgainstModel(
  store: Store,
  onExpiry: ClaimExpiry,
  steps: ModelStep[],
  log = true,
): Promise<void> {
  const clock = manualClock(T0);
  const w: WritEngine = createWrit({
    policy: policyFor(onExpiry),
    store,
    clock,
    ids: sequentialIds(),
    log,
  });
  let model = new ReferenceModel(onExpiry);
  const invariants = new Invariants(onExpiry);
  const writs: string[] = [];
  const settled = new Set<string>();

  const actionOf = new Map<string, ModelAction>();
  const accept = (a: ModelAction, d: Decision, now: number) => {
    if (d.outcome !== 'allow') return;
    model.commit(a, now, d.writ!.id);
    invariants.allowed(a, d, now);
    writs.push(d.writ!.id);
    actionOf.set(d.writ!.id, a);
  };

  const sent: ModelAction[] = [];

  for (const [i, step] of steps.entries()) {
    const now = clock.now();
    const what = `step ${i} (${canon(step)})`;
    const at = `${what} at ${new Date(now).toISOString()}`;
    invariants.where = `at ${at}`;
    const authorize = async (a: ModelAction) => {
      sent.push(a);
      const d = await w.authorize(engineRequest(a, now));
      // The flow rules' safety first, checked on the engine's answer alone.
      invariants.decided(a, d, now);
      const problem = mismatch(model.predict(a, now), d);
      if (problem) throw new Error(`${at}: ${canon(a)}: ${problem}`);
      accept(a, d, now);
    };
    if (step.kind === 'authorize' || step.kind === 'retry') {
      const recent = sent.slice(-3);
      const a = step.kind === 'authorize' ? step.action : recent[step.pick % (recent.length || 1)];
      if (a !== undefined) await authorize(a);
    } else if (step.kind === 'batch') {
      sent.push(...step.actions);
      const ds = await Promise.all(step.actions.map((a) => w.authorize(engineRequest(a, now))));
      // No call of a batch changes a session's labels: each answer is checked on its own.
      for (const [j, d] of ds.entries()) invariants.decided(step.actions[j]!, d, now);
      const indices = step.actions.map((_, j) => j);
      let linearized: number[] | undefined;
      const problems: string[] = [];
      for (const order of permutations(indices)) {
        const trial = model.clone();
        const problem = order
          .map((j) => {
            const p = mismatch(trial.predict(step.actions[j]!, now), ds[j]!);
            if (!p && ds[j]!.outcome === 'allow')
              trial.commit(step.actions[j]!, now, ds[j]!.writ!.id);
            return p;
          })
          .find((p) => p !== undefined);
        if (problem === undefined) {
          model = trial;
          linearized = order;
          break;
        }
        problems.push(`order ${order.join(',')}: ${problem}`);
      }
      if (!linearized)
        throw new Error(`${at}: no order of the batch explains it:\n${problems.join('\n')}`);
      // The trial model has the batch applied; replay the checks on the engine's answers.
      for (const j of linearized) {
        const d = ds[j]!;
        if (d.outcome === 'allow') {
          invariants.allowed(step.actions[j]!, d, now);
          writs.push(d.writ!.id);
          actionOf.set(d.writ!.id, step.actions[j]!);
        }
      }
    } else if (step.kind === 'settle') {
      const open = writs.filter((id) => !settled.has(id));
      const writId = step.again
        ? (writs[step.pick % (writs.length + 1)] ?? 'wr_unknown')
        : open[step.pick % (open.length || 1)];
      if (writId === undefined) continue;
      const result: Json | undefined = step.status === 'succeeded' ? { step: i } : undefined;
      const expected = model.settle(writId, step.status, step.cost, result, now);
      let outcome: unknown;
      try {
        const settled = await w.settle(writId, {
          status: step.status,
          ...(step.cost !== undefined && { cost: step.cost }),
          ...(result !== undefined && { result }),
        });
        outcome = { overage: settled.overage, labelsAdded: settled.labelsAdded };
      } catch (error) {
        if (!(error instanceof WritError)) throw error;
        outcome = { error: error.code };
      }
      const want = expected ?? { error: 'WRIT_INVALID' };
      if (canon(outcome) !== canon(want))
        throw new Error(`${at}: settle ${writId}: engine ${canon(outcome)}, model ${canon(want)}`);
      if (expected !== undefined) {
        invariants.settled(writId, step.status, now);
        settled.add(writId);
        if (step.thenRetry) await authorize(actionOf.get(writId)!);
      }
    } else if (step.kind === 'sweep') {
      await w.sweep({ limit: step.limit });
    } else if (step.kind === 'open') {
      const opened = await w.sessions.open(step.session, {});
      const expected = model.open(step.session, now);
      if (canon(opened) !== canon(expected))
        throw new Error(`${at}: opened ${canon(opened)}; model ${canon(expected)}`);
    } else {
      clock.advance(step.ms);
    }
    const later = clock.now();
    const after = `after ${what}, at ${new Date(later).toISOString()}`;
    invariants.where = after;
    const states = await w.budgets();
    const modelStates = model.budgets(later);
    if (canon(states) !== canon(modelStates))
      throw new Error(`${after}: budgets ${canon(states)}; model ${canon(modelStates)}`);
    invariants.budgets(states, model);
    const sessions = await w.sessions.list();
    invariants.sessions(sessions, later);
    const modelSessions = model.sessions(later);
    if (canon(sessions) !== canon(modelSessions))
      throw new Error(`${after}: sessions ${canon(sessions)}; model ${canon(modelSessions)}`);
  }
}

/** The property-based cases. */
export const MODEL_CASES: ConformanceCase[] = [
  {
    name: 'model: random interleavings give the answers of the reference model',
    timeoutMs: 120_000,
    async run(factory, { propertyRuns }) {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom<ClaimExpiry>('in_doubt', 'retry'),
          fc.boolean(),
          fc.array(stepArb, { minLength: 1, maxLength: 60, size: 'max' }),
          async (onExpiry, log, steps) => {
            const store = await factory();
            try {
              await runAgainstModel(store, onExpiry, steps, log);
            } finally {
              await store.close();
            }
          },
        ),
        { numRuns: propertyRuns },
      );
    },
  },
];
