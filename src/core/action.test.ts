import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isId, parseAction, parseRfc3339, sameParty, TOOL_NAME } from './action.js';

afterEach(() => {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
});

const base = { tool: 'send_money', principal: { id: 'agent-1' }, session: { id: 's1' } };

function issues(input: unknown) {
  const parsed = parseAction(input);
  expect(parsed.ok).toBe(false);
  return parsed.ok ? [] : parsed.issues;
}

function paths(input: unknown) {
  return issues(input).map((i) => i.path);
}

describe('parseAction: a valid action', () => {
  it('is normalized with defaults', () => {
    const parsed = parseAction(base);
    expect(parsed).toEqual({
      ok: true,
      action: {
        tool: 'send_money',
        args: {},
        principal: { id: 'agent-1', roles: [], attrs: {} },
        session: { id: 's1', attrs: {}, labels: [] },
        estimate: {},
        meta: {},
      },
    });
  });

  it('keeps every optional field and sorts and deduplicates labels', () => {
    const parsed = parseAction({
      ...base,
      args: { amount: 5 },
      principal: { id: 'agent-1', tenant: 'acme', roles: ['payer'], attrs: { level: 2 } },
      session: { id: 's1', attrs: { payees: ['bob'] }, labels: ['b', 'a', 'b'] },
      idempotencyKey: 'k1',
      nonce: 'n1',
      issuedAt: '2026-11-23T10:00:00.5+01:00',
      estimate: { cost: 12.5 },
      meta: { trace: 'x' },
      signature: 'hmac-sha256:AAAA',
    });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.action.session.labels).toEqual(['a', 'b']);
    expect(parsed.action.issuedAt).toBe(Date.UTC(2026, 10, 23, 9, 0, 0, 500));
    expect(parsed.action.estimate).toEqual({ cost: 12.5 });
    expect(parsed.action.principal.tenant).toBe('acme');
    expect(parsed.action.idempotencyKey).toBe('k1');
    expect(parsed.action.signature).toBe('hmac-sha256:AAAA');
  });

  it('does not share objects with its input', () => {
    const args = { nested: { x: 1 } };
    const parsed = parseAction({ ...base, args });
    args.nested.x = 2;
    expect(parsed.ok && parsed.action.args).toEqual({ nested: { x: 1 } });
  });
});

describe('parseAction: prototype keys stay data', () => {
  const hostile =
    '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}';

  it.each(['args', 'meta'])('in %s', (field) => {
    const input = JSON.parse(
      `{"tool":"a","principal":{"id":"p"},"session":{"id":"s"},"${field}":${hostile}}`,
    );
    const parsed = parseAction(input);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const value = parsed.action[field as 'args' | 'meta'];
    expect(Object.keys(value)).toEqual(['__proto__', 'constructor', 'prototype']);
    expect(Object.getPrototypeOf(value)).toBeNull();
    expect((value as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ polluted: 'yes' });
  });

  it('in principal.attrs, session.attrs and estimate', () => {
    const input = JSON.parse(
      `{"tool":"a","principal":{"id":"p","attrs":${hostile}},"session":{"id":"s","attrs":${hostile}},` +
        '"estimate":{"__proto__":1,"constructor":2}}',
    );
    const parsed = parseAction(input);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(Object.keys(parsed.action.principal.attrs)).toContain('__proto__');
    expect(Object.keys(parsed.action.session.attrs)).toContain('constructor');
    expect(Object.keys(parsed.action.estimate).sort()).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(parsed.action.estimate)).toBeNull();
  });

  it('at the top level, as unknown keys', () => {
    const input = JSON.parse(
      '{"tool":"a","principal":{"id":"p"},"session":{"id":"s"},"__proto__":{"polluted":1}}',
    );
    expect(issues(input)).toEqual([
      {
        path: 'action',
        message: expect.stringMatching(/^unknown key "__proto__"; expected one of tool, args/),
      },
    ]);
  });
});

describe('parseAction: numbers JSON cannot carry', () => {
  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])('%s', (n) => {
    expect(
      issues({
        ...base,
        args: { a: n, list: [1, n] },
        meta: { m: n },
        principal: { id: 'p', attrs: { x: n } },
        estimate: { cost: n },
      }),
    ).toEqual([
      { path: 'args.a', message: `${n} is not a JSON number` },
      { path: 'args.list[1]', message: `${n} is not a JSON number` },
      { path: 'principal.attrs.x', message: `${n} is not a JSON number` },
      { path: 'estimate.cost', message: 'must be a finite number ≥ 0' },
      { path: 'meta.m', message: `${n} is not a JSON number` },
    ]);
  });

  it('accepts -0, tiny and huge finite numbers', () => {
    const parsed = parseAction({ ...base, args: { a: -0, b: 5e-324, c: 1.7976931348623157e308 } });
    expect(parsed.ok).toBe(true);
  });

  it('rejects a negative estimate', () => {
    expect(issues({ ...base, estimate: { cost: -1 } })).toEqual([
      { path: 'estimate.cost', message: 'must be a finite number ≥ 0' },
    ]);
  });
});

describe('parseAction: hostile sizes', () => {
  it('turns 10,000 levels of nesting into one issue (objects)', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 10_000; i++) {
      const next = {};
      deep.a = next;
      deep = next;
    }
    const found = issues({ ...base, args: root });
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toBe('nested deeper than 32');
    expect(found[0]!.path.startsWith('args.a.a.a')).toBe(true);
  });

  it('turns 10,000 levels of nesting into one issue (arrays, parsed from JSON text)', () => {
    const text = `{"tool":"a","principal":{"id":"p"},"session":{"id":"s"},"args":{"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`;
    const found = issues(JSON.parse(text));
    expect(found).toHaveLength(1);
    expect(found[0]!.path).toMatch(/^args\.x(\[0\])+$/);
    expect(found[0]!.message).toBe('nested deeper than 32');
  });

  it('turns 100,000 keys into one issue, quickly', () => {
    const args = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]));
    const started = performance.now();
    expect(issues({ ...base, args })).toEqual([
      { path: 'args.k9999', message: 'more than 10000 values' },
    ]);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('turns a 100,000-element array into one issue', () => {
    expect(issues({ ...base, args: { list: Array.from({ length: 100_000 }, () => 0) } })).toEqual([
      { path: 'args.list', message: 'more than 10000 values' },
    ]);
  });

  it('rejects strings over a million code units', () => {
    expect(issues({ ...base, args: { s: 'x'.repeat(1_000_001) } })).toEqual([
      { path: 'args.s', message: 'string longer than 1000000' },
    ]);
  });

  it('rejects more than 1000 roles or labels', () => {
    const many = Array.from({ length: 1001 }, (_, i) => `r${i}`);
    expect(paths({ ...base, principal: { id: 'p', roles: many } })).toEqual(['principal.roles']);
    expect(paths({ ...base, session: { id: 's', labels: many } })).toEqual(['session.labels']);
  });
});

describe('parseAction: lone surrogates', () => {
  it('in args values and keys', () => {
    expect(paths({ ...base, args: { a: 'x\ud800', b: ['\udfff'] } })).toEqual([
      'args.a',
      'args.b[0]',
    ]);
    expect(paths({ ...base, args: { '\ud800': 1 } })).toEqual(['args']);
  });

  it('in ids, labels and the tool name', () => {
    expect(paths({ ...base, tool: 'a\ud800' })).toEqual(['tool']);
    expect(paths({ ...base, principal: { id: '\ud800' } })).toEqual(['principal.id']);
    expect(paths({ ...base, session: { id: 's', labels: ['\udc00'] } })).toEqual([
      'session.labels[0]',
    ]);
    expect(paths({ ...base, nonce: 'n\ud800' })).toEqual(['nonce']);
  });
});

describe('ids read as what they are', () => {
  it.each([
    [' agent-7', 'a space at the start'],
    ['agent-7 ', 'a space at the end'],
    ['\u00a0agent-7', 'a no-break space at the start'],
    ['   ', 'only spaces'],
    ['\u200b', 'nothing visible'],
    ['\u2800', 'a blank Braille pattern'],
    ['\u200b agent-7', 'a space behind an invisible character'],
    ['agent-7 \u2060', 'a space before an invisible character'],
    ['\u200b\ufe0f', 'nothing visible either'],
    ['agent\u202e-7', 'a bidi override'],
    ['\ufeffagent-7', 'a byte order mark'],
    ['agent\u2028-7', 'a line separator'],
  ])('refuses %j (%s)', (id) => {
    expect(isId(id)).toBe(false);
    expect(paths({ ...base, principal: { id } })).toEqual(['principal.id']);
  });

  it('accepts inner spaces and any script', () => {
    // Joiners that real names use stay: the ZWNJ of Persian, the ZWJ of an emoji sequence.
    for (const id of [
      'Jane Doe',
      'agent-7',
      'агент-7',
      '代理',
      'a:b/c@d',
      'می\u200cخواهم',
      'team-👩\u200d💻',
    ])
      expect(isId(id)).toBe(true);
  });

  it('takes case and compatibility forms of one name as the same party', () => {
    expect(sameParty('agent-7', 'Agent-7')).toBe(true);
    expect(sameParty('agent-7', '\uff41gent-7')).toBe(true);
    // Case-folded, not only lower-cased: a final sigma, and what upper case merges.
    expect(sameParty('agentσ', 'AGENTΣ')).toBe(true);
    expect(sameParty('agentς', 'agentσ')).toBe(true);
    expect(sameParty('straße', 'STRASSE')).toBe(true);
    expect(sameParty('ǆ-bot', 'ǅ-bot')).toBe(true);
    expect(sameParty('straße', 'STRAẞE')).toBe(true);
    // Whatever one case mapping merges, so does sameParty: every code point is the same
    // party as its lower and its upper case.
    for (let cp = 0; cp <= 0x1ffff; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      if (!sameParty(`a${c}`, `a${c.toLowerCase()}`) || !sameParty(`a${c}`, `a${c.toUpperCase()}`))
        expect.fail(`U+${cp.toString(16)} (${c}) is another party in another case`);
    }
    // Invisible characters do not make another party.
    for (const invisible of [
      '\u200b',
      '\u034f',
      '\ufe0f',
      '\u180b',
      '\u3164',
      '\u00ad',
      '\ufff9',
      '\u0600',
      '\u2800',
    ])
      expect(sameParty('alice', `ali${invisible}ce`)).toBe(true);
    expect(sameParty('agent-7', 'agent-8')).toBe(false);
  });
});

describe('parseAction: tool names', () => {
  it.each([
    ['Cyrillic о in send_mоney', 'send_m\u043eney'],
    ['Greek ο', 'send_m\u03bfney'],
    ['full-width letters', '\uff53\uff45\uff4e\uff44_money'],
    ['a zero-width joiner', 'send\u200d_money'],
    ['a zero-width space at the end', 'send_money\u200b'],
    ['a right-to-left override', '\u202esend_money'],
    ['a right-to-left mark', 'send_money\u200f'],
    ['a combining accent', 'send_mone\u0301y'],
    ['a soft hyphen', 'send_\u00admoney'],
    ['a non-breaking space', 'send\u00a0money'],
    ['a space', 'send money'],
    ['a newline', 'send_money\n'],
    ['a NUL', 'send_money\u0000'],
    ['the empty string', ''],
    ['a leading dash', '-send_money'],
    ['a leading dot', '.hidden'],
    ['a leading slash', '/etc'],
    ['a glob star', 'send_*'],
    ['129 characters', `a${'b'.repeat(128)}`],
  ])('rejects %s', (_, tool) => {
    const found = issues({ ...base, tool });
    expect(found).toHaveLength(1);
    expect(found[0]!.path).toBe('tool');
    expect(found[0]!.message).toMatch(/is not a valid tool name \(ASCII/);
  });

  it.each([
    'send_money',
    'k8s.apply',
    'github/create_issue',
    'mcp:fs/read-file',
    '_private',
    '9lives',
    `a${'b'.repeat(127)}`,
  ])('accepts %s', (tool) => {
    expect(parseAction({ ...base, tool }).ok).toBe(true);
    expect(TOOL_NAME.test(tool)).toBe(true);
  });

  it('rejects a tool that is not a string', () => {
    for (const tool of [5, null, ['a'], { name: 'a' }, undefined]) {
      expect(issues({ ...base, tool })).toEqual([{ path: 'tool', message: 'must be a string' }]);
    }
  });

  it('shortens a huge tool name in the message', () => {
    const found = issues({ ...base, tool: 'x'.repeat(100_000) });
    expect(found[0]!.message.length).toBeLessThan(300);
  });
});

describe('parseAction: structure', () => {
  it('lists every unknown key, at every level', () => {
    expect(
      issues({
        ...base,
        toool: 1,
        principal: { id: 'p', role: 'x' },
        session: { id: 's', label: [] },
      }),
    ).toEqual([
      {
        path: 'action',
        message: expect.stringContaining('unknown key "toool"; expected one of tool'),
      },
      {
        path: 'principal',
        message: 'unknown key "role"; expected one of id, tenant, roles, attrs',
      },
      { path: 'session', message: 'unknown key "label"; expected one of id, attrs, labels' },
    ]);
  });

  it('requires principal and session, each with an id', () => {
    expect(paths({ tool: 'a' })).toEqual(['principal', 'session']);
    expect(paths({ tool: 'a', principal: {}, session: {} })).toEqual([
      'principal.id',
      'session.id',
    ]);
    expect(paths({ tool: 'a', principal: { id: '' }, session: { id: 'x'.repeat(257) } })).toEqual([
      'principal.id',
      'session.id',
    ]);
    expect(paths({ tool: 'a', principal: { id: 'a\nb' }, session: { id: 's' } })).toEqual([
      'principal.id',
    ]);
  });

  it('reports every wrong type with its path', () => {
    expect(
      paths({
        tool: 5,
        args: [],
        principal: 'p',
        session: null,
        idempotencyKey: 1,
        nonce: {},
        issuedAt: 1_700_000_000_000,
        estimate: [],
        meta: 'm',
        signature: false,
      }),
    ).toEqual([
      'tool',
      'args',
      'principal',
      'session',
      'idempotencyKey',
      'nonce',
      'signature',
      'issuedAt',
      'estimate',
      'meta',
    ]);
    expect(
      paths({
        ...base,
        principal: { id: 'p', tenant: 3, roles: 'admin', attrs: [] },
        session: { id: 7, attrs: 'x', labels: [1] },
      }),
    ).toEqual([
      'principal.tenant',
      'principal.roles',
      'principal.attrs',
      'session.id',
      'session.attrs',
      'session.labels[0]',
    ]);
  });

  it.each([null, undefined, [], 'action', 42, true])('rejects %j as a whole', (input) => {
    expect(issues(input)).toEqual([{ path: 'action', message: 'must be an object' }]);
  });

  it('accepts a null-prototype object and a frozen one', () => {
    expect(parseAction(Object.assign(Object.create(null), base)).ok).toBe(true);
    expect(parseAction(Object.freeze({ ...base, args: Object.freeze({ a: 1 }) })).ok).toBe(true);
  });

  it('reads only the fields a request has itself, never inherited ones', () => {
    // Built on a prototype: the request has no fields of its own.
    expect(issues(Object.create(base)).map((i) => i.path)).toEqual([
      'tool',
      'principal',
      'session',
    ]);
    // A polluted Object.prototype adds nothing to a request that lacks the field.
    const proto = Object.prototype as Record<string, unknown>;
    proto.nonce = 'from-the-prototype';
    proto.id = 'inherited-id';
    try {
      const parsed = parseAction({ tool: 't', principal: {}, session: { id: 's' } });
      expect(parsed.ok).toBe(false);
      const action = parseAction(base);
      expect(action.ok && Object.hasOwn(action.action, 'nonce')).toBe(false);
    } finally {
      delete proto.nonce;
      delete proto.id;
    }
    // Nor through the holes of a sparse list.
    proto[0] = 'attacker';
    try {
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      const roles = [, 'viewer'];
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      const to = [, 'bob'];
      const parsed = parseAction({ ...base, principal: { id: 'p', roles }, args: { to } });
      expect(parsed.ok).toBe(false);
      expect(JSON.stringify(parsed)).not.toContain('attacker');
      expect(issues({ ...base, principal: { id: 'p', roles } })).toEqual([
        { path: 'principal.roles[0]', message: 'is missing' },
      ]);
    } finally {
      delete proto[0];
    }
  });

  it('rejects class instances inside args', () => {
    expect(issues({ ...base, args: { when: new Date(0) } })).toEqual([
      { path: 'args.when', message: 'is not a plain JSON object' },
    ]);
  });
});

describe('parseAction: issuedAt', () => {
  it.each([
    ['2026-11-23T10:00:00Z', Date.UTC(2026, 10, 23, 10)],
    ['2026-11-23T10:00:00.123456789Z', Date.UTC(2026, 10, 23, 10, 0, 0, 123)],
    ['2026-11-23T10:00:00-05:30', Date.UTC(2026, 10, 23, 15, 30)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29T00:00:00Z', Date.UTC(2000, 1, 29)],
  ])('accepts %s', (text, ms) => {
    const parsed = parseAction({ ...base, issuedAt: text });
    expect(parsed.ok && parsed.action.issuedAt).toBe(ms);
    expect(parseRfc3339(text)).toBe(ms);
  });

  it.each([
    '2026-02-30T00:00:00Z',
    '2026-02-29T00:00:00Z',
    '1900-02-29T00:00:00Z',
    '2026-04-31T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-00-10T00:00:00Z',
    '2026-01-00T00:00:00Z',
    '2026-01-01T24:00:01Z',
    '2026-01-01T00:60:00Z',
    '2026-01-01T00:00:00+25:00',
    '2026-01-01',
    '2026-01-01 00:00:00Z',
    '2026-01-01T00:00:00',
    'Thu, 01 Jan 2026 00:00:00 GMT',
    '1',
    '',
  ])('rejects %j', (text) => {
    expect(issues({ ...base, issuedAt: text })).toEqual([
      { path: 'issuedAt', message: 'must be an RFC 3339 time such as 2026-11-23T10:00:00Z' },
    ]);
    expect(parseRfc3339(text)).toBeUndefined();
  });
});

describe('parseAction never throws', () => {
  it('on getters and proxies that throw', () => {
    const args = {
      get secret() {
        throw new Error('boom');
      },
    };
    expect(issues({ ...base, args })).toEqual([
      { path: 'args.secret', message: 'cannot be read: boom' },
    ]);
    const top = {
      ...base,
      get tool(): string {
        throw new Error('top');
      },
    };
    expect(issues(top)).toEqual([{ path: 'action', message: 'cannot be read: top' }]);
    const proxy = new Proxy(
      { ...base },
      {
        ownKeys() {
          throw new Error('trap');
        },
      },
    );
    expect(issues(proxy)[0]!.path).toBe('action');
  });

  it('on arbitrary input, and every issue has a path and a message', () => {
    const action = fc.record(
      {
        tool: fc.oneof(fc.string(), fc.constantFrom('a', 'send_money', 'k8s.apply'), fc.anything()),
        args: fc.oneof(fc.object(), fc.anything()),
        principal: fc.oneof(fc.record({ id: fc.string() }), fc.anything()),
        session: fc.oneof(
          fc.record({ id: fc.string(), labels: fc.array(fc.string()) }, { requiredKeys: ['id'] }),
          fc.anything(),
        ),
        issuedAt: fc.oneof(
          fc.date().map((d) => (Number.isNaN(d.getTime()) ? 'x' : d.toISOString())),
          fc.anything(),
        ),
        estimate: fc.oneof(fc.dictionary(fc.string(), fc.double()), fc.anything()),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(action, fc.anything()), (input) => {
        const parsed = parseAction(input);
        if (!parsed.ok) {
          expect(parsed.issues.length).toBeGreaterThan(0);
          for (const issue of parsed.issues) {
            expect(issue.path.length).toBeGreaterThan(0);
            expect(issue.message.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
