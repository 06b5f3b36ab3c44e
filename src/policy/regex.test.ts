import { describe, expect, it } from 'vitest';
import { PolicyError } from '../core/errors.js';
import { decideScope } from '../engine/decide.js';
import { compilePolicy } from './compile.js';

const policy = (condition: string) =>
  compilePolicy({
    path: 'p.yaml',
    text: `version: 1\ntools:\n  post:\n    - forbid: '${condition}'\n    - allow: true\n`,
  });

const decide = (condition: string, body: string) =>
  decideScope(
    policy(condition),
    { tool: 'post', args: { body }, principal: { id: 'a' }, session: { id: 's' } },
    { now: 0, id: 'd' },
  );

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
});
