import { describe, expect, it } from 'vitest';
import { parseAction } from '../core/action.js';
import { PolicyError } from '../core/errors.js';
import { decideScope } from '../engine/decide.js';
import { compileExpression } from './cel.js';
import { compilePolicy } from './compile.js';
import { buildContext } from './evaluate.js';

const policy = (condition: string) =>
  compilePolicy({
    path: 'p.yaml',
    text: `version: 1\ntools:\n  post:\n    - forbid: '${condition}'\n    - allow: true\n`,
  });

const call = (body: string) => ({
  tool: 'post',
  args: { body },
  principal: { id: 'a' },
  session: { id: 's' },
});

const decide = (condition: string, body: string) =>
  decideScope(policy(condition), call(body), { now: 0, id: 'd' });

describe('matches() runs RE2, in linear time', () => {
  it('keeps CEL semantics: a partial match, anchors and flags', () => {
    expect(decide('args.body.matches("evil")', 'an evil plan').outcome).toBe('deny');
    expect(decide('args.body.matches("^evil$")', 'an evil plan').outcome).toBe('allow');
    expect(decide('args.body.matches("(?i)EVIL")', 'evil').outcome).toBe('deny');
  });

  it('does not blow up on a pattern that backtracks exponentially in JavaScript', () => {
    // With a backtracking engine this pair takes longer than the test's time-out.
    const d = decide('args.body.matches("^(a+)+$")', `${'a'.repeat(5_000)}b`);
    expect(d.outcome).toBe('allow');
  });

  it('rejects, at load, a constant pattern that is not RE2', () => {
    expect(() => policy('args.body.matches("(?=x)")')).toThrow(PolicyError);
    try {
      policy('args.body.matches("(?=x)")');
    } catch (error) {
      expect((error as PolicyError).issues[0]!.message).toMatch(/invalid RE2 regular expression/);
      expect((error as PolicyError).issues[0]!.line).toBe(4);
    }
  });

  it('fails closed on a pattern built at run time that is not RE2', () => {
    const d = decide('args.body.matches(args.body)', '(?=x)');
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]!.code).toBe('CONDITION_ERROR');
  });

  it('rewrites only the calls: the rest of the expression means what its author wrote', () => {
    // The rewrite used to print the whole syntax tree again, which dropped parentheses
    // that matter and rounded numbers: each of these forbids was silently lost.
    const cases: [string, Record<string, unknown>][] = [
      ['args.body.matches("urgent") || 1000.0 - (500.0 + args.n) < 0.0', { n: 600 }],
      ['args.body.matches("urgent") || 7 % (2 * 3) == 1', {}],
      ['args.body.matches("urgent") || 2 - (3 - (4 - 5)) == -2', {}],
      ['!args.body.matches("^x") || args.n > 0.0000000006', { body: 'xy', n: 0.0000000009 }],
      ['args.body.matches("urgent") || args.n > 1e21', { n: 2e21 }],
      ['args.body.matches("urgent") || args.body.contains("💣")', { body: 'a 💣' }],
      ['(args.body + "x").matches(("a" + "b").substring(0, 1))', { body: 'a' }],
      [
        '( args.body ).matches( "^(a+)+$" ) || args.l.exists(v, v.matches("^[0-9]+$"))',
        { l: ['x', '12'] },
      ],
      ['args.body.matches(args.body.matches("a") ? "b" : "z")', { body: 'ab' }],
      ['matches(args.body, "b")', { body: 'ab' }],
      // Parentheses inside the subject, comments, a loop variable named re.
      ['(args.body + (args.t)).matches("ab")', { body: 'a', t: 'b' }],
      ['((args.body) + args.t).matches("ab")', { body: 'a', t: 'b' }],
      ['string((args.body + (args.t)).matches("a")) == "true"', { body: 'a', t: 'b' }],
      ['args.l.all(re, re.matches("^ok"))', { l: ['ok1', 'ok2'] }],
    ];
    for (const [condition, args] of cases) {
      const d = decideScope(
        policy(condition),
        {
          tool: 'post',
          args: { body: 'plain', ...args },
          principal: { id: 'a' },
          session: { id: 's' },
        },
        { now: 0, id: 'd' },
      );
      expect([condition, d.outcome, d.reasons[0]!.code]).toEqual([
        condition,
        'deny',
        'DENIED_BY_RULE',
      ]);
    }
  });

  it('runs the global form matches(s, p) in RE2 too, and checks its constant pattern at load', () => {
    const d = decide('matches(args.body, "^(a+)+$")', `${'a'.repeat(5_000)}b`);
    expect(d.outcome).toBe('allow');
    expect(() => policy('matches(args.body, "(?=x)")')).toThrow(/invalid RE2 regular expression/);
  });

  it('rewrites a call with a comment between its subject and .matches', () => {
    const compiled = compileExpression('args.body // why\n  .matches("^pl")', 'condition');
    const parsed = parseAction(call('plain'));
    if (!compiled.ok || !parsed.ok) throw new Error('expected both to be valid');
    expect(compiled.evaluate(buildContext(parsed.action, 0))).toBe(true);
  });

  it('keeps the name of the constant it calls RE2 through for itself', () => {
    expect(() => policy('args.l.all(__re2, __re2.matches("a"))')).toThrow(
      /__re2 is a name writ keeps for itself/,
    );
  });
});
