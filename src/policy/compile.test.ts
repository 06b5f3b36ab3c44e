import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatIssue, PolicyError } from '../core/errors.js';
import { compilePolicy } from './compile.js';

/** Compiles `text` as `p.yaml` and returns its issues as `file:line:col: message` lines. */
function errorsOf(text: string): string[] {
  try {
    compilePolicy({ path: 'p.yaml', text });
  } catch (error) {
    if (error instanceof PolicyError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('the policy compiled, but errors were expected');
}

/** The text at a `line:col` of an issue, to show that the position points at the culprit. */
function at(text: string, issue: string): string {
  const match = /^[^:]+:(\d+):(\d+): /.exec(issue);
  if (!match) throw new Error(`not a file:line:col issue: ${issue}`);
  return text.split('\n')[Number(match[1]) - 1]!.slice(Number(match[2]) - 1);
}

const ok = (text: string) => compilePolicy({ path: 'p.yaml', text });

describe('policy loading: YAML problems', () => {
  it('rejects a duplicate key, pointing at the second one and naming it', () => {
    const text = 'version: 1\ntools:\n  a:\n    - allow: true\n  a:\n    - allow: false\n';
    expect(errorsOf(text)).toEqual([
      'p.yaml:5:3: duplicate key a: keys of a mapping must be unique',
    ]);
  });

  it('rejects a duplicate key inside a rule', () => {
    const text = 'version: 1\ntools:\n  a:\n    - allow: true\n      allow: false\n';
    expect(errorsOf(text)).toEqual([
      'p.yaml:5:7: duplicate key allow: keys of a mapping must be unique',
    ]);
  });

  it('rejects a duplicate quoted key in a flow mapping', () => {
    const text = 'version: 1\nlabels: {"x": {when: true}, "x": {when: false}}\n';
    expect(errorsOf(text)).toEqual([
      'p.yaml:2:29: duplicate key "x": keys of a mapping must be unique',
    ]);
  });

  it('rejects a key YAML reads as a number, a boolean or null: keys are names', () => {
    // Beside "2048", an unquoted 2048 silently replaced its rules; 1.10 named the tool 1.1.
    const text =
      'version: 1\ntools:\n  "2048":\n    - forbid: true\n  2048:\n    - allow: true\n  1.10: []\n  true: []\n  ~: []\n';
    expect(errorsOf(text)).toEqual([
      'p.yaml:5:3: key 2048 is read as the number 2048, not a name: quote it ("2048")',
      'p.yaml:7:3: key 1.10 is read as the number 1.1, not a name: quote it ("1.10")',
      'p.yaml:8:3: key true is read as the boolean true, not a name: quote it ("true")',
      'p.yaml:9:3: key ~ is read as null, not a name: quote it ("~")',
    ]);
    expect(() => ok('version: 1\ntools:\n  "2048": [{ allow: true }]\n')).not.toThrow();
    const aliased = [
      'version: 1',
      "budgets: { b: { limit: &n 2048, window: 1d, cost: '1.0' } }",
      'tools:',
      '  "2048":',
      '    - forbid: true',
      '  *n :',
      '    - allow: true',
      '  ? [a]',
      '  : []',
      '',
    ].join('\n');
    expect(errorsOf(aliased)).toEqual([
      'p.yaml:6:3: a key must be a name written out, not an alias or a collection',
      'p.yaml:8:5: a key must be a name written out, not an alias or a collection',
    ]);
  });

  it('rejects a redact path that can never match, since it would log in clear what it names', () => {
    const text = [
      'version: 1',
      'tools: { pay: [{ allow: true }] }',
      'redact:',
      '  - card_number',
      '  - arg.card_number',
      "  - ''",
      '  - args.',
      '  - args.items[0].pw',
      '  - args..pw',
      '  - args.**.password',
      '  - args.card_number',
      '  - args.*.password',
      '  - args.items.0.pw',
      '  - session.attrs.token',
      '  - principal.attrs.ssn',
      '  - meta.trace',
      '',
    ].join('\n');
    const expected =
      'matches nothing: a redact path is one of args, meta, principal.attrs, session.attrs followed by .key or .* parts (list items by index: args.items.0.pw)';
    expect(errorsOf(text)).toEqual([
      `p.yaml:4:5: "card_number" ${expected}`,
      `p.yaml:5:5: "arg.card_number" ${expected}`,
      `p.yaml:6:5: "" ${expected}`,
      `p.yaml:7:5: "args." ${expected}`,
      `p.yaml:8:5: "args.items[0].pw" ${expected}`,
      `p.yaml:9:5: "args..pw" ${expected}`,
      'p.yaml:10:5: "args.**.password": "**" is no wildcard here — * stands for one key or index, so write each depth: args.*.password, args.*.*.password',
    ]);
  });

  it('rejects a duplicate top-level key', () => {
    expect(errorsOf('version: 1\nversion: 1\n')).toEqual([
      'p.yaml:2:1: duplicate key version: keys of a mapping must be unique',
    ]);
  });

  it('rejects an empty file and a file of comments', () => {
    expect(errorsOf('')).toEqual(['p.yaml:1:1: the file is empty']);
    expect(errorsOf('# nothing here\n\n')).toEqual(['p.yaml:1:1: the file is empty']);
  });

  it('rejects a top level that is not a mapping', () => {
    expect(errorsOf('- version: 1\n')).toEqual([
      'p.yaml:1:1: policy: expected object, received array',
    ]);
    expect(errorsOf('version 1\n')).toEqual([
      'p.yaml:1:1: policy: expected object, received string',
    ]);
    expect(errorsOf('42\n')).toEqual(['p.yaml:1:1: policy: expected object, received number']);
  });

  it('stops an alias bomb (billion laughs) and points at the first alias', () => {
    const text = [
      'version: 1',
      'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
      'f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]',
      'g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]',
      'h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]',
      'i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]',
      '',
    ].join('\n');
    const started = performance.now();
    const errors = errorsOf(text);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(errors).toEqual([
      'p.yaml:3:8: Excessive alias count indicates a resource exhaustion attack',
    ]);
  });

  it('reports a tab used as indentation with its position', () => {
    expect(errorsOf('version: 1\ntools:\n\ta: []\n')[0]).toMatch(/^p\.yaml:3:1: .*[Tt]ab/);
  });

  it('does not apply YAML merge keys (<<), which would bypass the schema', () => {
    const text = 'version: 1\ntools:\n  a:\n    - <<: {allow: true}\n';
    expect(errorsOf(text)).toEqual([
      'p.yaml:4:7: unknown key "<<"; expected one of: name, allow, forbid, require_approval, expires, message',
    ]);
  });
});

describe('policy loading: prototype keys', () => {
  it.each([
    [
      'a tool',
      'version: 1\ntools:\n  __proto__:\n    - allow: true\n',
      'p.yaml:3:3: key "__proto__" is not allowed',
    ],
    [
      'a budget field',
      'version: 1\nbudgets:\n  b:\n    limit: 5\n    window: 1d\n    __proto__: {polluted: 1}\n',
      'p.yaml:6:5: key "__proto__" is not allowed',
    ],
    [
      'the top level',
      'version: 1\nconstructor: {}\n',
      'p.yaml:2:1: key "constructor" is not allowed',
    ],
    [
      'a quoted key in a flow mapping',
      'version: 1\nreplay: {keys: {"prototype": {ed25519: x}}}\n',
      'p.yaml:2:17: key "prototype" is not allowed',
    ],
  ])('rejects __proto__, constructor and prototype as %s', (_, text, error) => {
    expect(errorsOf(text)).toEqual([error]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('policy loading: signing keys', () => {
  it('rejects a key that could verify nothing, which would deny every signed request', () => {
    const good = generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' });
    const text = [
      'version: 1',
      'replay:',
      '  keys:',
      '    a: { ed25519: "not a key!!" }',
      `    b: { ed25519: ${Buffer.from('x'.repeat(32)).toString('base64').slice(0, -4)} }`,
      `    c: { ed25519: ${generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64')} }`,
      '    d: { hmac_secret_env: "" }',
      '    e: { hmac_secret_env: "MY SECRET" }',
      `    f: { ed25519: ${Buffer.from([1, ...new Array(31).fill(0)]).toString('base64')} }`,
      `    g: { ed25519: ${Buffer.from('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', 'hex').toString('base64')} }`,
      `    ok1: { ed25519: ${good.toString('base64')} }`,
      `    ok2: { ed25519: ${good.subarray(-32).toString('base64')} }`,
      '    ok3: { hmac_secret_env: WRIT_HMAC_1 }',
      '',
    ].join('\n');
    const key =
      'not a usable Ed25519 public key: base64 of its 32 raw bytes or of its SPKI DER, and not a point of small order (one accepts forged signatures)';
    expect(errorsOf(text)).toEqual([
      `p.yaml:4:19: ${key}`,
      `p.yaml:5:19: ${key}`,
      `p.yaml:6:19: ${key}`,
      'p.yaml:7:27: not an environment variable name: ""',
      'p.yaml:8:27: not an environment variable name: "MY SECRET"',
      `p.yaml:9:19: ${key}`,
      `p.yaml:10:19: ${key}`,
    ]);
  });
});

describe('policy loading: the redaction key', () => {
  it('takes an environment variable name, and nothing else', () => {
    expect(errorsOf('version: 1\nredact: [args.pw]\nredact_key_env: "MY KEY"\n')).toEqual([
      'p.yaml:3:17: not an environment variable name: "MY KEY"',
    ]);
    expect(
      compilePolicy({
        path: 'p.yaml',
        text: 'version: 1\nredact: [args.pw]\nredact_key_env: K_1\n',
      }).redactKeyEnv,
    ).toBe('K_1');
  });
});

describe('policy loading: schema problems', () => {
  it('requires version: 1', () => {
    expect(errorsOf('name: x\n')).toEqual([
      'p.yaml:1:1: missing key "version": expected version: 1',
    ]);
    expect(errorsOf('version: 2\n')).toEqual(['p.yaml:1:10: version: expected version: 1']);
    expect(errorsOf('version: "1"\n')).toEqual(['p.yaml:1:10: version: expected version: 1']);
  });

  it('says which values an enum accepts', () => {
    expect(errorsOf('version: 1\ndefault: maybe\n')).toEqual([
      'p.yaml:2:10: default: Invalid option: expected one of "deny"|"require_approval"',
    ]);
    expect(errorsOf('version: 1\nmode: audit\n')).toEqual([
      'p.yaml:2:7: mode: Invalid option: expected one of "enforce"|"shadow"',
    ]);
  });

  it('lists the expected keys for an unknown key at every level', () => {
    expect(errorsOf('version: 1\ntoolz: {}\n')).toEqual([
      'p.yaml:2:1: unknown key "toolz"; expected one of: version, name, description, mode, default, include, tools, flow, budgets, rate_limits, concurrency, idempotency, replay, labels, redact, redact_key_env',
    ]);
    expect(errorsOf('version: 1\ntools:\n  a:\n    - allow: true\n      alow: true\n')).toEqual([
      'p.yaml:5:7: unknown key "alow"; expected one of: name, allow, forbid, require_approval, expires, message',
    ]);
    expect(
      errorsOf('version: 1\nbudgets:\n  b:\n    limit: 5\n    window: 1d\n    limitt: 3\n'),
    ).toEqual([
      'p.yaml:6:5: unknown key "limitt"; expected one of: match, per, limit, window, cost, hold_ttl, on_expiry',
    ]);
    expect(errorsOf('version: 1\nflow:\n  - forbid: true\n    because: x\n')).toEqual([
      'p.yaml:4:5: unknown key "because"; expected one of: name, allow, forbid, require_approval, expires, message',
    ]);
    expect(errorsOf('version: 1\nreplay:\n  nonce: true\n')).toEqual([
      'p.yaml:3:3: unknown key "nonce"; expected one of: require_nonce, max_age, require_signature, keys',
    ]);
  });

  it('reports wrong types where the value is', () => {
    expect(errorsOf('version: 1\ntools:\n  a:\n    allow: true\n')).toEqual([
      'p.yaml:4:5: tools.a: expected a list of rules',
    ]);
    expect(errorsOf('version: 1\ntools:\n  a:\n    - allow: 5\n')).toEqual([
      'p.yaml:4:14: tools.a.0.allow: expected a CEL condition (text) or true/false',
    ]);
    expect(errorsOf('version: 1\nflow: {}\n')).toEqual([
      'p.yaml:2:7: flow: expected array, received object',
    ]);
    expect(errorsOf('version: 1\nbudgets:\n  b:\n    limit: lots\n    window: 1d\n')).toEqual([
      'p.yaml:4:12: budgets.b.limit: expected a number',
    ]);
    expect(errorsOf('version: 1\nbudgets:\n  b:\n    limit: -5\n    window: 1d\n')).toEqual([
      'p.yaml:4:12: budgets.b.limit: expected a positive number',
    ]);
    expect(errorsOf('version: 1\nbudgets:\n  b:\n    limit: .inf\n    window: 1d\n')).toEqual([
      'p.yaml:4:12: budgets.b.limit: expected a number',
    ]);
    expect(errorsOf('version: 1\nconcurrency:\n  c:\n    max: 1.5\n')).toEqual([
      'p.yaml:4:10: concurrency.c.max: expected a whole number',
    ]);
  });

  it('reports a missing required key at its parent', () => {
    expect(errorsOf('version: 1\nbudgets:\n  b:\n    limit: 5\n')).toEqual([
      'p.yaml:4:5: missing key "window": expected a duration such as 1h or 1d, or lifetime',
    ]);
  });

  it('rejects tool names that are not ASCII, pointing at the key', () => {
    expect(errorsOf('version: 1\ntools:\n  "send_m\u043eney":\n    - allow: true\n')).toEqual([
      'p.yaml:3:3: "send_m\u043eney": expected a tool name or glob (ASCII)',
    ]);
  });

  it('rejects an invalid glob as a policy error instead of crashing', () => {
    expect(errorsOf('version: 1\ntools:\n  "[z-a]_tool":\n    - allow: true\n')).toEqual([
      'p.yaml:3:3: invalid glob "[z-a]_tool": range out of order in a set',
    ]);
  });

  it('reports every problem, not just the first', () => {
    const errors = errorsOf('version: 1\ndefault: maybe\nmode: audit\ntoolz: {}\n');
    expect(errors).toHaveLength(3);
  });
});

describe('policy loading: rules', () => {
  it('needs exactly one effect', () => {
    expect(errorsOf('version: 1\ntools:\n  a:\n    - allow: true\n      forbid: true\n')).toEqual([
      'p.yaml:4:7: a rule needs exactly one of allow, forbid, require_approval; found allow, forbid',
    ]);
    expect(errorsOf('version: 1\ntools:\n  a:\n    - message: hi\n')).toEqual([
      'p.yaml:4:7: a rule needs exactly one of allow, forbid, require_approval; found none',
    ]);
    expect(errorsOf('version: 1\nflow:\n  - {}\n')).toEqual([
      'p.yaml:3:5: a rule needs exactly one of allow, forbid, require_approval; found none',
    ]);
    expect(
      errorsOf(
        'version: 1\nflow:\n  - allow: true\n    forbid: false\n    require_approval: true\n',
      ),
    ).toEqual([
      'p.yaml:3:5: a rule needs exactly one of allow, forbid, require_approval; found allow, forbid, require_approval',
    ]);
  });

  it('allows expires only on require_approval', () => {
    expect(errorsOf('version: 1\ntools:\n  a:\n    - allow: true\n      expires: 5m\n')).toEqual([
      'p.yaml:5:7: expires applies only to require_approval rules',
    ]);
    expect(errorsOf('version: 1\nflow:\n  - forbid: true\n    expires: 5m\n')).toEqual([
      'p.yaml:4:5: expires applies only to require_approval rules',
    ]);
    expect(() =>
      ok('version: 1\nflow:\n  - require_approval: true\n    expires: 5m\n'),
    ).not.toThrow();
  });

  it('rejects duplicate rule names across tools and flow', () => {
    const text =
      'version: 1\ntools:\n  a:\n    - allow: true\n      name: r\nflow:\n  - forbid: false\n    name: r\n';
    expect(errorsOf(text)).toEqual(['p.yaml:8:11: duplicate rule name "r"']);
  });

  it('rejects a rule name that is not a name', () => {
    expect(errorsOf('version: 1\nflow:\n  - forbid: false\n    name: "two words"\n')).toEqual([
      'p.yaml:4:11: flow.0.name: expected a name of letters, digits, _ . - (at most 64)',
    ]);
  });
});

describe('policy loading: durations and rates', () => {
  it.each([
    [
      '5 minutes',
      'p.yaml:5:16: tools.a.0.expires: expected a duration such as 30s, 15m, 24h or 1d',
    ],
    ['15', 'p.yaml:5:16: tools.a.0.expires: expected a duration such as 30s, 15m, 24h or 1d'],
    ['1w', 'p.yaml:5:16: tools.a.0.expires: expected a duration such as 30s, 15m, 24h or 1d'],
    ['-5m', 'p.yaml:5:16: tools.a.0.expires: expected a duration such as 30s, 15m, 24h or 1d'],
    ['1.5h', 'p.yaml:5:16: tools.a.0.expires: expected a duration such as 30s, 15m, 24h or 1d'],
    ['0m', 'p.yaml:5:16: expected a duration above zero and at most 36500d'],
    ['99999999999999999999d', 'p.yaml:5:16: expected a duration above zero and at most 36500d'],
  ])('rejects expires: %s', (duration, error) => {
    const text = `version: 1\ntools:\n  a:\n    - require_approval: true\n      expires: ${duration}\n`;
    expect(errorsOf(text)).toEqual([error]);
  });

  it('rejects a bad window, hold_ttl, lease and ttl', () => {
    expect(errorsOf('version: 1\nbudgets:\n  b:\n    limit: 5\n    window: daily\n')).toEqual([
      'p.yaml:5:13: budgets.b.window: expected a duration such as 1h or 1d, or lifetime',
    ]);
    expect(
      errorsOf('version: 1\nbudgets:\n  b:\n    limit: 5\n    window: 1d\n    hold_ttl: 0s\n'),
    ).toEqual(['p.yaml:6:15: expected a duration above zero and at most 36500d']);
    expect(errorsOf('version: 1\nconcurrency:\n  c:\n    max: 1\n    lease: 10 m\n')).toEqual([
      'p.yaml:5:12: concurrency.c.lease: expected a duration such as 30s, 15m, 24h or 1d',
    ]);
    expect(errorsOf('version: 1\nidempotency:\n  i:\n    ttl: 0h\n')).toEqual([
      'p.yaml:4:10: expected a duration above zero and at most 36500d',
    ]);
  });

  // Each of these used to load: a window of 0 then failed every matching call as a store
  // error, and a max_age of 0 (or one too long to hold) switched the age check off.
  it.each([
    ['window: 0d', 'version: 1\nbudgets:\n  b:\n    limit: 5\n    window: 0d\n', 'p.yaml:5:13'],
    [
      'window: 99999999d',
      'version: 1\nbudgets:\n  b:\n    limit: 5\n    window: 99999999d\n',
      'p.yaml:5:13',
    ],
    ['max_age: 0s', 'version: 1\nreplay:\n  max_age: 0s\n', 'p.yaml:3:12'],
    ['max_age: 0ms', 'version: 1\nreplay:\n  max_age: 0ms\n', 'p.yaml:3:12'],
    ['max_age: 9999999999d', 'version: 1\nreplay:\n  max_age: 9999999999d\n', 'p.yaml:3:12'],
  ])('rejects %s', (_name, text, at) => {
    expect(errorsOf(text)).toEqual([`${at}: expected a duration above zero and at most 36500d`]);
  });

  it('rejects require_nonce without max_age, which bounds how long a nonce is kept', () => {
    expect(errorsOf('version: 1\nreplay:\n  require_nonce: true\n')).toEqual([
      'p.yaml:3:18: require_nonce needs max_age: nonces are remembered for 2 × max_age, and a request older than that must be refused',
    ]);
    expect(ok('version: 1\nreplay:\n  require_nonce: true\n  max_age: 5m\n').replay).toMatchObject({
      requireNonce: true,
      maxAgeMs: 300_000,
    });
  });

  it.each([
    ['ten per minute', 'p.yaml:4:11: rate_limits.r.rate: expected a rate such as 10/1m or 5/s'],
    ['10/minute', 'p.yaml:4:11: rate_limits.r.rate: expected a rate such as 10/1m or 5/s'],
    ['10', 'p.yaml:4:11: rate_limits.r.rate: expected a rate such as 10/1m'],
    ['0/1m', 'p.yaml:4:11: expected a rate such as 10/1m with a count ≥ 1 and a period > 0'],
    ['10/0m', 'p.yaml:4:11: expected a rate such as 10/1m with a count ≥ 1 and a period > 0'],
  ])('rejects rate: %s', (rate, error) => {
    expect(errorsOf(`version: 1\nrate_limits:\n  r:\n    rate: ${rate}\n`)).toEqual([error]);
  });

  it('rejects a burst that is not a positive whole number', () => {
    expect(errorsOf('version: 1\nrate_limits:\n  r:\n    rate: 5/s\n    burst: 0\n')[0]).toMatch(
      /^p\.yaml:5:12: rate_limits\.r\.burst: /,
    );
  });
});

describe('policy loading: CEL', () => {
  it('points into the expression at a syntax error', () => {
    const cases = [
      ["    - allow: 'args.x == '", 'p.yaml:4:25: invalid CEL: Unexpected token: EOF'],
      ['    - allow: args.x == = 3', 'p.yaml:4:24: invalid CEL: Unexpected character: ='],
      ['    - allow: "args.x && && true"', 'p.yaml:4:25: invalid CEL: Unexpected token: AND'],
    ];
    for (const [line, error] of cases) {
      const text = `version: 1\ntools:\n  a:\n${line}\n`;
      const errors = errorsOf(text);
      expect(errors).toEqual([error]);
    }
  });

  it('counts columns through escapes in quoted strings', () => {
    const double = 'version: 1\ntools:\n  a:\n    - allow: "tool == \\"x\\" && && true"\n';
    expect(errorsOf(double)).toEqual(['p.yaml:4:32: invalid CEL: Unexpected token: AND']);
    expect(at(double, errorsOf(double)[0]!)).toBe('&& true"');
    const single = "version: 1\ntools:\n  a:\n    - allow: 'tool == ''x'' && && true'\n";
    expect(at(single, errorsOf(single)[0]!)).toBe("&& true'");
    const unicode =
      'version: 1\ntools:\n  a:\n    - allow: "tool == \\u0022x\\u0022 && sesion.id"\n';
    expect(at(unicode, errorsOf(unicode)[0]!)).toBe('sesion.id"');
    const astral =
      'version: 1\ntools:\n  a:\n    - allow: "tool == \\"\\U0001F600\\" && sesion.id"\n';
    expect(at(astral, errorsOf(astral)[0]!)).toBe('sesion.id"');
  });

  it('points into folded, literal and multi-line scalars', () => {
    for (const style of ['>-', '|', '>']) {
      const text = `version: 1\nflow:\n  - require_approval: ${style}\n      "x" in session.labels\n      && sesion.id == "a"\n`;
      expect(errorsOf(text)).toEqual(['p.yaml:5:10: invalid CEL: Unknown variable: sesion']);
    }
    const plain =
      'version: 1\nflow:\n  - require_approval: tool == "a"\n      && sesion.id == "a"\n';
    expect(errorsOf(plain)).toEqual(['p.yaml:4:10: invalid CEL: Unknown variable: sesion']);
    const quoted = 'version: 1\nflow:\n  - forbid: \'tool == "a"\n      && sesion.id == "a"\'\n';
    expect(errorsOf(quoted)).toEqual(['p.yaml:4:10: invalid CEL: Unknown variable: sesion']);
  });

  it('catches a misspelt variable or field at load time', () => {
    expect(errorsOf('version: 1\ntools:\n  a:\n    - allow: \'"x" in sesion.attrs\'\n')).toEqual([
      'p.yaml:4:22: invalid CEL: Unknown variable: sesion',
    ]);
    expect(errorsOf('version: 1\ntools:\n  a:\n    - allow: \'principal.tenat == "x"\'\n')).toEqual(
      ['p.yaml:4:25: invalid CEL: No such key: tenat'],
    );
    expect(errorsOf('version: 1\nflow:\n  - forbid: \'request.nonse == "x"\'\n')[0]).toMatch(
      /^p\.yaml:3:22: invalid CEL: No such key: nonse/,
    );
    expect(errorsOf('version: 1\nflow:\n  - forbid: \'path.inside(args.p, "/x")\'\n')[0]).toMatch(
      /^p\.yaml:3:\d+: invalid CEL: /,
    );
  });

  it('rejects a condition that is not a bool', () => {
    for (const [expr, type] of [
      ['args.amount + 1.0', 'double'],
      ['1 + 2', 'int'],
      ['"yes"', 'string'],
      ['session.labels', 'list<string>'],
    ]) {
      const text = `version: 1\ntools:\n  a:\n    - allow: '${expr}'\n`;
      expect(errorsOf(text)).toEqual([
        `p.yaml:4:15: invalid CEL: expression has type ${type}; a condition must be bool`,
      ]);
    }
  });

  it('rejects a key or an amount of the wrong type', () => {
    const budget = (field: string) =>
      `version: 1\nbudgets:\n  b:\n    limit: 5\n    window: 1d\n    ${field}\n`;
    expect(errorsOf(budget('cost: \'"x"\''))).toEqual([
      'p.yaml:6:12: invalid CEL: expression has type string; an amount must be int or uint or double',
    ]);
    expect(errorsOf(budget("per: 'true'"))).toEqual([
      'p.yaml:6:11: invalid CEL: expression has type bool; a key must be string or int or uint or double',
    ]);
    expect(errorsOf(budget("match: 'principal.id'"))).toEqual([
      'p.yaml:6:13: invalid CEL: expression has type string; a condition must be bool',
    ]);
  });

  it('checks label conditions and invariant expressions too', () => {
    expect(errorsOf('version: 1\nlabels:\n  tainted:\n    when: \'tol == "x"\'\n')).toEqual([
      'p.yaml:4:12: invalid CEL: Unknown variable: tol',
    ]);
    expect(errorsOf("version: 1\nidempotency:\n  i:\n    key: 'reqest.idempotencyKey'\n")).toEqual([
      'p.yaml:4:11: invalid CEL: Unknown variable: reqest',
    ]);
  });

  it('accepts a dyn condition, which is checked when it runs', () => {
    expect(() => ok("version: 1\ntools:\n  a:\n    - allow: 'args.flag'\n")).not.toThrow();
  });
});

describe('policy loading: the result', () => {
  const policy = `version: 1
name: payments
tools:
  send_money:
    - forbid: 'args.amount <= 0.0'
    - allow: true
budgets:
  spend:
    limit: 100
    window: 1d
`;

  it('takes defaults from the root file', () => {
    const compiled = ok(policy);
    expect(compiled.name).toBe('payments');
    expect(compiled.mode).toBe('enforce');
    expect(compiled.default).toBe('deny');
    expect(ok('version: 1\n').name).toBe('p');
    expect(Object.isFrozen(compiled)).toBe(true);
  });

  it('has a hash that ignores formatting, comments and key order', () => {
    const reordered = `# the same policy
budgets: { spend: { window: 1d, limit: 100 } }
tools:
  send_money:
    - forbid: "args.amount <= 0.0"
    - { allow: true }
name: payments
version: 1
`;
    expect(ok(reordered).hash).toBe(ok(policy).hash);
    expect(ok(policy).hash).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('has a hash that changes with any meaning', () => {
    const hashes = new Set([
      ok(policy).hash,
      ok(policy.replace('0.0', '1.0')).hash,
      ok(policy.replace('limit: 100', 'limit: 101')).hash,
      ok(policy.replace('name: payments', 'name: other')).hash,
      ok(`${policy}default: require_approval\n`).hash,
      ok(
        policy.replace(
          "    - forbid: 'args.amount <= 0.0'\n    - allow: true",
          "    - allow: true\n    - forbid: 'args.amount <= 0.0'",
        ),
      ).hash,
    ]);
    expect(hashes.size).toBe(6);
  });
});
