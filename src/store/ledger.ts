import { checkApproverId, sameParty } from '../core/action.js';
import {
  type Decision,
  isoTime,
  publicWrit,
  type Reason,
  reason,
  resolveDecision,
  type StepOutcome,
  shadowed,
} from '../core/decision.js';
import { digestJson } from '../core/digest.js';
import { WritError } from '../core/errors.js';
import type { Json } from '../core/json.js';
import {
  type BudgetOp,
  type ConcurrencyOp,
  type IdempotencyOp,
  isAmount,
  MAX_AMOUNT,
  type NonceOp,
  type PlanOp,
  type RateOp,
} from '../core/plan.js';
import {
  chainEntryBody,
  type LogDraft,
  type LogEntry,
  type LoggedSettlement,
  type LogHead,
  logDecision,
} from '../log/entry.js';
import { scrubDecision, scrubText } from '../log/redact.js';
import type { PolicySourceText } from '../policy/index.js';
import type {
  ApprovalDecision,
  ApprovalRecord,
  ApprovalStatus,
  ApprovalStep,
  ApprovalStepResult,
  AuthorizeRequest,
  AuthorizeResult,
  BudgetState,
  DecisionLog,
  LoggedAttrs,
  OpenWrit,
  SessionRecord,
  SettleRequest,
  SettleResult,
  WritRecord,
} from './types.js';

/**
 * The invariant semantics, written once for every store that can run JavaScript inside its
 * transaction (memory, SQLite). A store supplies a synchronous key-value view of its state
 * for the duration of one atomic step; the ledger reads through it, decides, and writes
 * only when every op of the plan passed — so a refusal leaves no trace.
 */

/** The kinds of records a store keeps. */
export type Kind =
  | 'budget'
  | 'rate'
  | 'lease'
  | 'idem'
  | 'nonce'
  | 'writ'
  | 'session'
  | 'approval'
  | 'approval-index'
  | 'policy'
  | 'log-head';

/** Synchronous access to a store's records inside one transaction. Values are plain JSON. */
export interface KvView {
  get(kind: Kind, key: string): unknown;
  put(kind: Kind, key: string, value: unknown): void;
  delete(kind: Kind, key: string): void;
  list(kind: Kind): unknown[];
  /**
   * Appends an entry to the decision log (its `seq` is the next after the head). `body` is its
   * JSON without the hash field: the stored text is `sealedText(body, entry.hash)`.
   */
  append(entry: LogEntry, body: string): void;
}

/*
 * Holds, captured expiries and leases are lists of entries, each naming its writ, in the
 * order they were taken. A shared budget carries one hold per call in flight, and every
 * step that touches it writes a new row: a copy of a list is a copy of pointers, where an
 * object keyed by writ id (a new key every call, so a hash table in V8) is re-sorted by
 * insertion order on every walk — under many concurrent callers the costliest part of a
 * decision. (Rows written before kept them as objects keyed by writ id: `budgetRow` and
 * `leaseRow` read both.)
 */
interface Hold {
  writ: string;
  amount: number;
  expiresAt: number;
  onExpiry: 'release' | 'capture';
}
/**
 * A hold that expired and was captured: a settle until `until` corrects the amount, and
 * after it the capture is final. (Rows written before kept no `until`: such entries stay
 * until settled.)
 */
interface ExpiredCapture {
  writ: string;
  amount: number;
  until?: number;
}

/**
 * How long after a hold was captured at its expiry a late settle may still correct the
 * amount. Bounded, or a budget whose agents often die without settling would carry their
 * captures in its row for ever — rewritten on every call that touches it.
 */
export const LATE_SETTLE_MS = 24 * 3_600_000;

/** When a `capture` hold of `writ` on `op` stops being correctable by a late settle. */
function captureFinalAt(writ: WritRecord, op: BudgetOp): number {
  return Math.min(writ.expiresAt, writ.issuedAt + op.holdTtlMs) + LATE_SETTLE_MS;
}
interface BudgetRow {
  key: string;
  limit: number;
  windowEnd: number | null;
  spent: number;
  holds: Hold[];
  expiredCaptures: ExpiredCapture[];
}
/**
 * A GCRA bucket. Its theoretical arrival time is `tat + frac / per` ms: kept as whole
 * milliseconds and a remainder in units of 1/`per` ms — the rate's interval is
 * `periodMs / per`, rarely a whole number, and fractions of it added to an epoch time in
 * floating point lose a bit at every call (a burst of 6 in 1s let 5 calls through).
 * (Rows written before kept a fractional `tat` alone: `rateAhead` reads both.)
 */
interface RateRow {
  tat: number;
  frac?: number;
  per?: number;
}
interface Lease {
  writ: string;
  expiresAt: number;
  token: number;
}
interface LeaseRow {
  fence: number;
  leases: Lease[];
}
interface IdemRow {
  digest: string;
  status: 'in_flight' | 'succeeded';
  writId: string;
  writExpiresAt: number;
  onExpiry: 'in_doubt' | 'retry';
  result: Json;
  expiresAt: number;
}
interface NonceRow {
  expiresAt: number;
}

/** Buffers writes so that nothing reaches the store unless the whole step succeeds. */
class Tx {
  // Pending writes in the order first written; `null` deletes. A step writes a handful of
  // records, so a scan of these beats building and hashing a `kind\0key` string per access.
  readonly #kinds: Kind[] = [];
  readonly #keys: string[] = [];
  readonly #values: unknown[] = [];
  readonly #log: { entry: LogEntry; body: string }[] = [];
  constructor(readonly view: KvView) {}
  #pending(kind: Kind, key: string): number {
    for (let i = 0; i < this.#kinds.length; i++)
      if (this.#kinds[i] === kind && this.#keys[i] === key) return i;
    return -1;
  }
  get<T>(kind: Kind, key: string): T | undefined {
    const i = this.#pending(kind, key);
    const value = i < 0 ? this.view.get(kind, key) : this.#values[i];
    return (value ?? undefined) as T | undefined;
  }
  put(kind: Kind, key: string, value: unknown) {
    const i = this.#pending(kind, key);
    if (i >= 0) this.#values[i] = value;
    else {
      this.#kinds.push(kind);
      this.#keys.push(key);
      this.#values.push(value);
    }
  }
  delete(kind: Kind, key: string) {
    this.put(kind, key, null);
  }
  /** Chains a log entry after the head; it is written with the rest at commit. */
  log(draft: LogDraft): LogEntry {
    const { entry, body } = chainEntryBody(this.get<LogHead>('log-head', 'head'), draft);
    this.#log.push({ entry, body });
    this.put('log-head', 'head', { seq: entry.seq, hash: entry.hash } satisfies LogHead);
    return entry;
  }
  commit() {
    for (const { entry, body } of this.#log) this.view.append(entry, body);
    for (let i = 0; i < this.#kinds.length; i++) {
      const value = this.#values[i];
      if (value === null) this.view.delete(this.#kinds[i]!, this.#keys[i]!);
      else this.view.put(this.#kinds[i]!, this.#keys[i]!, value);
    }
  }
}

/** A budget row as stored: this version's lists, or the objects of rows written before. */
function budgetRow(stored: BudgetRow): BudgetRow {
  if (Array.isArray(stored.holds) && Array.isArray(stored.expiredCaptures)) return stored;
  const holds = stored.holds as unknown as Record<string, Omit<Hold, 'writ'>>;
  const captures = stored.expiredCaptures as unknown as Record<string, number>;
  return {
    ...stored,
    holds: Object.entries(holds).map(([writ, hold]) => ({ writ, ...hold })),
    expiredCaptures: Object.entries(captures).map(([writ, amount]) => ({ writ, amount })),
  };
}

/** A lease row as stored: this version's list, or the object of rows written before. */
function leaseRow(stored: LeaseRow): LeaseRow {
  if (Array.isArray(stored.leases)) return stored;
  const leases = stored.leases as unknown as Record<string, Omit<Lease, 'writ'>>;
  return {
    fence: stored.fence,
    leases: Object.entries(leases).map(([writ, lease]) => ({ writ, ...lease })),
  };
}

/**
 * A budget row at `now`: expired holds released or captured, captures past correcting
 * dropped. The row itself when neither applies — the common case, checked first so it
 * copies nothing.
 */
function budgetAt(stored: BudgetRow, now: number): BudgetRow {
  const row = budgetRow(stored);
  if (!anyExpired(row, now)) return row;
  const holds: Hold[] = [];
  let spent = row.spent;
  const expiredCaptures = row.expiredCaptures.filter((c) => !isFinal(c, now));
  for (const hold of row.holds) {
    if (hold.expiresAt > now) holds.push(hold);
    else if (hold.onExpiry === 'capture') {
      spent += hold.amount;
      const until = hold.expiresAt + LATE_SETTLE_MS;
      if (until > now) expiredCaptures.push({ writ: hold.writ, amount: hold.amount, until });
    }
  }
  return budgetWith(row, row.limit, spent, holds, expiredCaptures);
}

/** A capture past correcting by a late settle. */
function isFinal(capture: ExpiredCapture, now: number): boolean {
  return capture.until !== undefined && capture.until <= now;
}

/** Whether a hold of `row` expired or a capture became final by `now` (loops: no closures). */
function anyExpired(row: BudgetRow, now: number): boolean {
  for (const hold of row.holds) if (hold.expiresAt <= now) return true;
  for (const capture of row.expiredCaptures) if (isFinal(capture, now)) return true;
  return false;
}

/**
 * `row` with these fields, as a literal in the order rows are stored: V8 builds it faster
 * than a spread, on every hold and settle.
 */
function budgetWith(
  row: BudgetRow,
  limit: number,
  spent: number,
  holds: Hold[],
  expiredCaptures: ExpiredCapture[],
): BudgetRow {
  return { key: row.key, limit, windowEnd: row.windowEnd, spent, holds, expiredCaptures };
}

function held(row: BudgetRow): number {
  let sum = 0;
  // In the order taken: the sum's rounding depends on it.
  for (const hold of row.holds) sum += hold.amount;
  return sum;
}

/** `list` without the entry of `writId`: a copy if it is there, else `list` itself. */
function without<T extends { writ: string }>(list: T[], writId: string): T[] {
  let at = 0;
  while (at < list.length && list[at]!.writ !== writId) at++;
  if (at === list.length) return list;
  const out = list.slice(0, at);
  for (let i = at + 1; i < list.length; i++) if (list[i]!.writ !== writId) out.push(list[i]!);
  return out;
}

/** The entry of `writId` in `list`, if any. */
function entryOf<T extends { writ: string }>(list: T[], writId: string): T | undefined {
  for (const entry of list) if (entry.writ === writId) return entry;
  return undefined;
}

/**
 * Rounds away binary noise so 0.1 + 0.2 fits a limit of 0.3, the same way in every store:
 * to nine decimals, or fewer where the largest of the amounts it came from (`a`, `b`, `c`)
 * holds fewer — a double holds 15 significant digits, and the noise is that of the operands,
 * not of the result (123456789.07 − 123456789 is 0.07 to six decimals, not to nine). Scaling
 * 5e9 by 1e9 would also pass 2^53 and round 4999999997 to 4999999996.999999.
 */
function money(n: number, a = 0, b = 0, c = 0): number {
  // Fixed parameters rather than a rest list: it runs on every hold and settle. A missing
  // amount is 0, which changes no maximum of absolute values.
  const magnitude = Math.max(Math.abs(n), Math.abs(a), Math.abs(b), Math.abs(c));
  const digits = Math.min(9, Math.max(0, 15 - Math.ceil(Math.log10(magnitude + 1))));
  const scale = 10 ** digits;
  // `+ 0` turns the -0 that rounding a tiny negative noise gives into 0.
  return Math.round(n * scale) / scale + 0;
}

/**
 * A writ record's own copy, field by field (with `fencing` in place of the writ's own when
 * given): the store keeps neither the caller's object nor hands out its own, and this is far
 * cheaper than a generic deep copy on the hot path.
 */
function copyWrit(writ: WritRecord, fencing = writ.fencing): WritRecord {
  const ops: PlanOp[] = [];
  for (const op of writ.ops) ops.push({ ...op });
  const copy: WritRecord = {
    ...writ,
    ops,
    labels: [...writ.labels],
    fencing: { ...fencing },
  };
  if (writ.settled) copy.settled = { ...writ.settled };
  return copy;
}

/**
 * Applies one authorization: every op, or none. With `log`, records the final decision in
 * the same step — the draft resolved by what the ops did, or, in shadow mode, an allow that
 * reserves nothing.
 */
export function authorize(view: KvView, req: AuthorizeRequest): AuthorizeResult {
  const draft = req.log?.decision;
  const tx = new Tx(view);
  // A call that waits for approval (shadow mode) reserves nothing, but what its keys hold
  // may answer it, as it would once approved.
  let step: StepOutcome | undefined = req.claims && answerBeforeApproval(tx, req.claims, req.now);
  const reserving = step === undefined && (!draft || draft.outcome === 'allow');
  if (reserving) {
    const conflict = checkPreconditions(tx, req);
    if (conflict) return conflict;
    step = reserve(tx, req);
  }
  if (!req.log || !draft) {
    if (step?.status === 'granted') tx.commit();
    return step ?? { status: 'recorded' };
  }
  // A refusal applies nothing: the decision is recorded in a step of its own.
  const out = step === undefined || step.status === 'granted' ? tx : new Tx(view);
  let final = step ? resolveDecision(draft, step) : draft;
  if (req.shadow && final.outcome !== 'allow' && final.outcome !== 'replay') {
    const writ = copyWrit({ ...req.writ, ops: [], fencing: {} });
    out.put('writ', writ.id, writ);
    // Shadow mode blocks nothing: the call runs, and labels its session as any call does.
    if (writ.labels.length > 0) addPendingLabels(out, writ, req.now);
    final = { ...shadowed(final), writ: publicWrit(writ) };
  }
  out.log(decisionEntry(final, req.log, req.now));
  out.commit();
  return { ...(step ?? { status: 'recorded' }), decision: final };
}

/** Records a decision that reserves nothing, as its own step. */
export function record(view: KvView, log: DecisionLog, now: number): LogEntry {
  const tx = new Tx(view);
  const entry = tx.log(decisionEntry(log.decision, log, now));
  tx.commit();
  return entry;
}

function decisionEntry(decision: Decision, log: DecisionLog, now: number): LogDraft {
  const logged = logDecision(decision, log.action, log.redacted);
  if (log.candidate) logged.candidate = log.candidate;
  // Scrubbed here, where the final reasons are known: a refusal by an invariant names its key.
  const hidden = log.secrets ? scrubDecision(logged, log.secrets) : logged;
  return { at: isoTime(now), kind: 'decision', decision: hidden };
}

const NO_LABELS: readonly string[] = [];

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((label, i) => label === b[i]);
}

function checkPreconditions(tx: Tx, req: AuthorizeRequest): AuthorizeResult | undefined {
  if (req.sessionVersion !== undefined) {
    const { session } = sessionAt(tx.get<StoredSession>('session', req.sessionId), req.now);
    if (
      (session?.version ?? 0) !== req.sessionVersion ||
      !sameLabels(session?.labels ?? NO_LABELS, req.sessionLabels ?? NO_LABELS)
    )
      return { status: 'conflict', on: 'session' };
  }
  if (req.approvalId !== undefined) {
    const approval = approvalAt(tx.get<ApprovalRecord>('approval', req.approvalId), req.now);
    const bound = req.approvalDigest ?? req.writ.actionDigest;
    if (approval?.status !== 'approved' || approval.actionDigest !== bound) {
      return { status: 'conflict', on: 'approval' };
    }
    tx.put('approval', approval.id, { ...approval, status: 'consumed' });
  }
  return undefined;
}

function reserve(tx: Tx, req: AuthorizeRequest): StepOutcome {
  const fencing: Record<string, number> = {};
  for (const op of req.ops) {
    const outcome = apply(tx, op, req.writ, req.now, fencing);
    if (outcome) return outcome;
  }
  const stored = copyWrit(req.writ, fencing);
  const secrets = req.log?.secrets;
  if (secrets) {
    const loggedKeys: Record<string, string> = {};
    for (const op of req.ops) {
      const shown = scrubText(op.key, secrets);
      if (shown !== op.key) loggedKeys[op.key] = shown;
    }
    if (Object.keys(loggedKeys).length > 0) stored.loggedKeys = loggedKeys;
  }
  tx.put('writ', req.writ.id, stored);
  if (req.writ.labels.length > 0) addPendingLabels(tx, req.writ, req.now);
  return { status: 'granted', fencing };
}

/**
 * Labels a writ gives its session if its call ran. They wait on the session record until the
 * writ is settled — and from its expiry they are on the session whether or not it ever is:
 * a call nobody settled may have run and shown the agent what it read (fail closed).
 */
interface PendingLabels {
  writ: string;
  labels: string[];
  expiresAt: number;
}

/** A session as stored: its labels, and those of its unsettled writs, pending. */
interface StoredSession extends SessionRecord {
  pending?: PendingLabels[];
}

/**
 * A session as of `now`, and the labels still pending: those of writs that expired unsettled
 * are on it. Its version is the stored one — it changes only with what is written — so the
 * step that checks what a decision read compares the labels too (`checkPreconditions`).
 */
function sessionAt(
  stored: StoredSession | undefined,
  now: number,
): { session: SessionRecord | undefined; pending: PendingLabels[] } {
  if (!stored) return { session: undefined, pending: [] };
  const { pending = [], ...session } = stored;
  const open: PendingLabels[] = [];
  let labels: Set<string> | undefined;
  for (const entry of pending) {
    if (entry.expiresAt > now) open.push(entry);
    else {
      labels ??= new Set(session.labels);
      for (const label of entry.labels) labels.add(label);
    }
  }
  if (labels) session.labels = [...labels].sort();
  return { session, pending: open };
}

/**
 * Writes a session with its pending labels (none: no `pending` field). A session nobody
 * opened that holds nothing — no labels, none pending, version 0 — reads as no session at
 * all, so it is removed rather than kept for ever: a cancelled labelled call in a session
 * never opened leaves no row behind.
 */
function putStoredSession(tx: Tx, session: SessionRecord, pending: PendingLabels[]) {
  if (
    !session.opened &&
    session.labels.length === 0 &&
    pending.length === 0 &&
    session.version === 0
  )
    tx.delete('session', session.id);
  else tx.put('session', session.id, pending.length > 0 ? { ...session, pending } : session);
}

function addPendingLabels(tx: Tx, writ: WritRecord, now: number) {
  const { session, pending } = sessionAt(tx.get<StoredSession>('session', writ.sessionId), now);
  putStoredSession(
    tx,
    session ?? { id: writ.sessionId, attrs: {}, opened: false, labels: [], version: 0 },
    [...pending, { writ: writ.id, labels: writ.labels, expiresAt: writ.expiresAt }],
  );
}

function apply(
  tx: Tx,
  op: PlanOp,
  writ: WritRecord,
  now: number,
  fencing: Record<string, number>,
): StepOutcome | undefined {
  switch (op.kind) {
    case 'nonce':
      return claimNonce(tx, op, now);
    case 'idempotency':
      return claimIdempotency(tx, op, writ, now);
    case 'budget':
      return holdBudget(tx, op, writ, now);
    case 'rate':
      return takeToken(tx, op, now);
    case 'concurrency':
      return acquireLease(tx, op, writ, now, fencing);
  }
}

const refused = (r: Reason): StepOutcome => ({ status: 'refused', reason: r });

function claimNonce(tx: Tx, op: NonceOp, now: number): StepOutcome | undefined {
  const row = tx.get<NonceRow>('nonce', op.key);
  if (row && row.expiresAt > now)
    return refused(reason('NONCE_REPLAYED', { rule: op.invariant, key: op.key }));
  tx.put('nonce', op.key, { expiresAt: op.expiresAt } satisfies NonceRow);
  return undefined;
}

/**
 * What the claim the store holds on `op.key` answers at `now`: the key is held for another
 * action (`IDEMPOTENCY_MISMATCH`), this action succeeded (a replay), or its call is in flight
 * or in doubt; `undefined` when the key is free to claim.
 */
function heldClaim(tx: Tx, op: IdempotencyOp, now: number): StepOutcome | undefined {
  const row = tx.get<IdemRow>('idem', op.key);
  if (!row || row.expiresAt <= now) return undefined;
  const detail = { rule: op.invariant, key: op.key };
  if (row.digest !== op.digest) return refused(reason('IDEMPOTENCY_MISMATCH', detail));
  if (row.status === 'succeeded')
    return { status: 'replay', result: row.result, writId: row.writId };
  if (row.writExpiresAt > now)
    return refused(
      reason('IDEMPOTENCY_IN_FLIGHT', { ...detail, resetAt: isoTime(row.writExpiresAt) }),
    );
  if (row.onExpiry === 'in_doubt') return refused(reason('IDEMPOTENCY_IN_DOUBT', detail));
  return undefined;
}

/**
 * What the claims of a call that waits for approval answer before anyone is asked, checked
 * in order as `authorize` would check them: a key held for another action refuses it, and
 * an earlier success of this action replays — approved, it could do nothing else. A key in
 * flight or in doubt for this action ends the check unanswered: that call may still fail or
 * be settled, and `authorize` answers for the key once this one is approved.
 */
function answerBeforeApproval(
  tx: Tx,
  claims: readonly IdempotencyOp[],
  now: number,
): Exclude<StepOutcome, { status: 'granted' }> | undefined {
  for (const claim of claims) {
    const held = heldClaim(tx, claim, now);
    if (held === undefined) continue;
    if (held.status === 'replay') return held;
    if (held.status === 'refused' && held.reason.code === 'IDEMPOTENCY_MISMATCH') return held;
    return undefined;
  }
  return undefined;
}

function claimIdempotency(
  tx: Tx,
  op: IdempotencyOp,
  writ: WritRecord,
  now: number,
): StepOutcome | undefined {
  const held = heldClaim(tx, op, now);
  if (held) return held;
  tx.put('idem', op.key, {
    digest: op.digest,
    status: 'in_flight',
    writId: writ.id,
    writExpiresAt: writ.expiresAt,
    onExpiry: op.onExpiry,
    result: null,
    // Never before the writ's own expiry: a claim forgotten while its call may still be
    // running would let a retry run it a second time.
    expiresAt: Math.max(now + op.ttlMs, writ.expiresAt),
  } satisfies IdemRow);
  return undefined;
}

function holdBudget(tx: Tx, op: BudgetOp, writ: WritRecord, now: number): StepOutcome | undefined {
  const stored = tx.get<BudgetRow>('budget', op.key);
  const row = stored
    ? budgetAt(stored, now)
    : {
        key: op.key,
        limit: op.limit,
        windowEnd: op.windowEnd,
        spent: 0,
        holds: [],
        expiredCaptures: [],
      };
  // The policy's limit applies, whatever the row was written with.
  const holding = held(row);
  const remaining = money(op.limit - row.spent - holding, op.limit, row.spent, holding);
  // Written so that a NaN (a record damaged beyond what its shape check sees) refuses.
  if (!(op.amount <= remaining)) {
    return refused(
      reason('BUDGET_EXHAUSTED', {
        rule: op.invariant,
        key: op.key,
        remaining: Math.max(0, remaining),
        ...(row.windowEnd !== null && { resetAt: isoTime(row.windowEnd) }),
      }),
    );
  }
  const hold: Hold = {
    writ: writ.id,
    amount: op.amount,
    expiresAt: Math.min(writ.expiresAt, now + op.holdTtlMs),
    onExpiry: op.onExpiry,
  };
  const holds = [...row.holds, hold];
  tx.put('budget', op.key, budgetWith(row, op.limit, row.spent, holds, row.expiredCaptures));
  return undefined;
}

/**
 * How far a bucket's theoretical arrival time is ahead of `now`, in units of 1/`per` ms
 * (never below 0): exact integers, as long as `now` is whole milliseconds. A row kept for
 * another rate, or in the fractional form of earlier versions, is rounded up — later, so
 * stricter.
 */
function rateAhead(row: RateRow | undefined, per: number, now: number): number {
  if (!row) return 0;
  const frac = row.frac === undefined ? (row.tat % 1) * per : (row.frac * per) / (row.per ?? per);
  return Math.max(0, (Math.floor(row.tat) - now) * per + Math.ceil(frac));
}

/**
 * GCRA in integers: with the rate's interval `periodMs / count` ms as `periodMs` units of
 * 1/`count` ms, a call is allowed while the arrival time it leads to is at most `burst`
 * intervals ahead of now.
 */
function takeToken(tx: Tx, op: RateOp, now: number): StepOutcome | undefined {
  const per = op.count;
  const next = rateAhead(tx.get<RateRow>('rate', op.key), per, now) + op.periodMs;
  const tolerance = op.burst * op.periodMs;
  // Written so that a NaN refuses, as in holdBudget.
  if (!(next <= tolerance)) {
    return refused(
      reason('RATE_LIMITED', {
        rule: op.invariant,
        key: op.key,
        remaining: 0,
        // The first whole millisecond at which the same call fits.
        resetAt: isoTime(now + Math.ceil((next - tolerance) / per)),
      }),
    );
  }
  const whole = Math.floor(next / per);
  tx.put('rate', op.key, { tat: now + whole, frac: next - whole * per, per } satisfies RateRow);
  return undefined;
}

function acquireLease(
  tx: Tx,
  op: ConcurrencyOp,
  writ: WritRecord,
  now: number,
  fencing: Record<string, number>,
): StepOutcome | undefined {
  const stored = tx.get<LeaseRow>('lease', op.key);
  const row = stored ? leaseRow(stored) : { fence: 0, leases: [] };
  const leases = row.leases.filter((lease) => lease.expiresAt > now);
  if (leases.length >= op.max) {
    const freeAt = Math.min(...leases.map((l) => l.expiresAt));
    return refused(
      reason('CONCURRENCY_LIMIT', {
        rule: op.invariant,
        key: op.key,
        remaining: 0,
        resetAt: isoTime(freeAt),
      }),
    );
  }
  const token = row.fence + 1;
  fencing[op.key] = token;
  const expiresAt = Math.min(writ.expiresAt, now + op.leaseMs);
  leases.push({ writ: writ.id, expiresAt, token });
  tx.put('lease', op.key, { fence: token, leases } satisfies LeaseRow);
  return undefined;
}

/**
 * What is kept of a writ once settled: enough to refuse a second settle. Its ops, labels and
 * digests served the settle and are not read again, and a writ is kept as long as the store
 * keeps it — most of what a decision leaves behind. (Stores written before this kept the
 * whole record with `settled` added; `isSettled` reads both.)
 */
interface SettledWrit {
  id: string;
  /** The writ's own expiry: a sweep removes the record after it. */
  expiresAt: number;
  settled: NonNullable<WritRecord['settled']>;
}

function isSettled(writ: WritRecord | SettledWrit): writ is SettledWrit {
  return writ.settled !== undefined;
}

/** Settles a writ once: captures or voids holds, releases leases, stores the result, labels. */
export function settle(view: KvView, req: SettleRequest): SettleResult {
  const tx = new Tx(view);
  const writ = tx.get<WritRecord | SettledWrit>('writ', req.writId);
  if (!writ) throw new WritError('WRIT_INVALID', `unknown writ ${req.writId}`);
  if (isSettled(writ))
    throw new WritError(
      'WRIT_INVALID',
      `writ ${req.writId} was already settled (${writ.settled.status})`,
    );
  // Checked here too, for callers of the store itself: an unbounded cost can make a budget's
  // spent infinite, which JSON stores as null — an empty budget.
  if (req.cost !== undefined && !isAmount(req.cost))
    throw new WritError(
      'USAGE',
      `settle cost must be a number from 0 to ${MAX_AMOUNT}, not ${req.cost}`,
    );
  const succeeded = req.status === 'succeeded';
  const overage: Record<string, number> = {};
  const uncounted: string[] = [];

  for (const op of writ.ops) {
    if (op.kind === 'budget') {
      const stored = tx.get<BudgetRow>('budget', op.key);
      if (!stored) continue;
      const row = budgetAt(stored, req.now);
      // A hold captured at its expiry more than LATE_SETTLE_MS ago is final: the settle
      // changes nothing on that budget — but for removing the capture's entry, which rows
      // written before kept without `until`.
      if (op.onExpiry === 'capture' && req.now >= captureFinalAt(writ, op)) {
        uncounted.push(op.key);
        const captures = without(row.expiredCaptures, writ.id);
        if (captures !== row.expiredCaptures)
          tx.put('budget', op.key, budgetWith(row, row.limit, row.spent, row.holds, captures));
        continue;
      }
      const hold = entryOf(row.holds, writ.id);
      const capturedAtExpiry = entryOf(row.expiredCaptures, writ.id)?.amount ?? 0;
      const actual = req.cost ?? (succeeded ? op.amount : 0);
      // A cost reported with a failure is spend that happened (tokens burnt before the
      // error): captured like any actual cost, and beyond the hold it is overage too.
      if (actual > op.amount) overage[op.key] = money(actual - op.amount, actual, op.amount);
      const spent = money(row.spent + actual - capturedAtExpiry, row.spent, actual);
      if (hold || capturedAtExpiry > 0 || actual > 0)
        tx.put(
          'budget',
          op.key,
          budgetWith(
            row,
            row.limit,
            spent,
            without(row.holds, writ.id),
            without(row.expiredCaptures, writ.id),
          ),
        );
    } else if (op.kind === 'concurrency') {
      const stored = tx.get<LeaseRow>('lease', op.key);
      const row = stored && leaseRow(stored);
      if (row?.leases.some((lease) => lease.writ === writ.id)) {
        tx.put('lease', op.key, {
          ...row,
          leases: without(row.leases, writ.id),
        } satisfies LeaseRow);
      }
    } else if (op.kind === 'idempotency') {
      const row = tx.get<IdemRow>('idem', op.key);
      if (row?.writId !== writ.id) continue;
      if (succeeded)
        tx.put('idem', op.key, {
          ...row,
          status: 'succeeded',
          result: req.result ?? null,
        } satisfies IdemRow);
      else tx.delete('idem', op.key);
    }
  }

  let labelsAdded: string[] = [];
  // Labels mark what the agent may have seen: a failed call ran too, and its error can carry
  // what it read (fail closed); a cancelled one never ran — unless its writ expired first,
  // which put its labels on the session then (`sessionAt`), where they stay.
  if (writ.labels.length > 0) {
    const stored = tx.get<StoredSession>('session', writ.sessionId);
    const { session, pending } = sessionAt(stored, req.now);
    const open = without(pending, writ.id);
    const labels = new Set(session?.labels ?? []);
    if (req.status !== 'cancelled') labelsAdded = writ.labels.filter((l) => !labels.has(l));
    if (labelsAdded.length > 0 || open.length !== (stored?.pending?.length ?? 0)) {
      putStoredSession(
        tx,
        {
          id: writ.sessionId,
          attrs: session?.attrs ?? {},
          opened: session?.opened ?? false,
          labels: [...labels, ...labelsAdded].sort(),
          version: (session?.version ?? 0) + (labelsAdded.length > 0 ? 1 : 0),
        },
        open,
      );
    }
  }
  const how: NonNullable<WritRecord['settled']> = { at: req.now, status: req.status };
  if (req.cost !== undefined) how.cost = req.cost;
  tx.put('writ', writ.id, {
    id: writ.id,
    expiresAt: writ.expiresAt,
    settled: how,
  } satisfies SettledWrit);
  if (req.log !== false) {
    // Literals rather than spreads of conditions, which V8 builds slowly; fields in log order.
    const { id: writId, decisionId } = writ;
    const shown = writ.loggedKeys ? loggedOverage(overage, writ) : overage;
    const settlement: LoggedSettlement =
      req.cost === undefined
        ? { writId, decisionId, status: req.status, overage: shown, labelsAdded }
        : { writId, decisionId, status: req.status, cost: req.cost, overage: shown, labelsAdded };
    if (req.result !== undefined) settlement.resultDigest = digestJson(req.result);
    if (uncounted.length > 0) settlement.uncounted = uncounted.map((key) => loggedKey(writ, key));
    tx.log({ at: isoTime(req.now), kind: 'settlement', settlement });
  }
  tx.commit();
  // The whole writ, settled, for the caller. No copy of it: the store keeps only the short
  // record written above, and the full one it read is no longer reachable from the store
  // (nor from the caller that authorized: the store kept a copy of its writ), so what it
  // holds is the caller's alone.
  const result: SettleResult = { writ: { ...writ, settled: { ...how } }, labelsAdded, overage };
  if (uncounted.length > 0) result.uncounted = uncounted;
  return result;
}

/** A key of the writ's ops as its log entries name it (`WritRecord.loggedKeys`). */
function loggedKey(writ: WritRecord, key: string): string {
  return writ.loggedKeys?.[key] ?? key;
}

/** Overage by budget key as the log names the keys. */
function loggedOverage(overage: Record<string, number>, writ: WritRecord): Record<string, number> {
  const shown: Record<string, number> = {};
  for (const [key, amount] of Object.entries(overage)) shown[loggedKey(writ, key)] = amount;
  return shown;
}

/** Opens a session or replaces its attributes, keeping its labels. */
export function putSession(
  view: KvView,
  id: string,
  attrs: SessionRecord['attrs'],
  now: number,
  logged: LoggedAttrs = { attrs, redacted: [] },
): SessionRecord {
  const tx = new Tx(view);
  const { session: existing, pending } = sessionAt(tx.get<StoredSession>('session', id), now);
  const record: SessionRecord = {
    id,
    attrs,
    opened: true,
    labels: existing?.labels ?? [],
    version: (existing?.version ?? 0) + 1,
  };
  putStoredSession(tx, record, pending);
  tx.log({
    at: isoTime(now),
    kind: 'session',
    session: {
      id,
      attrs: logged.attrs,
      version: record.version,
      ...(logged.redacted.length > 0 && { redacted: logged.redacted }),
    },
  });
  tx.commit();
  return record;
}

/** A session as of `now`, with the labels of writs that expired unsettled. */
export function getSession(view: KvView, id: string, now: number): SessionRecord | undefined {
  return sessionAt(view.get('session', id) as StoredSession | undefined, now).session;
}

export function listSessions(view: KvView, now: number): SessionRecord[] {
  return (view.list('session') as StoredSession[])
    .map((stored) => sessionAt(stored, now).session!)
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** An approval as of `now`: open requests and unused grants past their expiry are expired. */
function approvalAt(record: ApprovalRecord | undefined, now: number): ApprovalRecord | undefined {
  if (!record) return undefined;
  const open = record.status === 'pending' || record.status === 'approved';
  return open && record.expiresAt <= now ? { ...record, status: 'expired' } : record;
}

const indexKey = (policyHash: string, digest: string) => `${policyHash}:${digest}`;

/** Finds the latest approval for an action under a policy. */
export function findApproval(
  view: KvView,
  digest: string,
  policyHash: string,
  now: number,
): ApprovalRecord | undefined {
  const id = view.get('approval-index', indexKey(policyHash, digest)) as string | undefined;
  return id === undefined
    ? undefined
    : approvalAt(view.get('approval', id) as ApprovalRecord | undefined, now);
}

/**
 * Answers a call that waits for approval from its idempotency claims when they already
 * decide it (a mismatch refuses, a success replays: no approval is recorded); else returns
 * the open approval for the action, or records `step.approval` as a new pending one. With
 * `log`, records the decision in the same step.
 */
export function requestApproval(view: KvView, step: ApprovalStep): ApprovalStepResult {
  const { approval: request, claims, log } = step;
  const now = request.createdAt;
  const tx = new Tx(view);
  const answered = claims && answerBeforeApproval(tx, claims, now);
  if (answered) {
    if (log) {
      tx.log(decisionEntry(resolveDecision(log.decision, answered), log, now));
      tx.commit();
    }
    return answered;
  }
  const existing = findApproval(view, request.actionDigest, request.policyHash, now);
  const open =
    existing && (existing.status === 'pending' || existing.status === 'approved')
      ? existing
      : undefined;
  const approval = open ?? request;
  if (!open) {
    tx.put('approval', request.id, request);
    tx.put('approval-index', indexKey(request.policyHash, request.actionDigest), request.id);
  }
  if (log) {
    const decision: Decision = {
      ...log.decision,
      approval: { id: approval.id, expiresAt: isoTime(approval.expiresAt) },
    };
    tx.log(decisionEntry(decision, log, now));
  }
  tx.commit();
  return { status: 'requested', approval };
}

export function getApproval(view: KvView, id: string, now: number): ApprovalRecord | undefined {
  return approvalAt(view.get('approval', id) as ApprovalRecord | undefined, now);
}

export function listApprovals(
  view: KvView,
  now: number,
  status?: ApprovalStatus,
): ApprovalRecord[] {
  return (view.list('approval') as ApprovalRecord[])
    .map((r) => approvalAt(r, now)!)
    .filter((r) => status === undefined || r.status === status)
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** Approves or denies a pending approval; the approver may not be the principal who asked. */
export function decideApproval(
  view: KvView,
  id: string,
  decision: ApprovalDecision,
  now: number,
): ApprovalRecord {
  checkApproverId(decision.approver);
  const record = getApproval(view, id, now);
  if (!record) throw new WritError('APPROVAL_INVALID', `unknown approval ${id}`);
  if (record.status !== 'pending')
    throw new WritError('APPROVAL_INVALID', `approval ${id} is ${record.status}, not pending`);
  if (sameParty(decision.approver, record.requestedBy)) {
    throw new WritError(
      'APPROVAL_INVALID',
      `${decision.approver} asked for approval ${id} and cannot decide it`,
    );
  }
  const decided: ApprovalRecord = {
    ...record,
    status: decision.approve ? 'approved' : 'denied',
    decidedBy: decision.approver,
    decidedAt: now,
    ...(decision.note !== undefined && { note: decision.note }),
  };
  const tx = new Tx(view);
  tx.put('approval', id, decided);
  tx.log({
    at: isoTime(now),
    kind: 'approval',
    approval: {
      id,
      status: decision.approve ? 'approved' : 'denied',
      by: decision.approver,
      ...(decision.note !== undefined && { note: decision.note }),
    },
  });
  tx.commit();
  return decided;
}

/** The writs not settled yet, as of `now`, oldest first, with the claims they hold. */
export function listOpenWrits(view: KvView, now: number): OpenWrit[] {
  const open: OpenWrit[] = [];
  for (const writ of view.list('writ') as (WritRecord | SettledWrit)[]) {
    if (isSettled(writ)) continue;
    const expired = writ.expiresAt <= now;
    const claims: OpenWrit['claims'] = [];
    for (const op of writ.ops) {
      if (op.kind !== 'idempotency') continue;
      const row = view.get('idem', op.key) as IdemRow | undefined;
      if (row?.writId !== writ.id || row.status !== 'in_flight' || row.expiresAt <= now) continue;
      if (!expired) claims.push({ key: op.key, status: 'in_flight' });
      else if (row.onExpiry === 'in_doubt') claims.push({ key: op.key, status: 'in_doubt' });
    }
    open.push({ writ, expired, claims });
  }
  return open.sort(
    (a, b) => a.writ.issuedAt - b.writ.issuedAt || a.writ.id.localeCompare(b.writ.id),
  );
}

export function listBudgets(view: KvView, now: number): BudgetState[] {
  return (view.list('budget') as BudgetRow[])
    .map((stored) => {
      const row = budgetAt(stored, now);
      const h = held(row);
      return {
        key: row.key,
        limit: row.limit,
        spent: row.spent,
        held: money(h),
        remaining: money(row.limit - row.spent - h, row.limit, row.spent, h),
        windowEnd: row.windowEnd,
      };
    })
    .sort((a, b) => a.key.localeCompare(b.key));
}

/** Keeps a policy's sources under its hash, once. */
export function putPolicy(view: KvView, hash: string, sources: PolicySourceText[]) {
  if (view.get('policy', hash) === undefined) view.put('policy', hash, sources);
}

/**
 * When a record's lifetime is over, for the kinds a sweep removes: past that point the ledger
 * already reads it as if it were absent (an expired claim or nonce, a bucket that refilled),
 * or it only answers a second settle of a writ that has expired anyway.
 */
const LIFETIME_OVER: Partial<Record<Kind, (record: never, now: number) => boolean>> = {
  idem: (row: IdemRow, now) => row.expiresAt <= now,
  nonce: (row: NonceRow, now) => row.expiresAt <= now,
  rate: (row: RateRow, now) => rateAhead(row, 1, now) === 0,
  writ: (writ: WritRecord | SettledWrit, now) =>
    isSettled(writ) ? writ.expiresAt <= now : unsettledWritOver(writ, now),
};

/**
 * An unsettled writ is kept while a late settle matters: to correct a capture made at its
 * expiry (for `LATE_SETTLE_MS`), or resolve an idempotency claim it left `in_doubt` (until
 * the claim's TTL). Its labels went on its session at its expiry. What a settle later still
 * could do — record the cost of a call whose hold was released — is given up: an agent that
 * died without settling must not leave its writ behind for ever.
 */
function unsettledWritOver(writ: WritRecord, now: number): boolean {
  let end = writ.expiresAt + LATE_SETTLE_MS;
  for (const op of writ.ops)
    if (op.kind === 'idempotency') end = Math.max(end, writ.issuedAt + op.ttlMs);
  return end <= now;
}

/** The kinds of records a sweep looks at. */
export const SWEPT_KINDS = Object.keys(LIFETIME_OVER) as Kind[];

/**
 * How long after a record's lifetime ended a sweep leaves it in place. A decision reads its
 * `now` before it waits for the store (another process may hold the lock for seconds), so
 * a sweep at a later `now` must not remove what that decision still reads as live — a
 * claim that expires between the two would let the call run a second time.
 */
export const SWEEP_GRACE_MS = 60_000;

/**
 * Removes the records among `keys` of `kind` whose lifetime ended more than
 * `SWEEP_GRACE_MS` before `now`; returns how many.
 */
export function sweep(view: KvView, kind: Kind, keys: readonly string[], now: number): number {
  const over = LIFETIME_OVER[kind] as ((record: unknown, now: number) => boolean) | undefined;
  if (!over) return 0;
  const before = now - SWEEP_GRACE_MS;
  const tx = new Tx(view);
  let removed = 0;
  for (const key of keys) {
    const record = tx.get<unknown>(kind, key);
    if (record !== undefined && over(record, before)) {
      tx.delete(kind, key);
      removed++;
    }
  }
  tx.commit();
  return removed;
}
