import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/core/clock.js';
import { signingPayload } from '../src/core/digest.js';
import { createWrit } from '../src/engine/writ.js';

/**
 * End-to-end tests of the `writ` command as users run it: `node bin/writ.js …` against the
 * built `dist/`. `npm test` builds first; run `npm run build` before `npx vitest` alone.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIX = 'test/fixtures/cli';

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
    throw new Error(
      'dist/ is missing: the CLI tests run the built command. Run `npm run build` first (`npm test` does).',
    );
  }
});

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'writ-cli-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function writ(args: string[], input?: string, env: Record<string, string> = {}): Run {
  const result = spawnSync(process.execPath, ['bin/writ.js', ...args], {
    cwd: ROOT,
    input,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    timeout: 20_000,
  });
  if (result.error) throw result.error;
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function json(run: Run): Record<string, unknown> & {
  outcome: string;
  reasons: { code: string; rule?: string; message: string; error?: string }[];
  policyHash: string;
} {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`stdout is not one JSON document:\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

function scratchFile(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

const POSITIONED = /^[^\n:]+:\d+:\d+: \S/;

describe('writ validate', () => {
  it('exits 0 for a valid policy and prints its name and hash', () => {
    const run = writ(['validate', `${FIX}/policy.yaml`]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(
      /^test\/fixtures\/cli\/policy\.yaml: valid \(cli-fixture, sha256:[0-9a-f]{64}\)\n$/,
    );
  });

  it('exits 2 with one file:line:col line per problem on stderr', () => {
    const run = writ(['validate', `${FIX}/invalid-policy.yaml`]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      `${FIX}/invalid-policy.yaml:5:7: expires applies only to require_approval rules`,
      `${FIX}/invalid-policy.yaml:6:23: invalid CEL: Unknown variable: sesion`,
      `${FIX}/invalid-policy.yaml:8:7: a rule needs exactly one of allow, forbid, require_approval; found allow, forbid`,
    ]);
  });

  it('reports a problem in an included file at its own path and line', () => {
    const run = writ(['validate', `${FIX}/include-root.yaml`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`${FIX}/included/rules.yaml:4:25: invalid CEL: No such key: tenat\n`);
  });

  it('exits 2 for a file that cannot be read', () => {
    const missing = writ(['validate', `${FIX}/no-such-policy.yaml`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`${FIX}/no-such-policy.yaml: cannot read: ENOENT\n`);
    const directory = writ(['validate', FIX]);
    expect(directory.code).toBe(2);
    expect(directory.stderr).toBe(`${FIX}: cannot read: EISDIR\n`);
  });

  it('reads a policy from standard input with -', () => {
    const valid = writ(['validate', '-'], 'version: 1\ntools:\n  a:\n    - allow: true\n');
    expect(valid.code).toBe(0);
    expect(valid.stdout).toMatch(/^-: valid \(/);
    const invalid = writ(['validate', '-'], 'version: 1\ntools:\n  a:\n    - allow: sesion.id\n');
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toBe('<stdin>:4:14: invalid CEL: Unknown variable: sesion\n');
  });

  it.each([
    ['an empty file', '', '1:1: the file is empty'],
    ['a list', '- a\n', '1:1: policy: expected object, received array'],
    [
      'a duplicate key',
      'version: 1\nversion: 1\n',
      '2:1: duplicate key version: keys of a mapping must be unique',
    ],
    ['a prototype key', 'version: 1\n__proto__: {}\n', '2:1: key "__proto__" is not allowed'],
    [
      'an invalid glob',
      'version: 1\ntools:\n  "[z-a]":\n    - allow: true\n',
      '3:3: invalid glob "[z-a]": range out of order in a set',
    ],
  ])('exits 2, never crashes, for %s', (name, text, error) => {
    const path = scratchFile(`${name.replace(/\W+/g, '-')}.yaml`, text);
    const run = writ(['validate', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`${path}:${error}\n`);
  });

  it('stops a YAML alias bomb quickly', () => {
    const lines = ['version: 1', 'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (const [prev, next] of [
      ['a', 'b'],
      ['b', 'c'],
      ['c', 'd'],
      ['d', 'e'],
      ['e', 'f'],
      ['f', 'g'],
      ['g', 'h'],
      ['h', 'i'],
    ]) {
      lines.push(`${next}: &${next} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const path = scratchFile('bomb.yaml', `${lines.join('\n')}\n`);
    const started = Date.now();
    const run = writ(['validate', path]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: .*resource exhaustion`),
    );
  });
});

describe('writ check', () => {
  const policy = `${FIX}/policy.yaml`;
  const now = ['--now', '2026-11-23T10:00:00Z'];

  it('prints an allow decision as JSON and exits 0', () => {
    const run = writ(['check', '--policy', policy, '--request', `${FIX}/allow.json`, ...now]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const decision = json(run);
    expect(decision.outcome).toBe('allow');
    expect(decision.reasons).toEqual([
      { code: 'ALLOWED_BY_RULE', message: 'an allow rule matched', rule: 'tools.get_balance[0]' },
    ]);
    expect(decision.at).toBe('2026-11-23T10:00:00.000Z');
    expect(decision.actionDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const validated = writ(['validate', policy]).stdout;
    expect(validated).toContain(decision.policyHash);
  });

  it('prints a deny with code, rule and message and exits 1', () => {
    const run = writ(['check', '--policy', policy, '--request', `${FIX}/deny.json`, ...now]);
    expect(run.code).toBe(1);
    const decision = json(run);
    expect(decision.outcome).toBe('deny');
    expect(decision.reasons).toEqual([
      {
        code: 'DENIED_BY_RULE',
        message: 'an agent never changes credentials',
        rule: 'tools.update_password[0]',
      },
    ]);
  });

  it('prints approval_required and exits 1', () => {
    const run = writ(['check', '--policy', policy, '--request', `${FIX}/approval.json`, ...now]);
    expect(run.code).toBe(1);
    const decision = json(run);
    expect(decision.outcome).toBe('approval_required');
    expect(decision.reasons.map((r) => [r.code, r.rule])).toEqual([
      ['APPROVAL_REQUIRED', 'tools.send_money[1]'],
      ['ALLOWED_BY_RULE', 'tools.send_money[2]'],
    ]);
  });

  it('reads the request from standard input with --request -', () => {
    const request = JSON.stringify({
      tool: 'read_file',
      args: { file_path: '/srv/agent/../../etc/passwd' },
      principal: { id: 'a' },
      session: { id: 's' },
    });
    const run = writ(['check', '--policy', policy, '--request', '-', ...now], request);
    expect(run.code).toBe(1);
    expect(json(run).reasons.map((r) => r.code)).toEqual(['NO_MATCHING_RULE']);
  });

  it('gives the same decision for the same request (apart from the random id)', () => {
    const a = json(
      writ(['check', '--policy', policy, '--request', `${FIX}/approval.json`, ...now]),
    );
    const b = json(
      writ(['check', '--policy', policy, '--request', `${FIX}/approval.json`, ...now]),
    );
    expect({ ...a, id: '' }).toEqual({ ...b, id: '' });
    expect(a.id).not.toBe(b.id);
  });

  it('exits 2 for invalid JSON, naming the input', () => {
    const file = writ(['check', '--policy', policy, '--request', `${FIX}/broken-request.txt`]);
    expect(file.code).toBe(2);
    expect(file.stdout).toBe('');
    expect(file.stderr).toMatch(/^test\/fixtures\/cli\/broken-request\.txt: invalid JSON: /);
    const stdin = writ(['check', '--policy', policy, '--request', '-'], '{"tool": ');
    expect(stdin.code).toBe(2);
    expect(stdin.stderr).toMatch(/^<stdin>: invalid JSON: /);
    const empty = writ(['check', '--policy', policy, '--request', '-'], '');
    expect(empty.code).toBe(2);
  });

  it('exits 2 for a request file that cannot be read', () => {
    const run = writ(['check', '--policy', policy, '--request', `${FIX}/nope.json`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`${FIX}/nope.json: cannot read: ENOENT\n`);
  });

  it('exits 2 for an invalid request and still prints the INVALID_REQUEST decision', () => {
    const run = writ(['check', '--policy', policy, '--request', `${FIX}/lookalike.json`, ...now]);
    expect(run.code).toBe(2);
    const decision = json(run);
    expect(decision.outcome).toBe('deny');
    expect(decision.reasons).toEqual([
      {
        code: 'INVALID_REQUEST',
        message:
          'tool: "send_m\u043eney" is not a valid tool name (ASCII letters, digits and _ . : / - only)',
      },
    ]);
  });

  it.each([
    ['a top-level array', '[]', 'action: must be an object'],
    [
      'a missing session',
      '{"tool":"get_balance","principal":{"id":"a"}}',
      'session: must be an object with an id',
    ],
    [
      'a prototype key',
      '{"tool":"get_balance","principal":{"id":"a"},"session":{"id":"s"},"__proto__":{"x":1}}',
      'action: unknown key "__proto__"',
    ],
    [
      '10,000 levels of nesting',
      `{"tool":"get_balance","principal":{"id":"a"},"session":{"id":"s"},"args":{"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`,
      'nested deeper than 32',
    ],
  ])('exits 2 for %s', (_, request, message) => {
    const run = writ(['check', '--policy', policy, '--request', '-', ...now], request);
    expect(run.code).toBe(2);
    const decision = json(run);
    expect(decision.reasons[0]!.code).toBe('INVALID_REQUEST');
    expect(decision.reasons[0]!.message).toContain(message);
  });

  it('exits 2 for an invalid policy, with file:line:col lines', () => {
    const run = writ([
      'check',
      '--policy',
      `${FIX}/invalid-policy.yaml`,
      '--request',
      `${FIX}/allow.json`,
    ]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line).toMatch(POSITIONED);
  });

  it.each(['yesterday', '1', '2026', '2026-02-30T00:00:00Z', '2026-11-23'])(
    'exits 2 for --now %s',
    (value) => {
      const run = writ([
        'check',
        '--policy',
        policy,
        '--request',
        `${FIX}/allow.json`,
        '--now',
        value,
      ]);
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(
        `--now: ${value} is not an RFC 3339 time with an offset, such as 2026-11-23T10:00:00Z\n`,
      );
    },
  );

  it('refuses two inputs from standard input, in any command, rather than read one empty', () => {
    const stdin = (what: string) =>
      `${what} (standard input), which can be read only once: give all but one as a file\n`;
    for (const [args, message] of [
      [['check', '--policy', '-', '--request', '-'], '--policy and --request are both -'],
      [['demo', '--policy', '-', '--script', '-'], '--policy and --script are both -'],
      [['test', '-', '-'], 'the policy and cases file 1 are both -'],
      [['test', policy, '-', '-'], 'cases file 1 and cases file 2 are both -'],
      [['replay', '--log', '-', '--policy', '-'], '--log and --policy are both -'],
    ] as const) {
      const run = writ([...args], readFileSync(policy, 'utf8'));
      expect([args, run.code, run.stdout, run.stderr]).toEqual([args, 2, '', stdin(message)]);
    }
  });

  it('exits 2 and says which option is missing', () => {
    const run = writ(['check', '--policy', policy]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("required option '--request <file>' not specified");
  });

  it('in shadow mode exits 0 and carries the real outcome', () => {
    const run = writ([
      'check',
      '--policy',
      `${FIX}/shadow-policy.yaml`,
      '--request',
      `${FIX}/deny.json`,
      ...now,
    ]);
    expect(run.code).toBe(0);
    const decision = json(run);
    expect(decision.outcome).toBe('allow');
    expect(decision.reasons.map((r) => r.code)).toEqual(['SHADOW_MODE']);
    expect(decision.shadow).toEqual({
      outcome: 'deny',
      reasons: [
        {
          code: 'DENIED_BY_RULE',
          message: 'a forbid rule matched',
          rule: 'tools.update_password[0]',
        },
      ],
    });
  });
});

describe('writ check with a replay: section', () => {
  const policy = `${FIX}/replay-policy.yaml`;
  const NOW = '2026-11-23T10:00:00Z';
  const SECRET = 'shared by signed-agent and writ';
  type Request = Parameters<typeof signingPayload>[0] & { signature?: string };
  const request = (fields: Partial<Request> = {}): Request => ({
    tool: 'get_balance',
    principal: { id: 'agent-1' },
    session: { id: 's1' },
    nonce: 'n-1',
    issuedAt: NOW,
    ...fields,
  });
  const without = (key: 'nonce' | 'issuedAt'): Request => {
    const r = request();
    delete r[key];
    return r;
  };
  const signed = (r: Request, secret = SECRET): Request => ({
    ...r,
    signature: `hmac-sha256:${createHmac('sha256', secret).update(signingPayload(r)).digest('base64')}`,
  });
  const check = (r: Request) =>
    writ(['check', '--policy', policy, '--request', '-', '--now', NOW], JSON.stringify(r), {
      WRIT_CLI_TEST_SECRET: SECRET,
    });

  const cases: [string, Request, string, string | undefined][] = [
    ['a request with a nonce, issued now', request(), 'allow', 'ALLOWED_BY_RULE'],
    ['a request without a nonce', without('nonce'), 'deny', 'NONCE_REQUIRED'],
    [
      'a request issued in 2020',
      request({ issuedAt: '2020-01-01T00:00:00Z' }),
      'deny',
      'REQUEST_EXPIRED',
    ],
    [
      'a request issued 3 s after --now',
      request({ issuedAt: '2026-11-23T10:00:03Z' }),
      'deny',
      'REQUEST_EXPIRED',
    ],
    ['a request without issuedAt', without('issuedAt'), 'deny', 'REQUEST_EXPIRED'],
    [
      'an unsigned request of a principal with a key',
      request({ principal: { id: 'signed-agent' } }),
      'deny',
      'BAD_SIGNATURE',
    ],
    [
      'a request signed with another secret',
      signed(request({ principal: { id: 'signed-agent' } }), 'not the secret'),
      'deny',
      'BAD_SIGNATURE',
    ],
    [
      'a request signed with the secret from the environment',
      signed(request({ principal: { id: 'signed-agent' } })),
      'allow',
      'ALLOWED_BY_RULE',
    ],
  ];

  it.each(cases)('decides %s as the engine does', async (_, r, outcome, code) => {
    const run = check(r);
    expect(run.code, run.stderr).toBe(outcome === 'allow' ? 0 : 1);
    const printed = json(run);
    expect([printed.outcome, printed.reasons[0]?.code]).toEqual([outcome, code]);

    const engine = createWrit({
      policy: join(ROOT, policy),
      clock: manualClock(NOW),
      secrets: (name) => (name === 'WRIT_CLI_TEST_SECRET' ? SECRET : undefined),
      log: false,
    });
    const decided = await engine.authorize(r);
    await engine.close();
    expect({ outcome: printed.outcome, reasons: printed.reasons }).toEqual({
      outcome: decided.outcome,
      reasons: decided.reasons,
    });
  });

  it('says in --help that it cannot tell a nonce used before', () => {
    const help = writ(['check', '--help']).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('cannot tell whether a nonce was used before');
  });
});

describe('writ test', () => {
  const policy = `${FIX}/policy.yaml`;

  it('exits 0 and prints the totals when every case passes', () => {
    const run = writ(['test', policy, `${FIX}/cases-pass.yaml`]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('4 passed, 0 failed\n');
  });

  it('lists passing cases with --verbose', () => {
    const run = writ(['test', '-v', policy, `${FIX}/cases-pass.yaml`]);
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n').filter((l) => l.startsWith('PASS '))).toHaveLength(4);
  });

  it('names a cases file that is not a mapping as test cases, not as a policy', () => {
    const cases = join(scratch, 'cases-string.yaml');
    writeFileSync(cases, 'just a sentence\n');
    const run = writ(['test', policy, cases]);
    expect([run.code, run.stderr]).toEqual([
      2,
      `${cases}:1:1: test cases: expected object, received string\n`,
    ]);
  });

  it('prints a diff per failing case and exits 1', () => {
    const run = writ(['test', policy, `${FIX}/cases-fail.yaml`]);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      [
        `FAIL wrongly expects a password change (${FIX}/cases-fail.yaml:8:5)`,
        '  update_password',
        '    - expected: allow',
        '    + actual:   deny [DENIED_BY_RULE tools.update_password[0]]',
        `FAIL wrongly expects traversal to work (${FIX}/cases-fail.yaml:11:5)`,
        '  read_file',
        '    - expected: allow [ALLOWED_BY_RULE]',
        '    + actual:   deny [NO_MATCHING_RULE]',
        '1 passed, 2 failed',
        '',
      ].join('\n'),
    );
  });

  it('adds up several case files', () => {
    const run = writ(['test', policy, `${FIX}/cases-pass.yaml`, `${FIX}/cases-fail.yaml`]);
    expect(run.code).toBe(1);
    expect(run.stdout.trimEnd().split('\n').at(-1)).toBe('5 passed, 2 failed');
  });

  it('exits 2 for an invalid cases file, with file:line:col lines', () => {
    const run = writ(['test', policy, `${FIX}/cases-invalid.yaml`]);
    expect(run.code).toBe(2);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      `${FIX}/cases-invalid.yaml:4:13: cases.0.expect: expected allow, deny, approval_required or { outcome, reasons?, rules? }`,
      `${FIX}/cases-invalid.yaml:7:40: cases.1.expect.reasons.0: expected a reason code`,
    ]);
  });

  it('exits 2 for a missing cases file or an invalid policy', () => {
    expect(writ(['test', policy, `${FIX}/nope.yaml`]).code).toBe(2);
    const bad = writ(['test', `${FIX}/invalid-policy.yaml`, `${FIX}/cases-pass.yaml`]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split('\n')[0]).toMatch(POSITIONED);
  });

  it('needs at least one cases file', () => {
    const run = writ(['test', policy]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("missing required argument 'cases'");
  });
});

describe('usage errors', () => {
  it('rejects an unknown command with a helpful message', () => {
    const run = writ(['frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: unknown command 'frobnicate'");
    expect(run.stderr).toContain('Usage: writ');
    expect(run.stderr).toContain('validate');
  });

  it('rejects an unknown option and shows the command usage', () => {
    const run = writ(['validate', '--bogus', `${FIX}/policy.yaml`]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: unknown option '--bogus'");
    expect(run.stderr).toContain('Usage: writ validate');
  });

  it('shows usage and fails without a command', () => {
    const run = writ([]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('Usage: writ');
  });

  it('prints the version of the package with --version', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const run = writ([flag]);
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(`${version}\n`);
    }
  });

  it('prints help and exits 0 with --help', () => {
    const run = writ(['--help']);
    expect(run.code).toBe(0);
    for (const command of ['validate', 'check', 'test', 'demo'])
      expect(run.stdout).toContain(command);
  });
});

describe('writ demo', () => {
  /** Runs the demo with a script from the fixtures, on the fixture policy. */
  const demoScript = (script: string, store: string) =>
    writ([
      'demo',
      '--policy',
      `${FIX}/policy.yaml`,
      '--script',
      `${FIX}/${script}.yaml`,
      '--store',
      store,
    ]);

  it('exits 0 and shows allow, deny and approval_required decisions', () => {
    const run = writ(['demo']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const lines = run.stdout.split('\n');
    for (const outcome of ['allow', 'deny', 'approval_required']) {
      expect(lines.some((line) => new RegExp(`^\\s+\\S+ ${outcome}\\s+\\S`).test(line))).toBe(true);
    }
    expect(run.stdout).toContain('DENIED_BY_RULE');
  });

  it('exits 2 with a bad --policy', () => {
    const run = writ(['demo', '--policy', `${FIX}/invalid-policy.yaml`]);
    expect(run.code).toBe(2);
    expect(run.stderr.split('\n')[0]).toMatch(POSITIONED);
  });

  it('refuses a script with a bad cost before it authorizes anything', () => {
    const store = join(scratch, 'negative-cost.db');
    const run = demoScript('demo-negative-cost', store);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `${FIX}/demo-negative-cost.yaml:8:11: steps.2.cost: must be a number from 0 to 1000000000000000\n`,
    );
    // Not even opened: no call was authorized, so none is left holding a budget.
    expect(existsSync(store)).toBe(false);
  });

  it('refuses a script in which the principal approves its own call, before it runs', () => {
    const run = demoScript('demo-self-approval', join(scratch, 'self-approval.db'));
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `${FIX}/demo-self-approval.yaml:7:26: steps.2.approve.approver: alice is the principal who asks, and cannot approve its own calls\n`,
    );
  });

  it('refuses it under another letter case too, before it runs', () => {
    const run = demoScript('demo-self-approval-case', join(scratch, 'self-approval-case.db'));
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `${FIX}/demo-self-approval-case.yaml:7:26: steps.2.approve.approver: Alice is the principal who asks, and cannot approve its own calls\n`,
    );
  });

  it('checks every request, session and the order of the steps before any call, naming each', () => {
    const store = join(scratch, 'invalid-steps.db');
    const run = demoScript('demo-invalid-steps', store);
    const at = `${FIX}/demo-invalid-steps.yaml`;
    expect([run.code, run.stdout]).toEqual([2, '']);
    expect(run.stderr.split('\n')).toEqual([
      `${at}:6:14: steps.0.approve: no call before it to approve: an approve step follows the call it approves`,
      `${at}:7:11: steps.1.call: no session before it: a call runs in the session a session step opened`,
      `${at}:8:39: steps.2.session.attrs.limit: Infinity is not a JSON number`,
      `${at}:9:19: steps.3.call.tool: "bad tool name" is not a valid tool name (ASCII letters, digits and _ . : / - only)`,
      `${at}:4:33: principal.roles[0]: 1 is not a valid name`,
      `${at}:10:58: steps.4.call.idempotencyKey: must be a string of at most 256 characters that shows something, with no space at either end`,
      `${at}:12:14: steps.6.approve: no call before it to approve: an approve step follows the call it approves`,
      '',
    ]);
    expect(existsSync(store)).toBe(false);
  });

  it('names a script that is not a mapping as a script, not as a policy', () => {
    const script = join(scratch, 'script-list.yaml');
    writeFileSync(script, '- title: a list\n');
    const run = writ(['demo', '--script', script, '--store', join(scratch, 'script-list.db')]);
    expect([run.code, run.stderr]).toEqual([
      2,
      `${script}:1:1: script: expected object, received array\n`,
    ]);
  });

  it('names a step only running it can refuse, in one line', () => {
    const run = demoScript('demo-approve-unasked', join(scratch, 'approve-unasked.db'));
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `${FIX}/demo-approve-unasked.yaml: step 3: approve: the previous call did not ask for approval\n`,
    );
  });

  it('exits 2 in one line when standard output cannot be written (a full disk)', () => {
    const full = openSync('/dev/full', 'w');
    try {
      const result = spawnSync(process.execPath, ['bin/writ.js', '--version'], {
        cwd: ROOT,
        stdio: ['ignore', full, 'pipe'],
        encoding: 'utf8',
      });
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/^writ: cannot write to standard output: ENOSPC[^\n]*\n$/);
    } finally {
      closeSync(full);
    }
  });

  it('refuses a --store that names a directory, from every command, and makes nothing', () => {
    const dir = join(scratch, 'stores');
    const file = join(scratch, 'stores', 'writ.db');
    for (const [store, hint] of [
      [`${dir}/`, `${dir}/writ.db`],
      [scratch, join(scratch, 'writ.db')],
    ]) {
      for (const command of [['demo'], ['budgets'], ['log', 'verify'], ['approvals', 'list']]) {
        const run = writ([...command, '--store', store!]);
        expect([command, run.code, run.stderr]).toEqual([
          command,
          2,
          `--store ${store}: names a directory; give the store's file, such as ${hint}\n`,
        ]);
      }
    }
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(file)).toBe(false);
    // A file with a slash after it: the hint names that file.
    const existing = join(scratch, 'existing.db');
    writeFileSync(existing, '');
    expect(writ(['budgets', '--store', `${existing}/`]).stderr).toBe(
      `--store ${existing}/: names a directory; give the store's file, such as ${existing}\n`,
    );
  });

  it('exits 2 in one line for an empty --store', () => {
    const run = writ(['demo', '--store', '']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('sqliteStore: path must be a file path, not ""\n');
  });
});
