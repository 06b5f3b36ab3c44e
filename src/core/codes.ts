/**
 * The one table of reason codes. A decision names *why* with these stable identifiers;
 * wording lives beside them so it can change without breaking callers that match on codes.
 */
export const REASONS = {
  ALLOWED_BY_RULE: 'an allow rule matched',
  NO_MATCHING_RULE: 'no rule allows this tool call',
  DENIED_BY_RULE: 'a forbid rule matched',
  CONDITION_ERROR: 'a condition could not be evaluated',
  BUDGET_EXHAUSTED: 'the budget has too little left for this cost',
  RATE_LIMITED: 'the rate limit is reached',
  CONCURRENCY_LIMIT: 'too many calls hold this concurrency key',
  IDEMPOTENCY_IN_FLIGHT: 'an earlier call with this idempotency key is still running',
  IDEMPOTENCY_MISMATCH: 'this idempotency key was used for a different action',
  IDEMPOTENCY_IN_DOUBT: 'an earlier call with this idempotency key expired unsettled',
  IDEMPOTENT_REPLAY: 'an earlier identical call succeeded; its result is returned',
  NONCE_REPLAYED: 'this nonce was already used',
  NONCE_REQUIRED: 'the policy requires a nonce',
  REQUEST_EXPIRED: 'the request was issued outside the accepted time window',
  BAD_SIGNATURE: 'the request signature is missing or does not verify',
  APPROVAL_REQUIRED: 'a person must approve this call',
  APPROVAL_GRANTED: 'a person approved this exact call',
  APPROVAL_DENIED: 'a person denied this call',
  APPROVAL_EXPIRED: 'the approval expired',
  STORE_UNAVAILABLE: 'the state store failed; failing closed',
  INVALID_REQUEST: 'the request is malformed',
  SHADOW_MODE: 'the policy is in shadow mode; its decision is recorded, not enforced',
} as const;

/** A stable reason identifier carried in every decision. */
export type ReasonCode = keyof typeof REASONS;

/**
 * Codes of errors raised for misuse and infrastructure failure (decisions never throw).
 * They are separate from reason codes: an error is about the caller or the system,
 * a reason is about the action.
 */
export const ERRORS = {
  POLICY_INVALID: 'the policy is not valid',
  REQUEST_INVALID: 'the request is not valid',
  WRIT_INVALID: 'the writ is unknown, forged or already settled',
  APPROVAL_INVALID: 'the approval cannot be changed',
  STORE_FAILURE: 'the store failed',
  NOT_ALLOWED: 'the action was not allowed',
  USAGE: 'the API was used incorrectly',
} as const;

/** A stable identifier of a {@link WritError}. */
export type ErrorCode = keyof typeof ERRORS;
