import { REASONS, type ReasonCode } from './codes.js';
import type { Json } from './json.js';

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

/** Epoch milliseconds as RFC 3339 UTC text. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
