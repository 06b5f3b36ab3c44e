import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAction } from '../core/action.js';
import type { Decision } from '../core/decision.js';
import { decideScope } from '../engine/decide.js';
import { type CompiledPolicy, compilePolicy } from './compile.js';
import { buildContext, evaluateScope, labelsAfter } from './evaluate.js';

const NOW = Date.parse('2026-11-23T10:00:00Z');

function load(text: string): CompiledPolicy {
  return compilePolicy({ path: 'p.yaml', text });
}

function decide(
  policy: CompiledPolicy,
  tool: string,
  extra: Record<string, unknown> = {},
  approved = false,
): Decision {
  return decideScope(
    policy,
    { tool, principal: { id: 'agent' }, session: { id: 's1' }, ...extra },
    { now: NOW, id: 'dec_1', approved },
  );
}

const summary = (d: Decision) => [
  d.outcome,
  ...d.reasons.map((r) => `${r.code} ${r.rule ?? ''}`.trim()),
];

describe('scope precedence', () => {
  const policy = load(`version: 1
tools:
  send_money:
    - allow: 'args.recipient == "bob"'
    - require_approval: 'args.amount > 100.0'
    - forbid: 'args.amount <= 0.0'
`);

  it('any matching forbid denies, naming every matching rule', () => {
    expect(
      summary(decide(policy, 'send_money', { args: { recipient: 'bob', amount: -1 } })),
    ).toEqual([
      'deny',
      'DENIED_BY_RULE tools.send_money[2]',
      'ALLOWED_BY_RULE tools.send_money[0]',
    ]);
  });

  it('else a matching require_approval asks, even when an allow matches', () => {
    expect(
      summary(decide(policy, 'send_money', { args: { recipient: 'bob', amount: 500 } })),
    ).toEqual([
      'approval_required',
      'APPROVAL_REQUIRED tools.send_money[1]',
      'ALLOWED_BY_RULE tools.send_money[0]',
    ]);
  });

  it('else a matching allow allows', () => {
    expect(
      summary(decide(policy, 'send_money', { args: { recipient: 'bob', amount: 5 } })),
    ).toEqual(['allow', 'ALLOWED_BY_RULE tools.send_money[0]']);
  });

  it('else the default denies a named tool', () => {
    expect(
      summary(decide(policy, 'send_money', { args: { recipient: 'eve', amount: 5 } })),
    ).toEqual(['deny', 'NO_MATCHING_RULE']);
  });

  it('does not depend on the order of the rules', () => {
    const rules = [
      '- allow: \'args.recipient == "bob"\'',
      "- require_approval: 'args.amount > 100.0'",
      "- forbid: 'args.amount <= 0.0'",
      "- allow: 'args.amount < 1000.0'",
    ];
    const indices = rules.map((_, i) => i);
    const permutations = fc.shuffledSubarray(indices, {
      minLength: indices.length,
      maxLength: indices.length,
    });
    fc.assert(
      fc.property(
        permutations,
        fc.constantFrom('bob', 'eve'),
        fc.constantFrom(-5, 0, 5, 150, 5000),
        (order, recipient, amount) => {
          const shuffled = load(
            `version: 1\ntools:\n  send_money:\n${order.map((i) => `    ${rules[i]}`).join('\n')}\n`,
          );
          const reference = load(
            `version: 1\ntools:\n  send_money:\n${rules.map((r) => `    ${r}`).join('\n')}\n`,
          );
          const args = { recipient, amount };
          const a = decide(shuffled, 'send_money', { args });
          const b = decide(reference, 'send_money', { args });
          expect(a.outcome).toBe(b.outcome);
          expect(a.reasons.map((r) => r.code).sort()).toEqual(b.reasons.map((r) => r.code).sort());
        },
      ),
      { numRuns: 60 },
    );
  });

  it('an approval stands in for require_approval but never overrides a forbid', () => {
    expect(
      decide(policy, 'send_money', { args: { recipient: 'eve', amount: 500 } }, true).outcome,
    ).toBe('allow');
    expect(
      summary(decide(policy, 'send_money', { args: { recipient: 'bob', amount: -500 } }, true))[0],
    ).toBe('deny');
  });

  it('an approval does not allow what nothing asked approval for', () => {
    expect(
      decide(policy, 'send_money', { args: { recipient: 'eve', amount: 5 } }, true).outcome,
    ).toBe('deny');
  });

  it('uses the shortest expiry among matching require_approval rules', () => {
    const p = load(`version: 1
tools:
  t:
    - require_approval: true
      expires: 1h
    - require_approval: true
      expires: 90s
    - require_approval: false
      expires: 1s
`);
    const action = parseAction({ tool: 't', principal: { id: 'a' }, session: { id: 's' } });
    if (!action.ok) throw new Error('invalid action');
    const verdict = evaluateScope(p, buildContext(action.action, NOW));
    expect(verdict.outcome).toBe('approval_required');
    expect(verdict.approvalExpiresMs).toBe(90_000);
  });
});

describe('defaults and unnamed tools', () => {
  const asking = load(`version: 1
default: require_approval
tools:
  named:
    - forbid: 'args.bad == true'
    - allow: 'args.ok == true'
flow:
  - allow: true
`);

  it('default: require_approval asks for a named tool no allow matched', () => {
    expect(summary(decide(asking, 'named', { args: { ok: false, bad: false } }))).toEqual([
      'allow',
      'ALLOWED_BY_RULE flow[0]',
    ]);
    const noFlow = load(
      'version: 1\ndefault: require_approval\ntools:\n  named:\n    - allow: false\n',
    );
    expect(summary(decide(noFlow, 'named'))).toEqual([
      'approval_required',
      'APPROVAL_REQUIRED default',
    ]);
  });

  it('default: require_approval never overrides a forbid', () => {
    expect(decide(asking, 'named', { args: { ok: true, bad: true } }).outcome).toBe('deny');
  });

  it('an unnamed tool is always denied, whatever the default and flow allows', () => {
    const d = decide(asking, 'other');
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]).toEqual({
      code: 'NO_MATCHING_RULE',
      message: 'the policy does not name the tool other',
    });
    expect(decide(asking, 'other', {}, true).outcome).toBe('deny');
  });

  it('a policy with no tools denies everything', () => {
    expect(summary(decide(load('version: 1\n'), 'anything'))).toEqual(['deny', 'NO_MATCHING_RULE']);
  });

  it('tool names are case-sensitive', () => {
    expect(decide(asking, 'Named', { args: { ok: true } }).outcome).toBe('deny');
  });
});

describe('which tools may need an approval', () => {
  const policies = {
    rules: load(`version: 1
tools:
  pay:
    - require_approval: 'args.amount > 100.0'
    - allow: true
  read:
    - allow: true
  "files.*":
    - forbid: 'args.path == "/etc"'
    - allow: true
flow:
  - require_approval: 'glob.match("k8s.*", tool) && args.cluster == "prod"'
  - forbid: 'args.evil == true'
`),
    byDefault: load(`version: 1
default: require_approval
tools:
  read:
    - allow: 'args.ok == true'
`),
  };
  const tools = ['pay', 'read', 'files.list', 'k8s.apply', 'other'];

  it('knows from the rules and the default alone', () => {
    const may = (policy: CompiledPolicy) =>
      tools.filter((tool) => policy.scopeFor(tool).mayRequireApproval);
    expect(may(policies.rules)).toEqual(['pay']);
    expect(may(policies.byDefault)).toEqual(['read']);
  });

  it('an approval changes no decision of a tool that cannot need one, on random calls', () => {
    const args = fc.record(
      {
        amount: fc.constantFrom(5, 500),
        path: fc.constantFrom('/etc', '/srv'),
        cluster: fc.constantFrom('prod', 'dev'),
        evil: fc.boolean(),
        ok: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.values(policies)),
        fc.constantFrom(...tools),
        args,
        (policy, tool, a) => {
          if (policy.scopeFor(tool).mayRequireApproval) return;
          const parsed = parseAction({
            tool,
            args: a,
            principal: { id: 'p' },
            session: { id: 's' },
          });
          if (!parsed.ok) throw new Error('the call is valid');
          const ctx = buildContext(parsed.action, NOW);
          const verdict = evaluateScope(policy, ctx, false);
          expect(verdict.outcome).not.toBe('approval_required');
          expect(evaluateScope(policy, ctx, true)).toEqual(verdict);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('glob tool patterns', () => {
  const policy = load(`version: 1
tools:
  "search_*":
    - allow: true
  "github/**":
    - allow: true
  "k8s.?et":
    - allow: true
  "db_[rw]":
    - allow: true
  "search_web":
    - forbid: 'args.q == "secrets"'
`);

  it.each([
    ['search_web', 'allow'],
    ['search_', 'allow'],
    ['search_a.b', 'allow'],
    ['search/x', 'deny'],
    ['search_a/b', 'deny'],
    ['Search_web', 'deny'],
    ['xsearch_web', 'deny'],
    ['github/repos/create', 'allow'],
    ['github', 'deny'],
    ['k8s.get', 'allow'],
    ['k8s.set', 'allow'],
    ['k8s.gets', 'deny'],
    ['k8sxget', 'deny'],
    ['db_r', 'allow'],
    ['db_x', 'deny'],
  ])('%s → %s', (tool, outcome) => {
    expect(decide(policy, tool, { args: { q: 'weather' } }).outcome).toBe(outcome);
  });

  it.each([
    ['Cyrillic а', 'se\u0430rch_web'],
    ['full-width', 'search_\uff57eb'],
    ['a zero-width joiner', 'search_w\u200deb'],
    ['an RTL mark', 'search_web\u200f'],
  ])('a look-alike with %s is an invalid request, not a glob match', (_, tool) => {
    const d = decide(policy, tool);
    expect(d.outcome).toBe('deny');
    expect(d.reasons.map((r) => r.code)).toEqual(['INVALID_REQUEST']);
    expect(d.actionDigest).toBe('');
  });

  it('merges exact and glob rules in declaration order', () => {
    const d = decide(policy, 'search_web', { args: { q: 'secrets' } });
    expect(summary(d)).toEqual([
      'deny',
      'DENIED_BY_RULE tools.search_web[0]',
      'ALLOWED_BY_RULE tools.search_*[0]',
    ]);
  });

  it('a negated set does not match the separator', () => {
    const p = load('version: 1\ntools:\n  "api_[!x]*":\n    - allow: true\n');
    expect(decide(p, 'api_ab').outcome).toBe('allow');
    expect(decide(p, 'api_/admin').outcome).toBe('deny');
    expect(decide(p, 'api_x').outcome).toBe('deny');
  });
});

describe('condition errors', () => {
  const policy = load(`version: 1
tools:
  f:
    - forbid: 'args.amount > 100.0'
    - allow: true
  a:
    - allow: 'args.amount > 100.0'
  r:
    - require_approval: 'args.amount > 100.0'
    - allow: true
  nonbool:
    - forbid: 'args.flag'
    - allow: true
`);

  it('an error in a forbid forbids with CONDITION_ERROR and the error text', () => {
    const d = decide(policy, 'f', { args: {} });
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]).toMatchObject({
      code: 'CONDITION_ERROR',
      rule: 'tools.f[0]',
      error: expect.stringContaining('amount'),
    });
    const wrongType = decide(policy, 'f', { args: { amount: '500' } });
    expect(wrongType.outcome).toBe('deny');
    expect(wrongType.reasons[0]!.code).toBe('CONDITION_ERROR');
  });

  it('an error in an allow does not allow, and is named', () => {
    expect(summary(decide(policy, 'a', { args: {} }))).toEqual([
      'deny',
      'NO_MATCHING_RULE',
      'CONDITION_ERROR tools.a[0]',
    ]);
    expect(summary(decide(policy, 'a', { args: { amount: 'lots' } }))).toEqual([
      'deny',
      'NO_MATCHING_RULE',
      'CONDITION_ERROR tools.a[0]',
    ]);
    expect(decide(policy, 'a', { args: { amount: 500 } }).outcome).toBe('allow');
  });

  it('an error in a require_approval asks', () => {
    const d = decide(policy, 'r', { args: { amount: null } });
    expect(d.outcome).toBe('approval_required');
    expect(d.reasons.map((r) => r.code)).toEqual(['CONDITION_ERROR', 'ALLOWED_BY_RULE']);
  });

  it('a forbid whose value is not a bool forbids', () => {
    const d = decide(policy, 'nonbool', { args: { flag: 'yes' } });
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]).toMatchObject({
      code: 'CONDITION_ERROR',
      error: 'condition returned string, not a bool',
    });
    expect(decide(policy, 'nonbool', { args: { flag: false } }).outcome).toBe('allow');
  });

  it('int arithmetic on JSON numbers is an error, so a forbid using it forbids', () => {
    const p = load(
      "version: 1\ntools:\n  t:\n    - forbid: 'args.n + 1 > 10'\n    - allow: true\n",
    );
    expect(decide(p, 't', { args: { n: 1 } }).reasons[0]!.code).toBe('CONDITION_ERROR');
    const doubles = load(
      "version: 1\ntools:\n  t:\n    - forbid: 'args.n + 1.0 > 10.0'\n    - allow: true\n",
    );
    expect(decide(doubles, 't', { args: { n: 1 } }).outcome).toBe('allow');
    expect(decide(doubles, 't', { args: { n: 10 } }).outcome).toBe('deny');
  });
});

describe('flow rules and labels', () => {
  const policy = load(`version: 1
tools:
  send_money:
    - allow: true
  get_webpage:
    - allow: true
labels:
  untrusted-content:
    when: 'tool == "get_webpage"'
  doubtful:
    when: 'args.missing == 1'
flow:
  - name: no-money-after-web
    forbid: '"untrusted-content" in session.labels && tool == "send_money" && !(args.to in session.attrs.payees)'
  - name: audit-everything
    require_approval: 'tool == "unlisted"'
`);

  it('apply to every tool, named or not', () => {
    const d = decide(policy, 'unlisted');
    expect(summary(d)).toEqual(['deny', 'NO_MATCHING_RULE', 'APPROVAL_REQUIRED audit-everything']);
  });

  it('read labels from session.labels', () => {
    const session = { id: 's1', attrs: { payees: ['bob'] }, labels: ['untrusted-content'] };
    expect(decide(policy, 'send_money', { args: { to: 'bob' }, session }).outcome).toBe('allow');
    const d = decide(policy, 'send_money', { args: { to: 'eve' }, session });
    expect(summary(d)).toEqual([
      'deny',
      'DENIED_BY_RULE no-money-after-web',
      'ALLOWED_BY_RULE tools.send_money[0]',
    ]);
    const clean = { id: 's1', attrs: { payees: ['bob'] } };
    expect(decide(policy, 'send_money', { args: { to: 'eve' }, session: clean }).outcome).toBe(
      'allow',
    );
  });

  it('a session view from the store adds labels and replaces attrs', () => {
    const parsed = parseAction({
      tool: 'send_money',
      args: { to: 'eve' },
      principal: { id: 'a' },
      session: { id: 's1', attrs: { payees: ['eve'] } },
    });
    if (!parsed.ok) throw new Error('invalid');
    const ctx = buildContext(parsed.action, NOW, {
      attrs: { payees: ['bob'] },
      labels: ['untrusted-content'],
    });
    expect(evaluateScope(policy, ctx).outcome).toBe('deny');
  });

  it('label rules mark the session after a matching call; an error marks too', () => {
    const parsed = parseAction({
      tool: 'get_webpage',
      principal: { id: 'a' },
      session: { id: 's' },
    });
    if (!parsed.ok) throw new Error('invalid');
    expect(labelsAfter(policy, buildContext(parsed.action, NOW))).toEqual([
      'untrusted-content',
      'doubtful',
    ]);
    const withArg = parseAction({
      tool: 'x',
      args: { missing: 2 },
      principal: { id: 'a' },
      session: { id: 's' },
    });
    if (!withArg.ok) throw new Error('invalid');
    expect(labelsAfter(policy, buildContext(withArg.action, NOW))).toEqual([]);
  });
});

describe('context', () => {
  it('exposes principal, request, estimate and now to conditions', () => {
    const policy = load(`version: 1
tools:
  t:
    - allow: >-
        principal.tenant == "acme" && "payer" in principal.roles && principal.attrs.level >= 2
        && has(request.nonce) && request.meta.trace == "x"
        && request.issuedAt < now && estimate.cost < 10.0
        && now == timestamp("2026-11-23T10:00:00Z")
`);
    const full = {
      principal: { id: 'a', tenant: 'acme', roles: ['payer'], attrs: { level: 2 } },
      nonce: 'n1',
      meta: { trace: 'x' },
      issuedAt: '2026-11-23T09:59:00Z',
      estimate: { cost: 5 },
    };
    expect(decide(policy, 't', full).outcome).toBe('allow');
    expect(decide(policy, 't', { ...full, estimate: { cost: 50 } }).outcome).toBe('deny');
    const { nonce: _, ...withoutNonce } = full;
    expect(decide(policy, 't', withoutNonce).outcome).toBe('deny');
  });

  it('keeps prototype keys of args as data and hides Object.prototype from conditions', () => {
    const policy = load(`version: 1
tools:
  t:
    - forbid: '"constructor" in args || "toString" in args || has(args.hasOwnProperty)'
    - allow: 'args.__proto__.admin == true'
`);
    const args = JSON.parse('{"__proto__":{"admin":true}}');
    expect(decide(policy, 't', { args }).outcome).toBe('allow');
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
  });
});

describe('shadow mode', () => {
  const policy = load(`version: 1
mode: shadow
tools:
  a:
    - forbid: true
  b:
    - require_approval: true
  c:
    - allow: true
`);

  it('allows what it would deny and records the real outcome', () => {
    const d = decide(policy, 'a');
    expect(d.outcome).toBe('allow');
    expect(d.reasons.map((r) => r.code)).toEqual(['SHADOW_MODE']);
    expect(d.shadow).toEqual({
      outcome: 'deny',
      reasons: [{ code: 'DENIED_BY_RULE', message: 'a forbid rule matched', rule: 'tools.a[0]' }],
    });
  });

  it('allows what would need approval, and what no rule names', () => {
    expect(decide(policy, 'b').shadow?.outcome).toBe('approval_required');
    expect(decide(policy, 'zzz').shadow?.outcome).toBe('deny');
    expect(decide(policy, 'zzz').outcome).toBe('allow');
  });

  it('leaves a real allow untouched', () => {
    const d = decide(policy, 'c');
    expect(d.outcome).toBe('allow');
    expect(d.shadow).toBeUndefined();
    expect(d.reasons.map((r) => r.code)).toEqual(['ALLOWED_BY_RULE']);
  });
});

describe('determinism', () => {
  const text = `version: 1
tools:
  send_money:
    - forbid: 'args.amount <= 0.0'
    - require_approval: 'args.amount > 100.0'
    - allow: 'args.to in session.attrs.payees'
  read_file:
    - allow: 'path.within(args.path, "/srv")'
flow:
  - forbid: '"tainted" in session.labels && tool == "send_money"'
`;
  const requests = [
    { tool: 'send_money', args: { amount: 5, to: 'bob' } },
    { tool: 'send_money', args: { to: 'bob', amount: 500 } },
    { tool: 'send_money', args: { amount: -1 } },
    { tool: 'read_file', args: { path: '/srv/../etc/passwd' } },
    { tool: 'read_file', args: { path: 5 } },
    { tool: 'nope' },
    { tool: 'send_m\u043eney' },
  ].map((r) => ({
    ...r,
    principal: { id: 'a' },
    session: { id: 's', attrs: { payees: ['bob'] } },
  }));

  it('gives byte-identical decisions for the same inputs, across compilations', () => {
    const first = requests.map((r) =>
      JSON.stringify(decideScope(load(text), r, { now: NOW, id: 'd' })),
    );
    const second = requests.map((r) =>
      JSON.stringify(decideScope(load(text), structuredClone(r), { now: NOW, id: 'd' })),
    );
    expect(second).toEqual(first);
    expect(new Set(first).size).toBe(first.length);
  });

  it('gives the same digest whatever the key order of args', () => {
    const policy = load(text);
    const a = decideScope(policy, requests[0]!, { now: NOW, id: 'd' });
    const b = decideScope(
      policy,
      { ...requests[0]!, args: { to: 'bob', amount: 5 } },
      { now: NOW, id: 'd' },
    );
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('puts the injected time and id in the decision', () => {
    const d = decideScope(load(text), requests[0]!, { now: NOW, id: 'dec_42' });
    expect(d.id).toBe('dec_42');
    expect(d.at).toBe('2026-11-23T10:00:00.000Z');
    expect(d.policyHash).toBe(load(text).hash);
  });
});

describe('objects with a key named constructor', () => {
  it('are maps to conditions like any other object', () => {
    const policy = compilePolicy({
      path: 'p.yaml',
      text: [
        'version: 1',
        'tools:',
        '  codegen:',
        `    - forbid: 'args.nested.constructor == "evil"'`,
        `    - forbid: 'has(principal.attrs.constructor) && principal.attrs.constructor == "evil"'`,
        `    - allow: 'args.lang == "ts" && args.constructor == "public" && has(args.nested.y)'`,
        '',
      ].join('\n'),
    });
    const decide = (args: object, attrs: object = {}) =>
      decideScope(
        policy,
        { tool: 'codegen', args, principal: { id: 'a', attrs }, session: { id: 's' } },
        { now: 0, id: 'd' },
      );
    const args = { lang: 'ts', constructor: 'public', nested: { y: 1, constructor: 'x' } };
    expect(decide(args).outcome).toBe('allow');
    expect(decide({ ...args, nested: { y: 1, constructor: 'evil' } }).reasons[0]).toMatchObject({
      code: 'DENIED_BY_RULE',
    });
    expect(decide(args, { constructor: 'evil' }).outcome).toBe('deny');
    const estimated = decideScope(
      compilePolicy({
        path: 'p.yaml',
        text: "version: 1\ntools:\n  t:\n    - forbid: 'estimate.tokens > 1000.0'\n    - allow: true\n",
      }),
      {
        tool: 't',
        args: {},
        principal: { id: 'a' },
        session: { id: 's' },
        estimate: { tokens: 5, constructor: 1 },
      },
      { now: 0, id: 'd' },
    );
    expect(estimated.outcome).toBe('allow');
  });
});
