import { createHmac } from 'node:crypto';
import {
  type Action,
  actionToJson,
  ID_RULE,
  isId,
  type ParsedAction,
  parseAction,
} from '../core/action.js';
import { canonicalJson } from '../core/canonical-json.js';
import type { Clock, IdSource } from '../core/clock.js';
import {
  type Decision,
  isoTime,
  MAX_TIME,
  publicWrit,
  type Reason,
  reason,
  resolveDecision,
  shadowed,
  type Writ,
} from '../core/decision.js';
import { actionDigest, digestJson } from '../core/digest.js';
import { messageOf, WritError } from '../core/errors.js';
import {
  DEFAULT_JSON_LIMITS,
  errorMessage,
  isJsonObject,
  issuesText,
  type Json,
  type JsonLimits,
  type JsonObject,
  toJson,
} from '../core/json.js';
import { type IdempotencyOp, isAmount, MAX_AMOUNT, type PlanOp } from '../core/plan.js';
import { type Redacted, redact, withSecrets } from '../log/redact.js';
import {
  buildContext,
  type CelContext,
  type CompiledPolicy,
  derivedKeyDigest,
  evaluateScope,
  labelsAfter,
  planInvariants,
  type ScopeVerdict,
  type SessionView,
} from '../policy/index.js';
import { loadPolicy } from '../runtime/load-policy.js';
import { randomIds, systemClock } from '../runtime/system.js';
import { jsonCopy } from '../store/copy.js';
import { memoryStore } from '../store/memory/index.js';
import type {
  ApprovalRecord,
  ApprovalStatus,
  ApprovalStep,
  AuthorizeRequest,
  BudgetState,
  DecisionLog,
  OpenWrit,
  SessionRecord,
  SettleRequest,
  SettleResult,
  Store,
  SweepReport,
  WritRecord,
} from '../store/types.js';
import { invalidRequest } from './decide.js';
import { checkEnvelope, type SecretSource } from './envelope.js';
import {
  APPROVAL_STATUSES,
  checkApprover,
  checkExecute,
  checkGuard,
  checkGuardKeys,
  checkOptions,
  checkSettleKeys,
  shown,
  usage,
} from './usage.js';

/** Options of {@link createWrit}. */
export interface WritOptions {
  /** A policy file path, YAML text, or a policy from `loadPolicy`. */
  policy: string | CompiledPolicy;
  /** Where state lives. Default: in memory (the CLI and server default to SQLite). */
  store?: Store;
  /** Where time comes from. Default: the system clock. */
  clock?: Clock;
  /**
   * Where decision, writ and approval ids come from. Default: random ids that start with
   * the time. An id source must never repeat an id across every engine that shares the
   * store: the store keys writs and approvals by id, and a repeated one takes the place of
   * the first (`sequentialIds` is for one engine on its own store, as in tests).
   */
  ids?: IdSource;
  /**
   * How long a writ that holds no budget and leases nothing may stay unsettled. Default 15
   * minutes. One with holds or leases lives as long as the longest of them, as the policy's
   * `hold_ttl` and `lease` say.
   */
  writTtlMs?: number;
  /** Limits on request data (depth, values, string length); those not given keep their defaults. */
  limits?: Partial<JsonLimits>;
  /** Where `hmac_secret_env` secrets come from. Default: the environment. */
  secrets?: SecretSource;
  /**
   * A candidate policy evaluated beside the enforced one: what it would have decided is
   * recorded with every decision (`writ log --disagreements`), and never enforced.
   */
  candidate?: string | CompiledPolicy;
  /** Record every decision and settlement in the decision log. Default true. */
  log?: boolean;
}

/** How a call ended, reported with `settle`. */
export interface SettleOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  /**
   * The actual cost, captured on every budget the writ holds, whatever the status (a failed
   * call may have spent); beyond the hold it is overage. Default: the held amount on
   * success, nothing on failure or cancel.
   */
  cost?: number;
  /** The tool's result, stored for idempotent replays (JSON). */
  result?: unknown;
}

/** What {@link WritEngine.execute} returns: the decision, and the result where there is one. */
export type ExecuteResult<T> =
  | { outcome: 'allow'; result: T; decision: Decision }
  | { outcome: 'replay'; result: Json; decision: Decision }
  | { outcome: 'deny' | 'approval_required'; decision: Decision };

/** Options of {@link WritEngine.execute}. */
export interface ExecuteOptions<T> {
  /** Throw a `WritError` with code `NOT_ALLOWED` instead of returning a denial. */
  throwOnDeny?: boolean;
  /** The actual cost of a successful call, from its result. */
  cost?: (result: T) => number;
  /** Wait for a person to decide an approval, polling every `pollMs`, up to `timeoutMs`. */
  waitForApproval?: { timeoutMs: number; pollMs?: number };
}

/** What a guarded tool receives besides its arguments. */
export interface GuardContext {
  writ: Writ;
  decision: Decision;
  /**
   * The arguments as authorized, a copy: run the tool with these. The caller's own object
   * may have changed since it was handed to `execute`.
   */
  args: JsonObject;
}

/** The writ engine: one policy, one store, one clock. */
export interface WritEngine {
  readonly policy: CompiledPolicy;
  readonly store: Store;
  /**
   * Decides an action: `allow` with a writ, `deny`, `approval_required` or `replay`. A
   * failing store is a `deny` (`STORE_UNAVAILABLE`); it throws only a `USAGE` error, for a
   * clock or id source that fails.
   */
  authorize(action: unknown): Promise<Decision>;
  /** Settles a writ once. Throws `WRIT_INVALID` for an unknown or already settled writ. */
  settle(writ: Writ | string, outcome: SettleOutcome): Promise<SettleResult>;
  /**
   * Authorizes, runs `fn` only when allowed, and settles with its outcome. A call that ran
   * is settled even when its cost function or result cannot be used; the `USAGE` error
   * that then reports it carries the result and decision in its `data`.
   */
  execute<T>(
    action: unknown,
    fn: (ctx: GuardContext) => T | Promise<T>,
    options?: ExecuteOptions<T>,
  ): Promise<ExecuteResult<T>>;
  /** Wraps a tool function so that every call goes through {@link execute}. */
  guard<A extends JsonObject, T>(
    tool: string,
    fn: (args: A, ctx: GuardContext) => T | Promise<T>,
    defaults: GuardDefaults,
    options?: ExecuteOptions<T>,
  ): (args: A, extra?: GuardCall) => Promise<ExecuteResult<T>>;
  readonly sessions: {
    /** Opens a session with attributes the trusted host derived (e.g. from the user's prompt). */
    open(id: string, attrs?: JsonObject): Promise<SessionRecord>;
    get(id: string): Promise<SessionRecord | undefined>;
    list(): Promise<SessionRecord[]>;
  };
  readonly approvals: {
    list(status?: ApprovalStatus): Promise<ApprovalRecord[]>;
    get(id: string): Promise<ApprovalRecord | undefined>;
    approve(id: string, by: { approver: string; note?: string }): Promise<ApprovalRecord>;
    deny(id: string, by: { approver: string; note?: string }): Promise<ApprovalRecord>;
  };
  budgets(): Promise<BudgetState[]>;
  /**
   * Writs not settled yet, oldest first, with the idempotency claims they hold: after a
   * crash, the calls that may or may not have run. Settling one by its id (`settle(id, …)`)
   * resolves the claims it left `in_doubt`.
   */
  openWrits(): Promise<OpenWrit[]>;
  /**
   * Removes records that can no longer change an answer — idempotency claims past their TTL,
   * nonces past their window, refilled rate buckets, settled writs past their expiry,
   * unsettled ones a day past it once their claims' TTL is over, each a minute after (a decision in flight may have read an earlier time) — and reports what
   * it removed. It looks at up to `limit` records of each kind (default 1,000)
   * and resumes where it stopped: call it now and then (`writ sweep` runs it to the end).
   */
  sweep(options?: { limit?: number }): Promise<SweepReport>;
  close(): Promise<void>;
}

/**
 * What one guarded call adds to its guard's defaults: any of them, and what belongs to that
 * call alone — the nonce and time a policy with `replay` asks for, and the signature over it
 * all (`signingPayload`).
 */
export interface GuardCall extends Partial<GuardDefaults> {
  nonce?: string;
  issuedAt?: string;
  signature?: string;
}

/** Who acts and in which session, for {@link WritEngine.guard}. */
export interface GuardDefaults {
  principal: { id: string; tenant?: string; roles?: string[]; attrs?: JsonObject };
  session: string | { id: string; attrs?: JsonObject; labels?: string[] };
  idempotencyKey?: string;
  estimate?: Record<string, number>;
  meta?: JsonObject;
}

const MAX_CONFLICT_RETRIES = 3;

/** The action as the log keeps it. */
type Logged = Redacted;

function logOf(
  decision: Decision,
  logged: Logged,
  candidate: DecisionLog['candidate'],
): DecisionLog {
  const log: DecisionLog = { decision, action: logged.action, redacted: logged.redacted };
  if (logged.secrets.length > 0) log.secrets = logged.secrets;
  if (candidate) log.candidate = candidate;
  return log;
}

/**
 * The session a decision reads: the attributes it was opened with (the request's own for a
 * session never opened), and the labels it holds.
 */
function viewOf(action: Action, session: SessionRecord | undefined): SessionView {
  return session?.opened
    ? { attrs: session.attrs, labels: session.labels }
    : { attrs: action.session.attrs, labels: session?.labels ?? [] };
}

/** How a refusal is to be recorded, and what of the decision it can reuse. */
interface Refusing {
  logged?: Logged | undefined;
  shadowOf?: DecisionLog['candidate'];
  /** Shadow mode, a call waiting for approval: the claims its idempotency keys would take. */
  claims?: IdempotencyOp[];
  /** The context the decision evaluated, with the session as read then. */
  ctx?: CelContext;
  /** Shadow mode: the id of the writ the decision made, so the call keeps one id. */
  writId?: string;
}

/**
 * How redacted values are digested under a policy with `redact_key_env`: HMAC-SHA256 keyed
 * with that secret, looked up once, when the engine is made. A plain digest of a card
 * number can be found by trying every card number; a keyed one cannot without the key.
 * The key must be there from the start: a log written without it could be tested against
 * guesses, and digests under different keys could not be compared.
 */
function redactionDigest(
  policy: CompiledPolicy,
  secrets: SecretSource,
): ((value: Json) => string) | undefined {
  const name = policy.redactKeyEnv;
  if (name === undefined) return undefined;
  const key = secrets(name);
  if (key === undefined || key.length < 16)
    throw usage(
      `the policy's redact_key_env names ${name}, which ${key === undefined ? 'is not set' : 'holds fewer than 16 characters'}: set it to a secret of at least 16, or remove redact_key_env`,
    );
  return (value) =>
    `hmac-sha256:${createHmac('sha256', key).update(canonicalJson(value)).digest('hex')}`;
}

/** `logged` with the hidden values among a session's attributes added to its secrets. */
function withSecretsOf(attrs: JsonObject, logged: Logged, patterns: readonly string[]): Logged {
  return withSecrets(logged, redact({ session: { attrs } }, patterns).secrets);
}

/**
 * What a candidate policy's scope rules say about the same action in the same context,
 * with the approval the call had, beside what the enforced policy's rules said: the two
 * are compared as rules, since budgets, limits and replays decide the same under either.
 */
function candidateVerdict(
  candidate: CompiledPolicy,
  ctx: CelContext,
  enforced: ScopeVerdict,
  approved: boolean,
): DecisionLog['candidate'] {
  const verdict = evaluateScope(candidate, ctx, approved);
  return {
    policyHash: candidate.hash,
    outcome: verdict.outcome,
    reasons: verdict.reasons,
    enforced: enforced.outcome,
  };
}

/** The cost `cost` gives for a result, or what is wrong with it. */
function costOf<T>(
  value: T,
  cost: ((result: T) => number) | undefined,
): number | string | undefined {
  if (cost === undefined) return undefined;
  let amount: unknown;
  try {
    amount = cost(value);
  } catch (error) {
    return `cost(result) threw: ${errorMessage(error)}`;
  }
  return isAmount(amount)
    ? amount
    : `cost(result) must return a number from 0 to ${MAX_AMOUNT}, not ${shown(amount)}`;
}

/**
 * A tool's result as a replay will return it: JSON as `JSON.stringify` writes it (fields
 * that are `undefined` dropped, dates as text, `toJSON` applied), as any tool result sent
 * over the wire would be; or what keeps it from being stored.
 */
function storableResult(value: unknown, limits: JsonLimits): { value: Json } | string {
  let plain: unknown;
  try {
    plain = value === undefined ? null : jsonCopy(value);
  } catch (error) {
    return `the result is not JSON: ${errorMessage(error)}`;
  }
  const json = toJson(plain, 'result', limits);
  return json.ok
    ? { value: json.value }
    : `the result cannot be stored: ${issuesText(json.issues)}`;
}

/**
 * Creates a writ engine.
 *
 * @example
 * const writ = createWrit({ policy: './policy.yaml', store: sqliteStore() });
 * const sendMoney = writ.guard('send_money', (args) => bank.send(args), {
 *   principal: { id: 'agent-7', tenant: 'acme' },
 *   session: 'run-1',
 * });
 * const r = await sendMoney({ recipient: 'UK12', amount: 50 });
 * if (r.outcome !== 'allow' && r.outcome !== 'replay') console.log(r.decision.reasons);
 */
export function createWrit(options: WritOptions): WritEngine {
  checkOptions(options);
  const policy = typeof options.policy === 'string' ? loadPolicy(options.policy) : options.policy;
  const store = options.store ?? memoryStore();
  const clock = options.clock ?? systemClock;
  /**
   * The time, from the clock the caller injected. A clock that throws or gives a value that
   * is no time (NaN, beyond what a `Date` holds) is a `USAGE` error at the call that read
   * it, rather than a TypeError deep in the store or a decision stamped at an invalid time.
   */
  const readClock = (): number => {
    let at: unknown;
    try {
      at = clock.now();
    } catch (error) {
      throw new WritError('USAGE', `the clock failed: ${messageOf(error)}`, {}, { cause: error });
    }
    if (typeof at !== 'number' || !(Math.abs(at) <= MAX_TIME))
      throw usage(
        `the clock gave ${shown(at)}; a clock gives milliseconds since the Unix epoch, within ±${MAX_TIME}`,
      );
    return at;
  };
  const ids = options.ids ?? randomIds;
  /** A new id from the injected source; one that fails or gives no id is a `USAGE` error. */
  const nextId = (kind: string): string => {
    let id: unknown;
    try {
      id = ids.next(kind);
    } catch (error) {
      throw new WritError(
        'USAGE',
        `the id source failed: ${messageOf(error)}`,
        {},
        { cause: error },
      );
    }
    if (typeof id !== 'string' || id.length === 0 || id.length > 256)
      throw usage(
        `the id source gave ${shown(id)} for a ${kind} id; an id is a string of 1 to 256 characters`,
      );
    return id;
  };
  const writTtlMs = options.writTtlMs ?? 15 * 60_000;
  const limits: JsonLimits = { ...DEFAULT_JSON_LIMITS, ...options.limits };
  const secrets: SecretSource = options.secrets ?? ((name) => process.env[name]);
  const redactDigest = redactionDigest(policy, secrets);
  const candidate =
    typeof options.candidate === 'string' ? loadPolicy(options.candidate) : options.candidate;
  const logging = options.log ?? true;

  const decision = (
    id: string,
    now: number,
    digest: string,
    outcome: Decision['outcome'],
    reasons: Reason[],
  ): Decision => ({
    id,
    outcome,
    reasons,
    policyHash: policy.hash,
    at: isoTime(now),
    actionDigest: digest,
  });

  /** Keeps the policy texts by hash in the store once, so any decision can be explained later. */
  let policiesStored: Promise<void> | undefined;
  /** Set once they are stored, so a decision need not wait a turn on a settled promise. */
  let policiesKept = false;
  const storePolicies = () => {
    policiesStored ??= Promise.all(
      [policy, candidate].flatMap((p) => (p ? [store.putPolicy(p.hash, p.sources)] : [])),
    ).then(
      () => {
        policiesKept = true;
      },
      (error: unknown) => {
        // Try again on the next decision: a store that failed once may be back.
        policiesStored = undefined;
        throw error;
      },
    );
    return policiesStored;
  };

  /**
   * The action as the log keeps it. Digests taken over the whole call — the action digest,
   * the key an idempotency rule without `key:` derives — cover a hidden argument too, and
   * would check guesses at it; they are hidden with it.
   */
  function loggedAction(action: Action, digest: string): Logged {
    const logged = redact(actionToJson(action), policy.redact, redactDigest);
    if (!logged.redacted.some((path) => path.startsWith('args.'))) return logged;
    const hidden = [digest.slice(digest.indexOf(':') + 1)];
    if (policy.idempotency.some((rule) => !rule.key)) hidden.push(derivedKeyDigest(action));
    return withSecrets(logged, hidden);
  }

  async function authorize(input: unknown): Promise<Decision> {
    // Awaited rather than returned: an async function that returns a promise takes two more
    // turns of the microtask queue to adopt it, on every decision.
    return await decide(parseAction(input, limits));
  }

  /** Decides a request already parsed; one that did not parse is refused, and recorded. */
  async function decide(parsed: ParsedAction): Promise<Decision> {
    const now = readClock();
    const id = nextId('dec');
    if (!parsed.ok) {
      const refusal = invalidRequest(policy, parsed.issues, { now, id });
      return record(refusal, { decision: refusal, action: {}, redacted: [] }, now);
    }
    const action = parsed.action;
    const digest = actionDigest(action);
    const logged = logging ? loggedAction(action, digest) : undefined;
    try {
      if (logging && !policiesKept) await storePolicies();
      const envelope = checkEnvelope(policy.replay, action, now, secrets);
      if (envelope) {
        const refusal = decision(id, now, digest, 'deny', [envelope]);
        return await refuse(refusal, action, now, { logged });
      }
      for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
        const result = await decideOnce(id, now, action, digest, logged);
        if (result) return result;
      }
      return decision(id, now, digest, 'deny', [
        reason('STORE_UNAVAILABLE', {
          message: 'the session or approval kept changing during evaluation',
        }),
      ]);
    } catch (error) {
      // A clock or id source that failed on the way is the caller's to fix, not the store's.
      if (error instanceof WritError && error.code === 'USAGE') throw error;
      return storeFailure(id, now, digest, error);
    }
  }

  function storeFailure(id: string, now: number, digest: string, error: unknown): Decision {
    return decision(id, now, digest, 'deny', [
      reason('STORE_UNAVAILABLE', { error: errorMessage(error) }),
    ]);
  }

  /** Records a decision that changes no state; a failure to record still denies. */
  async function record(refusal: Decision, log: DecisionLog, now: number): Promise<Decision> {
    if (!logging) return refusal;
    try {
      await store.record(log, now);
      return refusal;
    } catch (error) {
      return storeFailure(refusal.id, now, refusal.actionDigest, error);
    }
  }

  /** One evaluation against one snapshot of state; `undefined` when the snapshot changed under it. */
  async function decideOnce(
    id: string,
    now: number,
    action: Action,
    digest: string,
    logged: Logged | undefined,
  ): Promise<Decision | undefined> {
    const session = await store.getSession(action.session.id, now);
    // What the host opened the session with is what the policy reads: a value of it that
    // `redact:` hides must not show in the log either (a condition error quoting it).
    if (logged && session?.opened) logged = withSecretsOf(session.attrs, logged, policy.redact);
    const ctx = buildContext(action, now, viewOf(action, session));
    // An approval is bound to what the approver saw — the call, and everything about the
    // request and its session that the policy reads — not only to the action digest:
    // approved with one estimate, role, attribute or label, it does not let the call
    // through with another.
    const seen = policy.scopeFor(action.tool).mayRequireApproval
      ? approvalView(action, ctx.session)
      : undefined;
    const bound = seen && digestJson(seen);
    const approval = bound ? await store.findApproval(bound, policy.hash, now) : undefined;
    const approved = approval?.status === 'approved';
    const verdict = evaluateScope(policy, ctx, approved);
    // The grant names the approval it used, as a denial or an expiry names theirs.
    if (approved && verdict.reasons[0]?.code === 'APPROVAL_GRANTED')
      verdict.reasons[0] = reason('APPROVAL_GRANTED', { rule: approval.id });
    const sessionVersion = session?.version ?? 0;
    const shadowOf =
      candidate && logged ? candidateVerdict(candidate, ctx, verdict, approved) : undefined;
    const refuseWith = (reasons: Reason[], outcome: 'deny' | 'approval_required' = 'deny') =>
      refuse(decision(id, now, digest, outcome, reasons), action, now, { logged, shadowOf, ctx });

    if (verdict.outcome === 'deny') return refuseWith(verdict.reasons);
    if (verdict.outcome === 'approval_required') {
      // A denial answers the request it was made on, until that request's expiry; then the
      // same call asks again — a denial given by mistake is not final for ever.
      if (approval?.status === 'denied' && approval.expiresAt > now) {
        const denied = reason('APPROVAL_DENIED', {
          rule: approval.id,
          resetAt: isoTime(approval.expiresAt),
          ...(approval.note && { message: approval.note }),
        });
        return refuseWith([denied, ...verdict.reasons]);
      }
      const reasons =
        approval?.status === 'expired'
          ? [...verdict.reasons, reason('APPROVAL_EXPIRED', { rule: approval.id })]
          : verdict.reasons;
      // Approved, the call would run with this plan: one that cannot be worked out (a
      // condition error in a budget's cost or key) is refused now, not after a person
      // approved it.
      const plan = planInvariants(policy, action, ctx, now, digest);
      if (!plan.ok) return refuseWith([...plan.reasons, ...reasons]);
      const asked = decision(id, now, digest, 'approval_required', reasons);
      // What the call's idempotency keys hold is checked in the step that asks, not read
      // before it: a key held for another action refuses the call, and a call that already
      // succeeded replays — approved, it could do nothing else, so nobody is asked.
      const claims = plan.ops.filter((op): op is IdempotencyOp => op.kind === 'idempotency');
      if (policy.mode === 'shadow')
        return refuse(asked, action, now, { logged, shadowOf, claims, ctx });
      const step: ApprovalStep = {
        approval: {
          id: nextId('apr'),
          actionDigest: bound!,
          policyHash: policy.hash,
          action: seen!,
          requestedBy: action.principal.id,
          reasons,
          status: 'pending',
          createdAt: now,
          expiresAt: now + verdict.approvalExpiresMs!,
        },
      };
      if (claims.length > 0) step.claims = claims;
      if (logged) step.log = logOf(asked, logged, shadowOf);
      const result = await store.requestApproval(step);
      if (result.status !== 'requested') return resolveDecision(asked, result);
      const { id: approvalId, expiresAt } = result.approval;
      return { ...asked, approval: { id: approvalId, expiresAt: isoTime(expiresAt) } };
    }

    const plan = planInvariants(policy, action, ctx, now, digest);
    if (!plan.ok) return refuseWith([...plan.reasons, ...verdict.reasons]);
    const writ = writRecord(id, now, action, digest, plan.ops, labelsAfter(policy, ctx));
    const granted = decision(id, now, digest, 'allow', verdict.reasons);
    granted.writ = publicWrit(writ);
    // Optional fields are set one by one, in this order, rather than spread in: a spread of
    // a condition makes V8 build the whole object the slow way, on every decision.
    const request: AuthorizeRequest = {
      now,
      writ,
      ops: plan.ops,
      sessionId: action.session.id,
      sessionVersion,
    };
    if (session && session.labels.length > 0) request.sessionLabels = session.labels;
    if (approved && approval) {
      request.approvalId = approval.id;
      request.approvalDigest = bound!;
    }
    if (logged) request.log = logOf(granted, logged, shadowOf);
    if (policy.mode === 'shadow') request.shadow = true;
    const result = await store.authorize(request);
    if (result.status === 'conflict') return undefined;
    if (result.decision) return result.decision;
    if (result.status === 'recorded') return granted;
    const resolved = resolveDecision(granted, result);
    // Unlogged shadow mode: a refusal still lets the call through, reserving nothing.
    if (policy.mode === 'shadow' && resolved.outcome === 'deny') {
      return refuse(resolved, action, now, { ctx, writId: writ.id });
    }
    return resolved;
  }

  /**
   * A refusal, as the policy's mode wants it, recorded: in `enforce` mode as is; in `shadow`
   * mode an allow with a writ that reserves nothing, carrying what would have happened —
   * for a call that waits for approval, what its idempotency `claims` answer, if anything.
   */
  async function refuse(
    refusal: Decision,
    action: Action,
    now: number,
    how: Refusing,
  ): Promise<Decision> {
    const { logged, shadowOf, claims = [] } = how;
    if (policy.mode !== 'shadow')
      return logged ? record(refusal, logOf(refusal, logged, shadowOf), now) : refusal;
    // The call runs: it labels its session as any call does, from what the session holds
    // (a refusal before the session was read reads it now).
    const ctx = how.ctx ?? buildContext(action, now, await sessionView(action, now));
    const writ = writRecord(
      refusal.id,
      now,
      action,
      refusal.actionDigest,
      [],
      labelsAfter(policy, ctx),
      how.writId,
    );
    // A writ that reserves nothing rests on no state, so it takes no session precondition.
    const result = await store.authorize({
      now,
      writ,
      ops: [],
      sessionId: action.session.id,
      ...(logged && { log: logOf(refusal, logged, shadowOf) }),
      shadow: true,
      ...(claims.length > 0 && { claims }),
    });
    if (result.decision) return result.decision;
    if (result.status === 'replay') return resolveDecision(refusal, result);
    // Unlogged, a key held for another action applied nothing: the call still runs, with a
    // writ that reserves nothing, as an unlogged refusal by an op does.
    if (result.status === 'refused')
      return refuse(resolveDecision(refusal, result), action, now, { ctx, writId: writ.id });
    return result.status === 'granted'
      ? { ...shadowed(refusal), writ: publicWrit(writ) }
      : shadowed(refusal);
  }

  /** The session as a decision reads it, read from the store. */
  async function sessionView(action: Action, now: number): Promise<SessionView> {
    return viewOf(action, await store.getSession(action.session.id, now));
  }

  function writRecord(
    decisionId: string,
    now: number,
    action: Action,
    digest: string,
    ops: PlanOp[],
    labels: string[],
    id = nextId('wr'),
  ): WritRecord {
    // The policy's hold_ttl and lease are how long the call may take: a writ cut shorter
    // would free a 1h deploy lease after 15 minutes. Each hold and lease still expires at
    // its own time.
    let reserved = 0;
    for (const op of ops) {
      if (op.kind === 'budget') reserved = Math.max(reserved, op.holdTtlMs);
      if (op.kind === 'concurrency') reserved = Math.max(reserved, op.leaseMs);
    }
    const ttl = reserved > 0 ? reserved : writTtlMs;
    return {
      id,
      decisionId,
      actionDigest: digest,
      sessionId: action.session.id,
      tool: action.tool,
      issuedAt: now,
      expiresAt: now + ttl,
      ops,
      labels,
      fencing: {},
    };
  }

  async function settle(writ: Writ | string, outcome: SettleOutcome): Promise<SettleResult> {
    const writId = typeof writ === 'string' ? writ : (writ as Writ | undefined)?.id;
    if (typeof writId !== 'string')
      throw usage('settle expects the writ an allow decision carried, or its id');
    if (typeof outcome !== 'object' || outcome === null)
      throw usage("settle expects an outcome such as { status: 'succeeded' }");
    checkSettleKeys(outcome);
    if (!['succeeded', 'failed', 'cancelled'].includes(outcome.status)) {
      throw new WritError(
        'USAGE',
        `settle status must be succeeded, failed or cancelled, not ${shown(outcome.status)}`,
      );
    }
    if (outcome.cost !== undefined && !isAmount(outcome.cost))
      throw usage(
        `settle cost must be a number from 0 to ${MAX_AMOUNT}, not ${shown(outcome.cost)}`,
      );
    let result: Json | undefined;
    if (outcome.result !== undefined) {
      const json = toJson(outcome.result, 'result', limits);
      if (!json.ok)
        throw new WritError('USAGE', `settle result is not JSON: ${issuesText(json.issues)}`);
      result = json.value;
    }
    const request: SettleRequest = { now: readClock(), writId, status: outcome.status };
    if (outcome.cost !== undefined) request.cost = outcome.cost;
    if (result !== undefined) request.result = result;
    if (!logging) request.log = false;
    // Awaited rather than returned, as in `authorize`: two turns of the microtask queue fewer.
    return await store.settle(request);
  }

  async function execute<T>(
    action: unknown,
    fn: (ctx: GuardContext) => T | Promise<T>,
    opts: ExecuteOptions<T> = {},
  ): Promise<ExecuteResult<T>> {
    checkExecute(fn, opts);
    // Decided, waited for and run on the request as parsed once, a copy: a caller that
    // changes its object meanwhile (while a person approves, or after handing it over)
    // changes nothing that was decided.
    const parsed = parseAction(action, limits);
    let decided = await decide(parsed);
    if (decided.outcome === 'approval_required' && opts.waitForApproval) {
      decided = await waitForApproval(parsed, decided, opts.waitForApproval);
    }
    if (decided.outcome === 'replay')
      return { outcome: 'replay', result: decided.result ?? null, decision: decided };
    if (decided.outcome !== 'allow' || !decided.writ) {
      if (opts.throwOnDeny) {
        throw new WritError('NOT_ALLOWED', decided.reasons.map((r) => r.code).join(', '), {
          decision: decided,
        });
      }
      return {
        outcome: decided.outcome === 'approval_required' ? 'approval_required' : 'deny',
        decision: decided,
      };
    }
    // The tool gets its own copy of the decision and writ: what it does to them must change
    // neither which writ is settled (a changed id would settle another call's writ, and
    // leave this one open) nor the decision execute returns.
    const writ = decided.writ.id;
    const seen = jsonCopy(decided);
    let value: T;
    try {
      value = await fn({
        writ: seen.writ!,
        decision: seen,
        // Only a request that parsed is allowed.
        args: jsonCopy((parsed as { action: Action }).action.args),
      });
    } catch (error) {
      await settleRan(writ, { status: 'failed' }, { error }, decided);
      throw error;
    }
    const stored = storableResult(value, limits);
    const cost = costOf(value, opts.cost);
    // The call ran: it is settled whatever its cost function did or its result was, so that
    // nothing stays held for it. A cost that cannot be used settles it at what it held, a
    // result that cannot be stored as null; then either is reported.
    await settleRan(
      writ,
      {
        status: 'succeeded',
        result: typeof stored === 'string' ? null : stored.value,
        ...(typeof cost === 'number' && { cost }),
      },
      { result: value },
      decided,
    );
    // The call succeeded: a caller told of a mistake now must still be able to tell that it
    // ran, and get what it returned.
    const succeeded = (problem: string, settled: string) =>
      new WritError(
        'USAGE',
        `${problem}; the call succeeded and was settled ${settled} (its result and decision are in this error's data)`,
        { outcome: 'allow', result: value, decision: decided },
      );
    if (typeof cost === 'string') throw succeeded(cost, 'at the amount it held');
    // Only a replay would read the stored result: without an idempotency claim, null is as
    // good as any; with one, a retry would get null for the tool's result, so say so now.
    if (
      typeof stored === 'string' &&
      decided.writ.reservations.some((r) => isJsonObject(r) && r.kind === 'idempotency')
    )
      throw succeeded(stored, 'with null kept for replays');
    return { outcome: 'allow', result: value, decision: decided };
  }

  /**
   * Settles the writ of a call that ran. When that fails — the tool or an operator settled
   * it already, the store closed meanwhile — neither is lost: the settle failure is thrown,
   * since the caller must learn that the call's record is not what execute meant it to be,
   * with the tool's error as its `cause` (a chain every runtime prints), or the tool's
   * result in its `data` as a successful call's other errors carry it.
   */
  async function settleRan(
    writId: string,
    outcome: SettleOutcome,
    ran: { error: unknown } | { result: unknown },
    decided: Decision,
  ): Promise<void> {
    try {
      await settle(writId, outcome);
    } catch (failure) {
      const code = failure instanceof WritError ? failure.code : 'STORE_FAILURE';
      const cannot = `execute could not settle writ ${writId}: ${errorMessage(failure)}`;
      if ('error' in ran)
        throw new WritError(
          code,
          `${cannot}; the tool had failed (its error is this error's cause)`,
          { decision: decided, settleError: failure },
          { cause: ran.error },
        );
      throw new WritError(
        code,
        `${cannot}; the call had succeeded (its result and decision are in this error's data)`,
        { outcome: 'allow', result: ran.result, decision: decided },
        { cause: failure },
      );
    }
  }

  async function waitForApproval(
    request: ParsedAction,
    pending: Decision,
    wait: { timeoutMs: number; pollMs?: number },
  ): Promise<Decision> {
    const pollMs = wait.pollMs ?? 500;
    const deadline = readClock() + wait.timeoutMs;
    let current = pending;
    // Bounded by the time slept as well as by the clock: the waits are real timers, and an
    // injected clock (a test's, a simulation's) need not move while they pass.
    for (let slept = 0; current.outcome === 'approval_required'; ) {
      const left = Math.min(deadline - readClock(), wait.timeoutMs - slept);
      if (!(left > 0)) break;
      // The last wait is only what is left: a poll longer than the timeout must not hold
      // the caller past it (timeoutMs 100 with pollMs 3000 returned after 3 s).
      const ms = Math.min(pollMs, left);
      await new Promise((resolve) => setTimeout(resolve, ms));
      slept += ms;
      // While the request is pending only its state is read: deciding on every poll would
      // log a decision every pollMs for as long as the person takes. A read that fails is
      // left to the decision, which turns a store failure into a denial.
      const id = current.approval?.id;
      const asked = id && (await store.getApproval(id, readClock()).catch(() => undefined));
      if (asked && asked.status === 'pending') continue;
      current = await decide(request);
    }
    return current;
  }

  return {
    policy,
    store,
    authorize,
    settle,
    execute,
    guard(tool, fn, defaults, guardOptions) {
      checkGuard(tool, fn, defaults, guardOptions ?? {});
      return async (args, extra = {}) => {
        if (typeof extra !== 'object' || extra === null)
          throw usage('guard: a call adds to the defaults with an object, such as { meta }');
        checkGuardKeys('a call', extra);
        const merged = { ...defaults, ...extra };
        const session =
          typeof merged.session === 'string' ? { id: merged.session } : merged.session;
        // The tool gets a copy of the arguments taken before they are authorized: the
        // caller's object may change while authorization awaits the store, and the tool
        // must run with exactly what was authorized. A plain-object copy, as the tool was
        // written for; arguments that are not JSON are left for authorize to refuse.
        const copy = toJson(args, 'args', limits);
        const checked = (copy.ok ? jsonCopy(copy.value) : args) as typeof args;
        return execute(
          { ...merged, session, tool, args: checked },
          (ctx) => fn(checked, ctx),
          guardOptions,
        );
      };
    },
    sessions: {
      async open(id, attrs = {}) {
        if (!isId(id)) throw usage(`sessions.open: the session id must be ${ID_RULE}`);
        if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs))
          throw usage('sessions.open: attrs must be an object');
        const json = toJson(attrs, 'attrs', limits);
        if (!json.ok) throw usage(`sessions.open: ${issuesText(json.issues)}`);
        const trusted = json.value as JsonObject;
        // The log keeps the attributes as decisions log them: `session.attrs.*` paths of
        // `redact:` hidden.
        const logged = redact({ session: { attrs: trusted } }, policy.redact, redactDigest);
        return store.putSession(id, trusted, readClock(), {
          attrs: (logged.action.session as { attrs: JsonObject }).attrs,
          redacted: logged.redacted,
        });
      },
      get: async (id) => store.getSession(id, readClock()),
      list: async () => store.listSessions(readClock()),
    },
    approvals: {
      async list(status) {
        if (status !== undefined && !APPROVAL_STATUSES.includes(status))
          throw usage(
            `approvals.list: status must be one of ${APPROVAL_STATUSES.join(', ')}, not ${shown(status)}`,
          );
        return store.listApprovals(readClock(), status);
      },
      get: async (id) => store.getApproval(id, readClock()),
      // Checked here as well as in the ledger, so that a store of any kind gets the check.
      async approve(id, by) {
        checkApprover(by);
        return store.decideApproval(id, { approve: true, ...by }, readClock());
      },
      async deny(id, by) {
        checkApprover(by);
        return store.decideApproval(id, { approve: false, ...by }, readClock());
      },
    },
    budgets: async () => store.listBudgets(readClock()),
    openWrits: async () => store.listOpenWrits(readClock()),
    async sweep(options) {
      const limit = options?.limit ?? 1_000;
      if (!(Number.isSafeInteger(limit) && limit >= 1))
        throw usage(`sweep: limit must be a whole number ≥ 1, not ${shown(limit)}`);
      return store.sweep(readClock(), limit);
    },
    close: () => store.close(),
  };
}

/**
 * What an approver sees and what the approval is bound to: the exact call, who asks (with
 * the roles and attributes the host gave), in which session with the attributes and labels
 * the policy read, and what else the request carries that a policy can read — its estimate,
 * idempotency key and meta. Not the nonce, time or signature, which a retry of the same
 * call changes. A retry must repeat the rest exactly, or it asks for approval again.
 */
function approvalView(
  action: Action,
  session: { attrs: JsonObject; labels: readonly string[] },
): JsonObject {
  const principal: JsonObject = { id: action.principal.id };
  if (action.principal.tenant !== undefined) principal.tenant = action.principal.tenant;
  if (action.principal.roles.length > 0) principal.roles = action.principal.roles;
  if (Object.keys(action.principal.attrs).length > 0) principal.attrs = action.principal.attrs;
  const view: JsonObject = {
    tool: action.tool,
    args: action.args,
    principal,
    session: action.session.id,
  };
  // The session as the policy read it: the host's attributes once it opened the session,
  // and the labels from the store together with the caller's.
  if (Object.keys(session.attrs).length > 0) view.sessionAttrs = session.attrs;
  if (session.labels.length > 0) view.sessionLabels = [...session.labels];
  if (Object.keys(action.estimate).length > 0) view.estimate = { ...action.estimate };
  if (action.idempotencyKey !== undefined) view.idempotencyKey = action.idempotencyKey;
  if (Object.keys(action.meta).length > 0) view.meta = action.meta;
  return view;
}
