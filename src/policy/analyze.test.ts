import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseAction } from '../core/action.js';
import { overlaps, readPaths, toolGuard } from './analyze.js';
import { compilePolicy } from './compile.js';
import { buildContext, evaluateScope } from './evaluate.js';

describe('toolGuard', () => {
  it.each([
    ['tool == "a" && args.x > 1.0', ['a'], ['b']],
    ['"a" == tool', ['a'], ['b']],
    ['args.x > 1.0 && tool in ["a", "b"]', ['a', 'b'], ['c']],
    ['tool.startsWith("k8s.") && true', ['k8s.apply'], ['k9s.apply']],
    ['tool.endsWith(".delete")', ['x.delete'], ['x.deleted']],
    ['glob.match("files.*", tool)', ['files.read'], ['files/read', 'file.read']],
    ['(tool == "a" || tool.startsWith("b")) && args.y', ['a', 'bz'], ['c']],
  ])('%s admits %j and rules out %j', (source, admitted, excluded) => {
    const guard = toolGuard(source)!;
    for (const tool of admitted) expect(guard(tool)).toBe(true);
    for (const tool of excluded) expect(guard(tool)).toBe(false);
  });

  it.each([
    'tool != "a"',
    '!(tool == "a")',
    'args.x || tool == "b"',
    'tool == args.name',
    'tool in session.attrs.tools',
    'glob.match("[z-a]", tool)',
  ])('finds no guard in %s', (source) => {
    expect(toolGuard(source)).toBeUndefined();
  });
});

describe('the flow rule index', () => {
  const policy = compilePolicy({
    path: 'p.yaml',
    text: `
version: 1
tools:
  "*":
    - allow: true
flow:
  - forbid: 'tool == "pay" && args.amount > 10.0'
  - forbid: 'tool in ["mail", "post"] && args.to.endsWith("@evil.test")'
  - require_approval: 'tool.startsWith("k8s.") && args.cluster == "prod"'
  - forbid: 'glob.match("files.*", tool) && args.path.startsWith("/etc")'
  - forbid: '"tainted" in session.labels && (tool == "pay" || tool.endsWith(".delete"))'
  - require_approval: 'args.risky == true'
`,
  });
  const naive = { ...policy, flowFor: () => policy.flow };
  const tools = [
    'pay',
    'mail',
    'post',
    'k8s.apply',
    'k8s',
    'files.read',
    'files',
    'x.delete',
    'other',
  ];
  const args = fc.record(
    {
      amount: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string()),
      to: fc.oneof(fc.constant('a@evil.test'), fc.string()),
      cluster: fc.constantFrom('prod', 'dev'),
      path: fc.constantFrom('/etc/passwd', '/srv/x'),
      risky: fc.boolean(),
    },
    { requiredKeys: [] },
  );

  it('decides exactly as evaluating every flow rule, on random calls', () => {
    fc.assert(
      fc.property(fc.constantFrom(...tools), args, fc.boolean(), (tool, a, tainted) => {
        const parsed = parseAction({
          tool,
          args: a,
          principal: { id: 'p' },
          session: { id: 's', labels: tainted ? ['tainted'] : [] },
        });
        if (!parsed.ok) return;
        const ctx = buildContext(parsed.action, 0);
        expect(evaluateScope(policy, ctx)).toEqual(evaluateScope(naive, ctx));
      }),
      { numRuns: 2000 },
    );
  });

  it('skips the flow rules that cannot match a tool', () => {
    expect(policy.flowFor('other').map((r) => r.id)).toEqual(['flow[5]']);
    expect(policy.flowFor('pay').map((r) => r.id)).toEqual(['flow[0]', 'flow[4]', 'flow[5]']);
  });
});

describe('readPaths', () => {
  it('finds the argument paths an expression reads, up to the first dynamic part', () => {
    expect(readPaths('args.card.number == "x" && size(args.items) > 1')).toEqual([
      ['args', 'card', 'number'],
      ['args', 'items'],
    ]);
    expect(readPaths('args[tool].x')).toEqual([['args']]);
    expect(readPaths('request.meta.region == "eu"')).toEqual([['meta', 'region']]);
    expect(overlaps(['args', 'items'], ['args', 'items', '*', 'secret'])).toBe(true);
    expect(overlaps(['args', 'a'], ['args', 'b'])).toBe(false);
  });
});
