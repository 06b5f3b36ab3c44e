/**
 * A plan is what evaluation asks the store to do for one allowed action: every
 * reservation, applied all together or not at all. Plans are plain data so every store —
 * in-process, SQL or Lua — applies the same thing.
 */

/**
 * The largest amount writ counts — a cost, a limit, a settled actual cost. Far above any
 * real budget, and far enough below the largest double that sums of amounts stay finite
 * (an infinite `spent` would be written to JSON as `null`, an empty budget).
 */
export const MAX_AMOUNT = 1e15;

/** True for an amount writ counts: a number from 0 to {@link MAX_AMOUNT}. */
export function isAmount(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= MAX_AMOUNT;
}

/** Hold `amount` on a budget key until settle captures or voids it. */
export interface BudgetOp {
  kind: 'budget';
  /** `budgets.daily-spend` */
  invariant: string;
  /** `daily-spend:tenant-a:2026-11-23` */
  key: string;
  amount: number;
  limit: number;
  /** End of the fixed window (epoch ms), or `null` for a lifetime budget. */
  windowEnd: number | null;
  holdTtlMs: number;
  onExpiry: 'release' | 'capture';
}

/** Take one token from a bucket refilled at `count` per `periodMs`, holding at most `burst`. */
export interface RateOp {
  kind: 'rate';
  invariant: string;
  key: string;
  count: number;
  periodMs: number;
  burst: number;
}

/** Acquire one of `max` slots on a key, leased for `leaseMs`, with a fencing token. */
export interface ConcurrencyOp {
  kind: 'concurrency';
  invariant: string;
  key: string;
  max: number;
  leaseMs: number;
}

/** Claim an idempotency key for this action digest. */
export interface IdempotencyOp {
  kind: 'idempotency';
  invariant: string;
  key: string;
  digest: string;
  ttlMs: number;
  onExpiry: 'in_doubt' | 'retry';
}

/** Claim a nonce once; remembered until `expiresAt`. */
export interface NonceOp {
  kind: 'nonce';
  invariant: 'replay';
  key: string;
  expiresAt: number;
}

/** One reservation of a plan. */
export type PlanOp = BudgetOp | RateOp | ConcurrencyOp | IdempotencyOp | NonceOp;
