import { REASONS, type ReasonCode } from './codes.js';
import type { Json, JsonObject } from './json.js';

/** What writ decided about an action. */
export type Outcome = 'allow' | 'deny' | 'approval_required' | 'replay';

/** One reason for a decision: a stable code, the rule or invariant behind it, and details. */
export interface Reason {
  code: ReasonCode;
  message: string;
  /** The rule (`tools.send_money[1]`, a rule's `name`) or invariant (`budgets.daily-spend`). */
  rule?: string;
  /** The invariant key that refused, e.g. `daily-spend:tenant-a:2026-11-23`. */
  key?: string;
  /** What is left of a budget or rate limit, where it applies. */
  remaining?: number;
  /** When a limit resets or a retry may succeed, RFC 3339. */
  resetAt?: string;
  /** Why a condition failed, for `CONDITION_ERROR`. */
  error?: string;
}

/** Builds a reason with the standard message for `code` unless one is given. */
export function reason(
  code: ReasonCode,
  fields: Omit<Reason, 'code' | 'message'> & { message?: string } = {},
): Reason {
  const { message, ...rest } = fields;
  return { code, message: message ?? REASONS[code], ...rest };
}

/** A pending approval returned with `approval_required`. */
export interface ApprovalRequest {
  id: string;
  expiresAt: string;
}

/** The grant returned with `allow`: single use, settled once. */
export interface Writ {
  id: string;
  actionDigest: string;
  expiresAt: string;
  /** Fencing tokens per concurrency key, to pass downstream. */
  fencing?: Record<string, number>;
  reservations: Json[];
}

/** The result of authorizing one action. */
export interface Decision {
  id: string;
  outcome: Outcome;
  reasons: Reason[];
  policyHash: string;
  /** RFC 3339 time of the decision, from the injected clock. */
  at: string;
  actionDigest: string;
  writ?: Writ;
  approval?: ApprovalRequest;
  /** With `replay`: the stored result of the earlier identical call. */
  result?: Json;
  /** In shadow mode: what the policy would have decided; `outcome` is then `allow`. */
  shadow?: { outcome: Outcome; reasons: Reason[] };
}

const DAY_MS = 86_400_000;
/** The last time a `Date` can hold (ECMAScript's ±8.64e15 ms). */
export const MAX_TIME = 8.64e15;
/** `00`…`99` and `000`…`999`, for the time of day. */
const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** The day `isoTime` formatted last, as `YYYY-MM-DDT`: most times of a run fall on one day. */
let cachedDayStart = Number.NaN;
let cachedDayPrefix = '';

/**
 * Epoch milliseconds as RFC 3339 UTC text, exactly as `new Date(ms).toISOString()` writes
 * it. It runs several times per decision: the date comes from `toISOString` once per day,
 * the time of day is plain arithmetic. Anything but a whole ms ≥ 0 goes to `toISOString`.
 */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > MAX_TIME) return new Date(ms).toISOString();
  const time = ms % DAY_MS;
  const dayStart = ms - time;
  if (dayStart !== cachedDayStart) {
    // `YYYY-MM-DDT` (or `+YYYYYY-MM-DDT`): the text before the 13 characters `HH:mm:ss.sssZ`.
    cachedDayPrefix = new Date(dayStart).toISOString().slice(0, -13);
    cachedDayStart = dayStart;
  }
  const seconds = Math.floor(time / 1000);
  const minutes = Math.floor(seconds / 60);
  const hh = TWO_DIGITS[Math.floor(minutes / 60)];
  const mm = TWO_DIGITS[minutes % 60];
  const ss = TWO_DIGITS[seconds % 60];
  return `${cachedDayPrefix}${hh}:${mm}:${ss}.${THREE_DIGITS[time % 1000]}Z`;
}

/** What an atomic store step did with a decision's reservations. */
export type StepOutcome =
  | { status: 'granted'; fencing: Record<string, number> }
  /** Nothing applied: `reason` names the op that refused, its key and what is left. */
  | { status: 'refused'; reason: Reason }
  /** An idempotency claim found an earlier success: nothing applied, its result returned. */
  | { status: 'replay'; result: Json; writId: string };

/**
 * The final decision, given the decision as it would be if every reservation were granted
 * and what the store step did. One function, used by the engine and inside stores, so the
 * decision returned and the decision logged are the same.
 */
export function resolveDecision(granted: Decision, step: StepOutcome): Decision {
  // Nothing to change for a grant without fencing tokens, the common case: it copies nothing.
  if (step.status === 'granted' && (!granted.writ || Object.keys(step.fencing).length === 0))
    return granted;
  const { writ, ...rest } = granted;
  switch (step.status) {
    case 'granted':
      return { ...rest, writ: { ...writ!, fencing: step.fencing } };
    case 'refused':
      return { ...rest, outcome: 'deny', reasons: [step.reason, ...granted.reasons] };
    case 'replay':
      return {
        ...rest,
        outcome: 'replay',
        reasons: [reason('IDEMPOTENT_REPLAY', { message: `replaying writ ${step.writId}` })],
        result: step.result,
      };
  }
}

/** In shadow mode nothing is blocked: the decision allows and carries what would have happened. */
export function shadowed(decision: Decision): Decision {
  if (decision.outcome === 'allow' || decision.outcome === 'replay') return decision;
  const { approval: _none, ...rest } = decision;
  return {
    ...rest,
    outcome: 'allow',
    reasons: [reason('SHADOW_MODE')],
    shadow: { outcome: decision.outcome, reasons: decision.reasons },
  };
}

/** The writ a caller gets: what it holds, without the store's bookkeeping. */
export function publicWrit(record: {
  id: string;
  actionDigest: string;
  expiresAt: number;
  ops: readonly { kind: string; key: string; amount?: number }[];
  fencing: Record<string, number>;
}): Writ {
  const writ: Writ = {
    id: record.id,
    actionDigest: record.actionDigest,
    expiresAt: isoTime(record.expiresAt),
    reservations: record.ops.map((op) => {
      const reservation: JsonObject = { kind: op.kind, key: op.key };
      if (op.kind === 'budget' && op.amount !== undefined) reservation.amount = op.amount;
      return reservation;
    }),
  };
  if (Object.keys(record.fencing).length > 0) writ.fencing = record.fencing;
  return writ;
}
