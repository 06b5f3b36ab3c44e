import type { Kind } from './ledger.js';

/**
 * The shape of each kind of record as the ledger reads it, checked where a record comes
 * from storage that can be changed outside writ (a SQLite file). The ledger trusts the
 * shape: a record of another one would fail deep inside it (a TypeError), or worse, pass —
 * a budget whose `spent` is text makes its arithmetic NaN, and `amount > NaN` is false,
 * which reads as "it fits". Records the memory store keeps were all written by the ledger,
 * so it checks none, and neither does a read served from a store's cache.
 *
 * Rows written by earlier versions pass where the ledger still reads them: holds, captures
 * and leases kept as objects by writ id, a rate bucket without its remainder, a settled
 * writ kept whole.
 */

/** What is wrong with a value at `at` (a path such as `holds[0].amount`), or `undefined`. */
type Shape = (value: unknown, at: string) => string | undefined;

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A value as a problem quotes it: its JSON, cut short. */
function shown(value: unknown): string {
  // Infinity and NaN as themselves: JSON would show them as null.
  const text =
    value === undefined
      ? 'missing'
      : typeof value === 'number' && !Number.isFinite(value)
        ? String(value)
        : JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

const is =
  (test: (value: unknown) => boolean, what: string): Shape =>
  (value, at) =>
    test(value) ? undefined : `${at || 'it'} is ${shown(value)}, not ${what}`;

// JSON can hold what arithmetic cannot use: 1e999 parses as Infinity. A number here is
// finite, and an amount (a limit, what is spent or held) is not below 0 either — either
// would let the ledger's comparisons read a budget or a rate as having room.
const number = is((v) => Number.isFinite(v), 'a finite number');
const amount = is((v) => Number.isFinite(v) && (v as number) >= 0, 'an amount ≥ 0');
const positiveInteger = is(
  (v) => Number.isSafeInteger(v) && (v as number) >= 1,
  'a whole number ≥ 1',
);
const integer = is((v) => Number.isSafeInteger(v), 'a whole number');
const string = is((v) => typeof v === 'string', 'a string');
const boolean = is((v) => typeof v === 'boolean', 'true or false');
const anyObject = is(isObject, 'an object');
const oneOf = (...values: string[]) =>
  is((v) => values.includes(v as string), values.map((v) => JSON.stringify(v)).join(' or '));
const optional =
  (shape: Shape): Shape =>
  (value, at) =>
    value === undefined ? undefined : shape(value, at);
const nullable =
  (shape: Shape): Shape =>
  (value, at) =>
    value === null ? undefined : shape(value, at);

const join = (at: string, key: string) => (at ? `${at}.${key}` : key);

function object(fields: Record<string, Shape>): Shape {
  const entries = Object.entries(fields);
  return (value, at) => {
    if (!isObject(value)) return anyObject(value, at);
    for (const [key, shape] of entries) {
      const problem = shape(value[key], join(at, key));
      if (problem) return problem;
    }
    return undefined;
  };
}

function list(item: Shape): Shape {
  return (value, at) => {
    if (!Array.isArray(value)) return `${at || 'it'} is ${shown(value)}, not a list`;
    for (let i = 0; i < value.length; i++) {
      const problem = item(value[i], `${at}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  };
}

/** An object whose every value has `item`'s shape (keyed by writ id, budget key, …). */
function valuesOf(item: Shape): Shape {
  return (value, at) => {
    if (!isObject(value)) return anyObject(value, at);
    for (const [key, entry] of Object.entries(value)) {
      const problem = item(entry, join(at, key));
      if (problem) return problem;
    }
    return undefined;
  };
}

/** This version's list of entries, or the object by writ id that rows written before kept. */
const listOrByWrit =
  (entry: Shape, older: Shape): Shape =>
  (value, at) =>
    Array.isArray(value) ? list(entry)(value, at) : valuesOf(older)(value, at);

const holdOnExpiry = oneOf('release', 'capture');
const budget = object({
  key: string,
  limit: amount,
  windowEnd: nullable(number),
  spent: amount,
  holds: listOrByWrit(
    object({ writ: string, amount, expiresAt: number, onExpiry: holdOnExpiry }),
    object({ amount, expiresAt: number, onExpiry: holdOnExpiry }),
  ),
  expiredCaptures: listOrByWrit(object({ writ: string, amount, until: optional(number) }), amount),
});

const lease = object({
  fence: integer,
  leases: listOrByWrit(
    object({ writ: string, expiresAt: number, token: integer }),
    object({ expiresAt: number, token: integer }),
  ),
});

/** The fields of a writ's op that a settle or a sweep reads, by kind. */
const OP_FIELDS: Record<string, Shape> = {
  budget: object({ key: string, amount, holdTtlMs: number, onExpiry: holdOnExpiry }),
  idempotency: object({ key: string, ttlMs: number }),
  concurrency: object({ key: string }),
  rate: object({ key: string }),
  nonce: object({ key: string }),
};
const op: Shape = (value, at) => {
  const kind = oneOf(...Object.keys(OP_FIELDS))(
    isObject(value) ? value.kind : value,
    join(at, 'kind'),
  );
  return kind ?? OP_FIELDS[(value as Fields).kind as string]!(value, at);
};

const settledWrit = object({
  id: string,
  expiresAt: number,
  settled: object({
    at: number,
    status: oneOf('succeeded', 'failed', 'cancelled'),
    cost: optional(amount),
  }),
});
const openWrit = object({
  id: string,
  decisionId: string,
  actionDigest: string,
  sessionId: string,
  tool: string,
  issuedAt: number,
  expiresAt: number,
  ops: list(op),
  labels: list(string),
  fencing: optional(valuesOf(number)),
  loggedKeys: optional(valuesOf(string)),
});

const session = object({
  id: string,
  attrs: anyObject,
  opened: boolean,
  labels: list(string),
  version: integer,
  pending: optional(list(object({ writ: string, labels: list(string), expiresAt: number }))),
});

const approval = object({
  id: string,
  actionDigest: string,
  policyHash: string,
  action: anyObject,
  requestedBy: string,
  reasons: list(anyObject),
  status: oneOf('pending', 'approved', 'denied', 'consumed', 'expired'),
  createdAt: number,
  expiresAt: number,
  decidedBy: optional(string),
  decidedAt: optional(number),
  note: optional(string),
});

const SHAPES: Record<Kind, Shape> = {
  budget,
  rate: object({ tat: number, frac: optional(amount), per: optional(positiveInteger) }),
  lease,
  idem: object({
    digest: string,
    status: oneOf('in_flight', 'succeeded'),
    writId: string,
    writExpiresAt: number,
    onExpiry: oneOf('in_doubt', 'retry'),
    expiresAt: number,
  }),
  nonce: object({ expiresAt: number }),
  writ: (value, at) =>
    isObject(value) && value.settled !== undefined ? settledWrit(value, at) : openWrit(value, at),
  session,
  approval,
  'approval-index': string,
  policy: list(object({ path: string, text: string })),
  'log-head': object({ seq: integer, hash: string }),
};

/**
 * What keeps `value` from being a record of `kind` as the ledger reads it — the first
 * problem found, such as `holds[0].amount is "5", not a number` — or `undefined`.
 */
export function recordProblem(kind: Kind, value: unknown): string | undefined {
  return SHAPES[kind](value, '');
}
