import { z } from 'zod';
import { MAX_AMOUNT } from '../core/plan.js';

/**
 * The policy format, defined once. The loader validates with it, and the JSON Schema
 * that editors use (`schema/policy.schema.json`) is generated from it.
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Tool names and globs over them: ASCII, as {@link TOOL_NAME} plus `*`, `?`, `[…]`. */
const TOOL_PATTERN = /^[A-Za-z0-9_*?[\]][A-Za-z0-9_.:/*?[\]!-]{0,127}$/;
const DURATION = /^\d+(ms|s|m|h|d)$/;
const RATE = /^\d+\/\d*(ms|s|m|h|d)$/;

const name = z
  .string()
  .regex(NAME, { error: 'expected a name of letters, digits, _ . - (at most 64)' });
const duration = z
  .string({ error: 'expected a duration such as 30s, 15m, 24h or 1d' })
  .regex(DURATION, { error: 'expected a duration such as 30s, 15m, 24h or 1d' });
const expression = z
  .string({ error: 'expected a CEL expression' })
  .min(1, { error: 'expected a CEL expression' });
const condition = z
  .union([z.string().min(1), z.boolean()], {
    error: 'expected a CEL condition (text) or true/false',
  })
  .describe(
    'A CEL condition over tool, args, principal, session, request, estimate and now; or true/false.',
  );

export const RuleSchema = z
  .strictObject({
    name: name.optional().describe('Names the rule in decisions; defaults to its position.'),
    allow: condition.optional().describe('Allows the call when true (unless a forbid matches).'),
    forbid: condition.optional().describe('Denies the call when true; an error counts as true.'),
    require_approval: condition
      .optional()
      .describe('Requires a person to approve this exact call when true.'),
    expires: duration
      .optional()
      .describe('How long an approval request stays open (require_approval only).'),
    message: z.string().optional().describe('Shown with the decision when the rule matches.'),
  })
  .describe('A scope rule: exactly one of allow, forbid, require_approval.');

const match = condition.optional().describe('Which calls the invariant applies to (default: all).');
const per = expression
  .optional()
  .describe('CEL key that partitions the invariant (default: one global key).');

export const BudgetSchema = z.strictObject({
  match,
  per,
  limit: z
    .number({ error: 'expected a number' })
    .positive({ error: 'expected a positive number' })
    .max(MAX_AMOUNT, { error: `expected at most ${MAX_AMOUNT}` }),
  window: z
    .union(
      [
        z.literal('lifetime'),
        z.string().regex(DURATION, { error: 'expected a duration such as 1h or 1d, or lifetime' }),
      ],
      { error: 'expected a duration such as 1h or 1d, or lifetime' },
    )
    .describe('Fixed UTC windows such as 1h or 1d, or lifetime.'),
  cost: z
    .union([expression, z.number().nonnegative().max(MAX_AMOUNT)], {
      error: `expected a CEL amount or a number from 0 to ${MAX_AMOUNT}`,
    })
    .optional()
    .describe('Held at authorize, captured with the actual cost at settle (default 1).'),
  hold_ttl: duration.optional().describe('How long an unsettled hold lives (default 15m).'),
  on_expiry: z.enum(['release', 'capture']).optional().describe('What happens to an expired hold.'),
});

export const RateLimitSchema = z.strictObject({
  match,
  per,
  rate: z
    .string({ error: 'expected a rate such as 10/1m' })
    .regex(RATE, { error: 'expected a rate such as 10/1m or 5/s' }),
  burst: z
    .int({ error: 'expected a whole number' })
    .positive()
    .optional()
    .describe('Bucket size (default: the rate count).'),
});

export const ConcurrencySchema = z.strictObject({
  match,
  per,
  max: z.int({ error: 'expected a whole number' }).positive({ error: 'expected at least 1' }),
  lease: duration.optional().describe('A lease never settled expires after this (default 5m).'),
});

export const IdempotencySchema = z.strictObject({
  match,
  key: expression
    .optional()
    .describe('CEL key; absent: derived from session, tool and canonical args.'),
  ttl: duration
    .optional()
    .describe(
      'How long a key is remembered (default 24h); never less than its writ may run, so a call still running is never run again.',
    ),
  on_expiry: z
    .enum(['in_doubt', 'retry'])
    .optional()
    .describe('A claim whose writ expired unsettled.'),
});

const signatureKey = z
  .strictObject({
    ed25519: z
      .string()
      .optional()
      .describe('Base64 (raw 32 bytes or SPKI DER) Ed25519 public key.'),
    hmac_secret_env: z
      .string()
      .optional()
      .describe('Environment variable holding the HMAC-SHA256 secret.'),
  })
  .describe('How one principal signs its requests.');

export const ReplaySchema = z.strictObject({
  require_nonce: z
    .boolean()
    .optional()
    .describe('Refuse requests without a nonce; each nonce is accepted once. Needs max_age.'),
  max_age: duration
    .optional()
    .describe('Requests issued longer ago (or later) than this are refused.'),
  require_signature: z.boolean().optional(),
  keys: z.record(z.string(), signatureKey).optional().describe('Signature keys by principal id.'),
});

export const LabelSchema = z.strictObject({
  when: condition.describe(
    'Set on the session when a call for which this is true settles having run: succeeded or failed (not cancelled).',
  ),
});

export const PolicySchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    name: name.optional(),
    description: z.string().optional(),
    mode: z.enum(['enforce', 'shadow']).optional().describe('shadow: decide and log, never block.'),
    default: z
      .enum(['deny', 'require_approval'])
      .optional()
      .describe('What a tool the policy names gets when none of its allow rules matched.'),
    include: z.array(z.string()).optional().describe('Other policy files merged into this one.'),
    tools: z
      .record(
        z.string().regex(TOOL_PATTERN, { error: 'expected a tool name or glob (ASCII)' }),
        z.array(RuleSchema, { error: 'expected a list of rules' }),
      )
      .optional(),
    flow: z.array(RuleSchema).optional().describe('Rules evaluated for every tool call.'),
    budgets: z.record(name, BudgetSchema).optional(),
    rate_limits: z.record(name, RateLimitSchema).optional(),
    concurrency: z.record(name, ConcurrencySchema).optional(),
    idempotency: z.record(name, IdempotencySchema).optional(),
    replay: ReplaySchema.optional(),
    labels: z.record(name, LabelSchema).optional(),
    redact: z
      .array(z.string())
      .optional()
      .describe(
        'Paths logged as digests, under args, meta, principal.attrs or session.attrs: args.card_number, args.*.password, args.items.0.pin.',
      ),
    redact_key_env: z
      .string()
      .optional()
      .describe(
        'The environment variable holding a secret key: redacted values are then logged as HMAC-SHA256 digests under it, which nobody without the key can test guesses against (a card number, a phone number).',
      ),
  })
  .describe('A writ policy.');

/** A policy document as written, after validation. */
export type PolicyDocument = z.infer<typeof PolicySchema>;
/** One scope rule as written. */
export type RuleDocument = z.infer<typeof RuleSchema>;

/** The JSON Schema of the policy format, for editors. */
export function policyJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(PolicySchema, { io: 'input' }), title: 'writ policy' };
}
