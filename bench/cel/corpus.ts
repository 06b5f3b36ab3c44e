/**
 * The CEL conformance corpus: the expression forms the generated benchmark policy uses,
 * plus the CEL features policies reach for, each evaluated over several requests by both
 * libraries. Where they disagree and the disagreement is known, it is listed in
 * {@link KNOWN_DIVERGENCES} with the reason; every other case must agree.
 */

/** Requests (as untrusted JSON, validated by writ) that expressions are evaluated against. */
export const CONTEXTS: Record<string, unknown> = {
  /** Everything present and well typed. */
  full: {
    tool: 'billing.send_payment',
    args: {
      amount: 150,
      currency: 'EUR',
      recipient: 'bob@example.com',
      memo: 'INV-1001',
      path: '/srv/agent/../data/./q3.csv',
      force: true,
      items: [1, 5, 12],
      tags: ['alpha', 'beta'],
      meta: { depth: 2, name: 'x' },
      email: 'Bob@Example.COM',
      url: 'https://good.example@evil.example:8443/pay',
      note: 'héllo wörld',
    },
    principal: { id: 'agent-7', tenant: 'acme', roles: ['operator'], attrs: { level: 3 } },
    session: {
      id: 's-1',
      attrs: { payees: ['alice@example.com', 'bob@example.com'], limit: 500 },
      labels: ['untrusted-content'],
    },
    idempotencyKey: 'k-1',
    estimate: { cost: 12.5 },
  },
  /** Almost nothing present: missing keys everywhere. */
  sparse: {
    tool: 'search.web',
    args: {},
    principal: { id: 'agent-1' },
    session: { id: 's-2' },
  },
  /** Present but with the wrong types. */
  mistyped: {
    tool: 'billing.refund',
    args: {
      amount: '150',
      currency: 7,
      recipient: 42,
      memo: ['INV-'],
      path: 12,
      force: 'yes',
      items: 'not-a-list',
      tags: [1, 'alpha', null],
      meta: [],
      email: 'two@a.example, three@b.example',
      url: 'not a url',
      note: null,
    },
    principal: { id: 'agent-2', roles: [] },
    session: { id: 's-3', attrs: { payees: 'bob@example.com', limit: '500' }, labels: [] },
  },
  /** Edge values: zero, negatives, empty collections, large and fractional numbers. */
  edges: {
    tool: 'files.read',
    args: {
      amount: 0,
      currency: '',
      recipient: '',
      memo: '',
      path: '/srv/database/../../srv/data',
      force: false,
      items: [],
      tags: [],
      meta: { depth: -0.5 },
      email: 'a@b.example.',
      url: 'HTTPS://EXAMPLE.COM./',
      note: '𝄞 clef',
      huge: 1e21,
      fraction: 2.5,
    },
    principal: { id: 'agent-3', tenant: 'beta', roles: ['viewer', 'operator'] },
    session: { id: 's-4', attrs: { payees: [], limit: 0 }, labels: ['read-only', 'after-hours'] },
  },
};

/** The corpus: [group, expression]. */
export const EXPRESSIONS: readonly (readonly [string, string])[] = [
  // The forms the generated policy uses (bench/scope/generate.ts).
  ['policy', 'args.amount > 100'],
  ['policy', 'args.amount <= 0'],
  ['policy', 'args.currency in ["USD", "EUR"]'],
  ['policy', 'args.currency == "EUR"'],
  ['policy', 'args.memo.startsWith("INV-")'],
  ['policy', 'path.within(args.path, "/srv/data")'],
  ['policy', '(has(args.force) && args.force == true)'],
  ['policy', 'args.recipient in session.attrs.payees'],
  ['policy', '!(args.recipient in session.attrs.payees)'],
  ['policy', '"untrusted-content" in session.labels'],
  ['policy', '"operator" in principal.roles'],
  ['policy', 'tool in ["billing.send_payment", "mail.send"]'],
  ['policy', 'tool.startsWith("billing.")'],
  [
    'policy',
    '"untrusted-content" in session.labels && tool == "billing.send_payment" && !(args.recipient in session.attrs.payees)',
  ],
  // Errors meeting && and ||: CEL makes them commutative.
  ['logic', 'args.missing > 1 && false'],
  ['logic', 'false && args.missing > 1'],
  ['logic', 'args.missing > 1 || true'],
  ['logic', 'args.missing > 1 || false'],
  ['logic', 'args.amount > 100 ? "big" : "small"'],
  ['logic', '!args.force'],
  // Collections and macros.
  ['collections', 'size(args.items)'],
  ['collections', 'args.items.size()'],
  ['collections', 'args.items.exists(x, x > 10)'],
  ['collections', 'args.items.all(x, x > 0)'],
  ['collections', 'args.items.exists_one(x, x == 5)'],
  ['collections', 'args.items.map(x, x * 2.0)'],
  ['collections', 'args.items.filter(x, x > 1)'],
  ['collections', 'args.tags.all(t, t.startsWith("a"))'],
  ['collections', 'args.tags.exists(t, t == "alpha")'],
  ['collections', 'args.items[1]'],
  ['collections', 'args.items[10]'],
  ['collections', 'args.items == [1.0, 5.0, 12.0]'],
  ['collections', '[1, 2] + [3]'],
  ['collections', '[1, "a", true].size()'],
  // Maps and presence.
  ['maps', 'has(args.meta.depth)'],
  ['maps', 'has(args.nope)'],
  ['maps', '"name" in args.meta'],
  ['maps', 'args.meta.depth == 2'],
  ['maps', 'args.meta["name"]'],
  ['maps', 'args.meta.missing'],
  ['maps', 'size({"a": 1, "b": 2})'],
  ['maps', 'has(principal.tenant)'],
  ['maps', 'principal.tenant == "acme"'],
  ['maps', 'principal.attrs.level >= 3'],
  ['maps', 'session.attrs.limit >= args.amount'],
  // Strings.
  ['strings', 'size(args.note)'],
  ['strings', 'args.note.contains("wö")'],
  ['strings', 'args.email.endsWith("example.com")'],
  ['strings', 'args.email.lowerAscii()'],
  ['strings', 'args.email.matches("^[^@]+@[Ee]xample\\\\.(com|COM)$")'],
  ['strings', 'args.memo.matches("^INV-(?=[0-9])")'],
  ['strings', '"abc" < "abd"'],
  ['strings', 'args.memo + "-x"'],
  // Numbers: int vs double, conversions, overflow.
  ['numbers', 'args.amount * 2.0'],
  ['numbers', 'args.amount + 1'],
  ['numbers', 'int(args.amount) + 1'],
  ['numbers', '7 / 2'],
  ['numbers', '-7 / 2'],
  ['numbers', '-7 % 3'],
  ['numbers', '9223372036854775807 + 1'],
  ['numbers', 'uint(1) - uint(2)'],
  ['numbers', '1 == 1.0'],
  ['numbers', 'dyn(1) == 1.0'],
  ['numbers', 'int(2.9)'],
  ['numbers', 'int("42")'],
  ['numbers', 'double("1e3")'],
  ['numbers', 'string(args.amount)'],
  ['numbers', 'string(2.5)'],
  ['numbers', 'args.huge > 1e20'],
  ['numbers', 'int(args.huge)'],
  ['numbers', 'int(-1e19)'],
  ['numbers', 'uint(-1.0)'],
  ['numbers', '1.0 / 0.0 > 1e308'],
  ['numbers', '0.0 / 0.0 == 0.0 / 0.0'],
  ['numbers', 'type(args.amount) == double'],
  // Time, and writ's helpers.
  ['time', 'now > timestamp("2026-01-01T00:00:00Z")'],
  ['time', 'duration("1h") > duration("30m")'],
  ['time', 'timestamp("2026-11-23T12:00:00Z") + duration("90m")'],
  ['time', 'now - duration("24h") > timestamp("2026-11-22T00:00:00Z")'],
  ['time', 'timestamp("2026-11-23T12:30:00Z").getHours()'],
  ['helpers', 'path.normalize(args.path)'],
  ['helpers', 'url.host(args.url)'],
  ['helpers', 'email.domain(args.email)'],
  ['helpers', 'glob.match("billing.*", tool)'],
];

/** A disagreement between the libraries that is understood. */
export interface KnownDivergence {
  expression: string;
  /** The contexts it shows in; every context if absent. */
  contexts?: readonly string[];
  /** Which library departs from the CEL specification, or `neither`. */
  departs: 'cel-js' | '@bufbuild/cel' | 'neither';
  reason: string;
}

/**
 * Every case where the libraries disagree, with the reason. Everything else must agree,
 * and each of these must still disagree (the test checks both, so the list cannot rot).
 */
export const KNOWN_DIVERGENCES: readonly KnownDivergence[] = [
  {
    expression: '1 == 1.0',
    departs: 'neither',
    reason:
      "writ type-checks every expression at load and, like cel-go's checker, refuses `int == double` " +
      'between literals; @bufbuild/cel has no checker in this API and applies runtime heterogeneous ' +
      'equality (true). With `dyn(1) == 1.0` both say true.',
  },
  {
    expression: 'int(args.huge)',
    contexts: ['edges'],
    departs: 'cel-js',
    reason:
      'int() of a double outside the 64-bit range must fail (CEL spec: range error); cel-js 8.0.0 ' +
      'returns an int of 10^21, beyond int64.',
  },
  {
    expression: 'int(-1e19)',
    departs: 'cel-js',
    reason: 'As above: -10^19 is below int64 min; cel-js returns it instead of failing.',
  },
  {
    expression: 'args.memo.matches("^INV-(?=[0-9])")',
    contexts: ['full', 'edges'],
    departs: 'cel-js',
    reason:
      'CEL regular expressions are RE2, which has no lookahead; cel-js runs them as JavaScript ' +
      'RegExp (accepts more syntax, and backtracks), @bufbuild/cel rejects the pattern.',
  },
  {
    expression: 'timestamp("2026-11-23T12:00:00Z") + duration("90m")',
    departs: '@bufbuild/cel',
    reason:
      '@bufbuild/cel 0.6.1 overflows the stack ("Maximum call stack size exceeded") adding a ' +
      'duration to a timestamp; cel-js gives 13:30.',
  },
];
