import { describe, expect, it } from 'vitest';
import { formatIssue } from '../core/errors.js';
import { compilePolicy } from './compile.js';
import { runPolicyTests } from './policy-tests.js';

const policy = compilePolicy({
  path: 'p.yaml',
  text: `version: 1
tools:
  get_webpage:
    - allow: true
  send_money:
    - forbid: 'args.amount <= 0.0'
    - allow: 'args.to in session.attrs.payees'
labels:
  untrusted:
    when: 'tool == "get_webpage"'
flow:
  - name: no-payments-after-web
    require_approval: '"untrusted" in session.labels && tool == "send_money"'
`,
});

function run(text: string) {
  return runPolicyTests(policy, 'cases.yaml', text);
}

function issuesOf(text: string): string[] {
  const result = run(text);
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.issues.map(formatIssue);
}

const defaults = `defaults:
  principal: { id: agent }
  session: { id: s1, attrs: { payees: [bob] } }
`;

describe('runPolicyTests', () => {
  it('passes cases whose outcome, reasons and rules match', () => {
    const result = run(`${defaults}cases:
  - name: pays a payee
    action: { tool: send_money, args: { to: bob, amount: 5 } }
    expect: allow
  - name: refuses a negative amount
    action: { tool: send_money, args: { to: bob, amount: -5 } }
    expect: { outcome: deny, reasons: [DENIED_BY_RULE], rules: ['tools.send_money[0]'] }
`);
    expect(result).toEqual({
      ok: true,
      results: [
        { name: 'pays a payee', at: 'cases.yaml:5:5', passed: true, failures: [] },
        { name: 'refuses a negative amount', at: 'cases.yaml:8:5', passed: true, failures: [] },
      ],
    });
  });

  it('reports expected and actual for a failing case', () => {
    const result = run(`${defaults}cases:
  - name: wrong
    action: { tool: send_money, args: { to: eve, amount: 5 } }
    expect: { outcome: allow, reasons: [ALLOWED_BY_RULE] }
`);
    expect(result.ok && result.results).toEqual([
      {
        name: 'wrong',
        at: 'cases.yaml:5:5',
        passed: false,
        failures: [
          {
            step: 'send_money',
            expected: 'allow [ALLOWED_BY_RULE]',
            actual: 'deny [NO_MATCHING_RULE]',
          },
        ],
      },
    ]);
  });

  it('fails a case when a required rule is missing, even with the right outcome', () => {
    const result = run(`${defaults}cases:
  - name: names the wrong rule
    action: { tool: send_money, args: { to: eve, amount: -1 } }
    expect: { outcome: deny, rules: ['tools.send_money[1]'] }
`);
    expect(result.ok && result.results[0]!.failures).toEqual([
      {
        step: 'send_money',
        expected: 'deny [rules: tools.send_money[1]]',
        actual: 'deny [DENIED_BY_RULE tools.send_money[0]]',
      },
    ]);
  });

  it('carries labels from an allowed step to the next steps of the session', () => {
    const result = run(`${defaults}cases:
  - name: web then pay
    steps:
      - action: { tool: send_money, args: { to: bob, amount: 5 } }
        expect: allow
      - action: { tool: get_webpage, args: { url: x } }
        expect: allow
      - action: { tool: send_money, args: { to: bob, amount: 5 } }
        expect: { outcome: approval_required, rules: [no-payments-after-web] }
  - name: labels do not leak into the next case
    action: { tool: send_money, args: { to: bob, amount: 5 } }
    expect: allow
`);
    expect(result.ok && result.results.map((r) => r.passed)).toEqual([true, true]);
  });

  it('names the failing step of a multi-step case', () => {
    const result = run(`${defaults}cases:
  - name: steps
    steps:
      - action: { tool: get_webpage }
        expect: allow
      - action: { tool: send_money, args: { to: bob, amount: 5 } }
        expect: allow
`);
    expect(result.ok && result.results[0]!.failures).toEqual([
      {
        step: 'step 2 (send_money)',
        expected: 'allow',
        actual:
          'approval_required [APPROVAL_REQUIRED no-payments-after-web; ALLOWED_BY_RULE tools.send_money[1]]',
      },
    ]);
  });

  it('fails a case the engine would refuse for a plan it cannot work out', () => {
    const budgeted = compilePolicy({
      path: 'p.yaml',
      text: "version: 1\ntools:\n  t:\n    - allow: true\nbudgets:\n  spend: { per: 'principal.tenant', limit: 5, window: 1d, cost: '1' }\n",
    });
    const result = runPolicyTests(
      budgeted,
      'cases.yaml',
      'cases:\n  - name: no tenant\n    action: { tool: t, principal: { id: a }, session: { id: s } }\n    expect: allow\n',
    );
    expect(result.ok && result.results[0]).toMatchObject({
      passed: false,
      failures: [
        expect.objectContaining({
          actual: 'deny [CONDITION_ERROR budgets.spend.per; ALLOWED_BY_RULE tools.t[0]]',
        }),
      ],
    });
  });

  it('uses the file-wide now, or the case now', () => {
    const timed = compilePolicy({
      path: 't.yaml',
      text: `version: 1\ntools:\n  t:\n    - allow: 'now < timestamp("2026-06-01T00:00:00Z")'\n`,
    });
    const result = runPolicyTests(
      timed,
      'c.yaml',
      `${defaults}now: 2026-01-01T00:00:00Z
cases:
  - name: before
    action: { tool: t }
    expect: allow
  - name: after
    now: 2026-07-01T00:00:00Z
    action: { tool: t }
    expect: deny
`,
    );
    expect(result.ok && result.results.map((r) => r.passed)).toEqual([true, true]);
  });
});

describe('runPolicyTests: invalid case files', () => {
  it('says what an expectation may be', () => {
    expect(issuesOf(`cases:\n  - name: x\n    action: { tool: a }\n    expect: maybe\n`)).toEqual([
      'cases.yaml:4:13: cases.0.expect: expected allow, deny, approval_required or { outcome, reasons?, rules? }',
    ]);
  });

  it('rejects an unknown reason code', () => {
    expect(
      issuesOf(
        `cases:\n  - name: x\n    action: { tool: a }\n    expect: { outcome: deny, reasons: [NOPE] }\n`,
      )[0],
    ).toMatch(/^cases\.yaml:4:\d+: .*expected a reason code/);
  });

  it('requires a name and either action+expect or steps', () => {
    expect(issuesOf(`cases:\n  - action: { tool: a }\n    expect: deny\n`)).toEqual([
      'cases.yaml:2:5: missing key "name": every case needs a name',
    ]);
    expect(issuesOf(`cases:\n  - name: lonely\n`)).toEqual([
      'cases.yaml:2:5: lonely: a case has either action and expect, or steps',
    ]);
    expect(
      issuesOf(
        `cases:\n  - name: both\n    action: { tool: a }\n    expect: deny\n    steps: []\n`,
      ),
    ).toEqual(['cases.yaml:2:5: both: a case has either action and expect, or steps']);
  });

  it('reports an invalid action with its path', () => {
    expect(
      issuesOf(
        `cases:\n  - name: bad\n    action: { tool: "send_m\u043eney", principal: { id: p }, session: { id: s } }\n    expect: deny\n`,
      ),
    ).toEqual([
      'cases.yaml:2:5: bad: step 1: tool: "send_m\u043eney" is not a valid tool name (ASCII letters, digits and _ . : / - only)',
    ]);
  });

  it('rejects a now that is not RFC 3339', () => {
    expect(
      issuesOf(
        `${defaults}cases:\n  - name: t\n    now: "2026-02-30T00:00:00Z"\n    action: { tool: a }\n    expect: deny\n`,
      ),
    ).toEqual(['cases.yaml:5:5: t: now: 2026-02-30T00:00:00Z is not an RFC 3339 time']);
  });

  it('rejects unknown keys, prototype keys and YAML errors with positions', () => {
    expect(issuesOf(`cases: []\nextra: 1\n`)).toEqual([
      'cases.yaml:2:1: unknown key "extra"; expected one of: now, defaults, cases',
    ]);
    expect(issuesOf(`defaults:\n  __proto__: { polluted: 1 }\ncases: []\n`)).toEqual([
      'cases.yaml:2:3: key "__proto__" is not allowed',
    ]);
    expect(issuesOf(`cases: [\n`)[0]).toMatch(/^cases\.yaml:\d+:\d+: /);
    expect(issuesOf('')).toEqual(['cases.yaml:1:1: the file is empty']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('approved steps', () => {
  it('lets a case say a person approved a call, which then runs and labels the session', async () => {
    const { compilePolicy } = await import('./compile.js');
    const { runPolicyTests } = await import('./policy-tests.js');
    const policy = compilePolicy({
      path: 'p.yaml',
      text: [
        'version: 1',
        'tools:',
        '  pay:',
        "    - require_approval: 'args.amount > 10.0'",
        '    - allow: true',
        '  post:',
        '    - forbid: \'"paid" in session.labels\'',
        '    - allow: true',
        'labels:',
        '  paid: { when: \'tool == "pay"\' }',
      ].join('\n'),
    });
    const cases = [
      'defaults: { principal: { id: a }, session: { id: s } }',
      'cases:',
      '  - name: approval round trip',
      '    steps:',
      '      - { action: { tool: pay, args: { amount: 50 } }, expect: approval_required }',
      '      - { action: { tool: pay, args: { amount: 50 } }, approved: true, expect: allow }',
      '      - { action: { tool: post, args: {} }, expect: deny }',
    ].join('\n');
    const run = runPolicyTests(policy, 'cases.yaml', cases);
    expect(run.ok && run.results.map((r) => [r.passed, r.failures])).toEqual([[true, []]]);
  });
});
