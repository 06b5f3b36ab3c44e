import type { Decision, Reason, StepOutcome } from '../core/decision.js';
import type { Json, JsonObject } from '../core/json.js';
import type { IdempotencyOp, PlanOp } from '../core/plan.js';
import type { CandidateVerdict, LogEntry, LogHead } from '../log/entry.js';
import type { ChainReport } from '../log/verify.js';
import type { PolicySourceText } from '../policy/index.js';

/**
 * The store interface. A store keeps writ's state — budgets, rate buckets, leases,
 * idempotency claims, nonces, open writs, sessions, approvals — and applies each
 * authorization and each settlement as **one atomic step**.
 *
 * Semantics every store must keep (the conformance suite in `writ/testing` checks them):
 * - `authorize` checks its preconditions and every op of the plan against the state at
 *   `now`, and then either applies **all** of them and records the writ, or applies
 *   **none** and reports the first op that refused. Concurrent calls behave as if run one
 *   at a time in some order.
 * - `requestApproval` is one atomic step as well: what it finds on the call's idempotency
 *   keys and the request it records are as of one moment between the steps of other calls,
 *   so its answer depends on the order of the steps, not on when anything was read before.
 * - Time is only ever the `now` passed in. Expired holds, leases and claims are treated as
 *   expired whenever they are read, so nothing depends on a background sweeper.
 * - A store that cannot answer throws; the engine turns that into a `deny` with
 *   `STORE_UNAVAILABLE`. A store never answers "allowed" on failure. A closed store
 *   answers nothing: every call rejects with a `STORE_FAILURE`.
 */
export interface Store {
  /** A short name for logs and metrics: `memory`, `sqlite`, … */
  readonly kind: string;
  authorize(request: AuthorizeRequest): Promise<AuthorizeResult>;
  settle(request: SettleRequest): Promise<SettleResult>;
  /**
   * A session's trusted state at `now`, or `undefined` if never opened, never labelled and
   * never given a writ with labels.
   * The labels of writs that expired unsettled are on it: such a call may have run.
   */
  getSession(id: string, now: number): Promise<SessionRecord | undefined>;
  /**
   * Opens a session, or replaces its attributes; labels are kept. Bumps its version. The log
   * records `logged` (the attributes with the policy's `redact:` paths replaced by digests,
   * and those paths), `attrs` when not given.
   */
  putSession(
    id: string,
    attrs: JsonObject,
    now: number,
    logged?: LoggedAttrs,
  ): Promise<SessionRecord>;
  listSessions(now: number): Promise<SessionRecord[]>;
  /**
   * Asks for approval of a call, as one atomic step at the approval's `createdAt`.
   *
   * First the call's idempotency `claims` are checked, in order, against the claims the
   * store holds — as `authorize` checks them, but none is taken, so that nobody is asked to
   * approve a call whose answer is already known:
   * - a key held for another action digest refuses the call (`refused`, with the
   *   `IDEMPOTENCY_MISMATCH` reason `authorize` gives: the claim's rule and key), and no
   *   approval is recorded;
   * - a key whose call succeeded with this action digest replays its stored result
   *   (`replay`): nothing runs again, so nobody needs to approve it, and no approval is
   *   recorded;
   * - a key in flight or in doubt for this action digest ends the check: its call may still
   *   fail or be settled, and `authorize` answers for the key once the call is approved.
   *
   * Otherwise it returns the open approval request for the approval's action digest and
   * policy, recording `approval` as `pending` when there is none (so retries of the same
   * call share one request). With `log`, the decision is recorded in the same step: the
   * `approval_required` draft naming the request, or the draft resolved by what a claim
   * found (`resolveDecision`), with keys the log's `secrets` hide scrubbed as `authorize`
   * scrubs them.
   */
  requestApproval(step: ApprovalStep): Promise<ApprovalStepResult>;
  /** The most recent approval for this action digest under this policy, if any. */
  findApproval(
    actionDigest: string,
    policyHash: string,
    now: number,
  ): Promise<ApprovalRecord | undefined>;
  getApproval(id: string, now: number): Promise<ApprovalRecord | undefined>;
  listApprovals(now: number, status?: ApprovalStatus): Promise<ApprovalRecord[]>;
  /**
   * Approves or denies a pending, unexpired approval. Throws `APPROVAL_INVALID` when it is
   * not pending, has expired, or the approver is the principal who asked.
   */
  decideApproval(id: string, decision: ApprovalDecision, now: number): Promise<ApprovalRecord>;
  /** Budget keys with their state at `now`. */
  listBudgets(now: number): Promise<BudgetState[]>;
  /** Writs not settled yet, oldest first, with the idempotency claims they hold at `now`. */
  listOpenWrits(now: number): Promise<OpenWrit[]>;
  /**
   * Removes records whose lifetime ended a minute or more before `now` (a decision that read
   * an earlier `now` may still be waiting to use them) and that can no longer change any answer:
   * idempotency claims past their TTL, nonces past their window, rate buckets that have
   * refilled, settled writs past their expiry (settling one again then reports an unknown
   * writ instead of a settled one), and unsettled writs `LATE_SETTLE_MS` past their expiry
   * and past their idempotency claims' TTL — a late settle can no longer correct a capture or
   * resolve a claim then, and their labels went on the session at their expiry; one settled
   * after that is an unknown writ, and a cost it reports is not recorded. Budgets, leases
   * (their fencing tokens must keep growing), sessions, approvals and the log are kept. Looks at up to `limit` records of
   * each kind, resuming where the last sweep stopped, so that repeated sweeps visit every
   * record; `done` when this one reached the end of every kind.
   */
  sweep(now: number, limit: number): Promise<SweepReport>;
  /**
   * Records a decision that changes no state (a scope denial, an invalid request), as its own
   * atomic step, and returns its log entry.
   */
  record(log: DecisionLog, now: number): Promise<LogEntry>;
  /** Log entries after `afterSeq`, at most `limit`, in order. */
  readLog(afterSeq: number, limit: number): Promise<LogEntry[]>;
  /** The last entry's sequence number and hash, or `undefined` for an empty log. */
  logHead(): Promise<LogHead | undefined>;
  /** The log entry of a decision, by decision id. */
  findDecision(id: string): Promise<LogEntry | undefined>;
  /**
   * Checks the whole hash chain, reading one entry at a time; and that it still holds each
   * of `anchors` — heads recorded outside the store — as they were.
   */
  verifyLog(anchors?: readonly LogHead[]): Promise<ChainReport>;
  /** Keeps a policy's source text by its hash (once), so any decision can be explained later. */
  putPolicy(hash: string, sources: PolicySourceText[]): Promise<void>;
  getPolicy(hash: string): Promise<PolicySourceText[] | undefined>;
  close(): Promise<void>;
}

/** The one atomic step of an authorization. */
export interface AuthorizeRequest {
  now: number;
  writ: WritRecord;
  ops: PlanOp[];
  sessionId: string;
  /**
   * Evaluation read this session at this version; a different version is a conflict.
   * Absent: the step rests on no session state (a writ that reserves nothing).
   */
  sessionVersion?: number;
  /**
   * The session's labels evaluation read (the store's, as of `now`, sorted); other labels
   * are a conflict too: a writ's labels go on its session at its expiry, which writes
   * nothing and so moves no version. Absent: none.
   */
  sessionLabels?: readonly string[];
  /** Evaluation relied on this approval; it is consumed, and must still be approved. */
  approvalId?: string;
  /**
   * What the approval must be bound to (its `actionDigest`): the digest of what its approver
   * saw. Default: the writ's action digest.
   */
  approvalDigest?: string;
  /**
   * Record the decision in the log in this same step. With a `deny` draft no op is applied;
   * with an `allow` draft the final decision is the draft resolved by what the ops did.
   */
  log?: DecisionLog;
  /** Shadow mode: a decision that is not an allow records the writ without reservations. */
  shadow?: boolean;
  /**
   * Shadow mode, for a call that waits for approval and so reserves nothing (`ops` empty):
   * the idempotency claims of the plan it would run with, checked as
   * {@link Store.requestApproval} checks them and never taken. A key held for another action
   * refuses the call and an earlier success of this action replays, as an op would; any
   * other state of a key leaves the step as it would be without them.
   */
  claims?: IdempotencyOp[];
}

/** The one atomic step of asking for approval: see {@link Store.requestApproval}. */
export interface ApprovalStep {
  /**
   * The request to record as `pending` when none is open for its action digest and policy;
   * its `createdAt` is the step's time.
   */
  approval: ApprovalRecord;
  /**
   * The idempotency claims of the plan the call would run with once approved, in plan
   * order: checked, never taken.
   */
  claims?: IdempotencyOp[];
  /** Record the decision in the log in this same step; its decision is the `approval_required` draft. */
  log?: DecisionLog;
}

/** What asking for approval did. */
export type ApprovalStepResult =
  /** The open request for the action: `approval` as given, or the one it shares. */
  | { status: 'requested'; approval: ApprovalRecord }
  /** A claim is held for another action (`IDEMPOTENCY_MISMATCH`): no approval recorded. */
  | { status: 'refused'; reason: Reason }
  /** This action already succeeded: its stored result, and no approval recorded. */
  | { status: 'replay'; result: Json; writId: string };

/** What `authorize` did; with a `log`, also the final decision as logged. */
export type AuthorizeResult = (
  | StepOutcome
  /** A precondition changed since evaluation: nothing applied or logged; evaluate again. */
  | { status: 'conflict'; on: 'session' | 'approval' }
  /** A decision without reservations (a denial, or shadow mode) was recorded. */
  | { status: 'recorded' }
) & { decision?: Decision };

/**
 * A decision to record in the same atomic step: the decision as it would be if every
 * reservation were granted (or a denial), and the action as logged.
 */
export interface DecisionLog {
  decision: Decision;
  /** The action with `redact:`ed paths replaced by digests. */
  action: JsonObject;
  redacted: string[];
  candidate?: CandidateVerdict;
  /**
   * The values `redact:` hides, as text might quote them: the entry shows none of them — not
   * in a reason's message, error or key, nor in a reservation's key.
   */
  secrets?: string[];
}

/** The second phase of a writ. */
export interface SettleRequest {
  now: number;
  writId: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  /**
   * Actual cost, captured on every budget the writ holds whatever the status; beyond the
   * hold it is overage. Default: the held amount when the call succeeded, nothing when it
   * failed or was cancelled.
   */
  cost?: number;
  /** Record the settlement in the decision log in the same step (default true). */
  log?: boolean;
  /** Stored with an idempotency claim and returned to replays. */
  result?: Json;
}

/** What `settle` did. Settling an unknown or already settled writ throws `WRIT_INVALID`. */
export interface SettleResult {
  writ: WritRecord;
  /** Labels added to the session (only on success). */
  labelsAdded: string[];
  /** Captured cost beyond the hold, per budget key. */
  overage: Record<string, number>;
  /**
   * Budget keys the settle left as they were because the hold had been captured at its
   * expiry and that capture was final (`LATE_SETTLE_MS` later): a cost reported now is not
   * counted there. Absent when there are none.
   */
  uncounted?: string[];
}

/** An issued writ as the store keeps it. */
export interface WritRecord {
  id: string;
  decisionId: string;
  actionDigest: string;
  sessionId: string;
  tool: string;
  issuedAt: number;
  expiresAt: number;
  ops: PlanOp[];
  /**
   * Labels the session gets when the call is settled as having run, `succeeded` or `failed`
   * (worked out at authorize, applied at settle): a call that failed may still have shown the
   * agent what it read. A `cancelled` call never ran and adds none.
   */
  labels: string[];
  fencing: Record<string, number>;
  /**
   * The keys of its ops as the log shows them, where they differ: a budget `per:` a value
   * `redact:` hides has that value in its key, which the settlement's overage would name.
   */
  loggedKeys?: Record<string, string>;
  settled?: { at: number; status: SettleRequest['status']; cost?: number };
}

/** A writ nobody has settled, as of a point in time: what an operator looks at after a crash. */
export interface OpenWrit {
  writ: WritRecord;
  /** Past its expiry: its holds and leases have lapsed; only a late settle can settle it now. */
  expired: boolean;
  /**
   * The idempotency keys it still claims. Before its expiry they are `in_flight`; after it,
   * `in_doubt` — a retry is refused until the writ is settled (a success then replays, a
   * failure frees the key) or the claim's TTL ends. Claims of `on_expiry: retry` rules stop
   * blocking at the expiry and are not listed after it.
   */
  claims: { key: string; status: 'in_flight' | 'in_doubt' }[];
}

/** A session's attributes as the log records them. */
export interface LoggedAttrs {
  attrs: JsonObject;
  /** The paths (`session.attrs.token`) whose values `attrs` holds as digests. */
  redacted: string[];
}

/** A session's trusted state. `version` grows with every change. */
export interface SessionRecord {
  id: string;
  attrs: JsonObject;
  /** True once the host opened the session: then `attrs` are authoritative. */
  opened: boolean;
  labels: string[];
  version: number;
}

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'consumed' | 'expired';

/** A request for a person to approve one exact action under one policy version. */
export interface ApprovalRecord {
  id: string;
  /**
   * The digest the approval is bound to: the engine's digest of `action`, what the approver
   * sees — the call, and the request context a policy can read (roles, attributes, estimate,
   * idempotency key, meta).
   */
  actionDigest: string;
  policyHash: string;
  /** The canonical action, so the approver sees exactly what runs. */
  action: JsonObject;
  requestedBy: string;
  reasons: Reason[];
  status: ApprovalStatus;
  createdAt: number;
  /**
   * The end of the request: it may be decided until then, an approval must be used by then,
   * and a denial refuses the call until then (after it, the same call asks again).
   */
  expiresAt: number;
  decidedBy?: string;
  decidedAt?: number;
  note?: string;
}

/** A person's answer to an approval request. */
export interface ApprovalDecision {
  approve: boolean;
  approver: string;
  note?: string;
}

/** A budget key at a point in time. */
/** What a {@link Store.sweep} did. */
export interface SweepReport {
  /** Records looked at. */
  examined: number;
  /** Records removed, by kind (`idem`, `nonce`, `rate`, `writ`); kinds with none left out. */
  removed: Record<string, number>;
  /** The sweep reached the end of every kind: the next one starts over. */
  done: boolean;
}

export interface BudgetState {
  key: string;
  limit: number;
  /** Captured, including overage. */
  spent: number;
  /** Held by unsettled, unexpired writs. */
  held: number;
  remaining: number;
  /** When the window resets (epoch ms), or `null` for lifetime. */
  windowEnd: number | null;
}
