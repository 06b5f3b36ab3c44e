import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideScope } from '../engine/decide.js';
import { compilePolicy } from './compile.js';
import { compileGlob, globToRegExp, isGlob } from './glob.js';
import { globMatch } from './helpers.js';

describe('globToRegExp', () => {
  it('anchors the whole string', () => {
    expect(globToRegExp('a*').test('xab')).toBe(false);
    expect(globToRegExp('*a').test('abx')).toBe(false);
  });

  it('treats regular-expression syntax as literal text', () => {
    for (const pattern of ['a.b', 'a+', '(x)', 'x|y', '^a$', 'a{2}', 'a\\d']) {
      const re = globToRegExp(pattern);
      expect(re.test(pattern)).toBe(true);
    }
    expect(globToRegExp('a.b').test('axb')).toBe(false);
    expect(globToRegExp('a{2}').test('aa')).toBe(false);
    expect(globToRegExp('a\\d').test('a1')).toBe(false);
  });

  it('keeps * and ? and negated sets inside one path segment', () => {
    expect(globToRegExp('tools/*').test('tools/a/b')).toBe(false);
    expect(globToRegExp('tools/?').test('tools//')).toBe(false);
    expect(globToRegExp('tools/[!x]').test('tools//')).toBe(false);
    expect(globToRegExp('tools/[^x]').test('tools//')).toBe(false);
    expect(globToRegExp('tools/**').test('tools/a/b')).toBe(true);
    // As the README says: a forbid for every namespace needs **.
    expect(globToRegExp('*delete*').test('github/delete_repo')).toBe(false);
    expect(globToRegExp('**delete**').test('github/delete_repo')).toBe(true);
    expect(globToRegExp('**delete**').test('delete')).toBe(true);
  });

  it('reads a ] right after [ or [! as part of the set', () => {
    expect(globToRegExp('[]x]').test(']')).toBe(true);
    expect(globToRegExp('[]x]').test('x')).toBe(true);
    expect(globToRegExp('[!]x]').test(']')).toBe(false);
    expect(globToRegExp('[!]x]').test('y')).toBe(true);
  });

  it('reads an unclosed [ as a literal', () => {
    expect(globToRegExp('a[b').test('a[b')).toBe(true);
    expect(globToRegExp('[!').test('[!')).toBe(true);
  });

  it('throws a clear error for an invalid set', () => {
    expect(() => globToRegExp('[z-a]')).toThrow('invalid glob "[z-a]"');
  });
});

describe('compileGlob', () => {
  it('agrees with globToRegExp on random patterns and strings (differential)', () => {
    const alphabet = fc.constantFrom(
      'a',
      'b',
      '/',
      '.',
      '*',
      '?',
      '[',
      ']',
      '!',
      '-',
      '^',
      '\\',
      'é',
    );
    const text = fc.string({ unit: alphabet, maxLength: 12 });
    fc.assert(
      fc.property(
        text,
        fc.string({ unit: fc.constantFrom('a', 'b', '/', '.', '-', ']', '!', 'é'), maxLength: 12 }),
        (pattern, s) => {
          let re: RegExp;
          try {
            re = globToRegExp(pattern);
          } catch {
            expect(() => compileGlob(pattern)).toThrow(/invalid glob/);
            return;
          }
          expect(compileGlob(pattern)(s)).toBe(re.test(s));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('matches whole code points, so ? matches one emoji', () => {
    expect(compileGlob('?')('😀')).toBe(true);
    expect(compileGlob('[😀-😂]')('😁')).toBe(true);
  });

  it('stays fast on patterns that make a backtracking matcher explode', () => {
    const started = performance.now();
    expect(compileGlob('*a*a*a*a*a*a*a*a*b')('a'.repeat(5_000))).toBe(false);
    expect(compileGlob('*_*_*_*_*_*_x')('_'.repeat(5_000))).toBe(false);
    expect(compileGlob('**/**/**/**/x')('/'.repeat(5_000))).toBe(false);
    expect(globMatch('*.*.*.*.*.z', '.'.repeat(100_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('keeps a decision fast when a hostile tool name meets a many-star glob', () => {
    const policy = compilePolicy({
      path: 'p.yaml',
      text: 'version: 1\ntools:\n  "*_*_*_*_*_*_delete":\n    - forbid: true\n  other:\n    - allow: true\n',
    });
    const started = performance.now();
    const decision = decideScope(
      policy,
      { tool: '_'.repeat(128), principal: { id: 'a' }, session: { id: 's' } },
      { now: 0, id: 'd' },
    );
    expect(decision.outcome).toBe('deny');
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('isGlob', () => {
  it.each([
    ['search_*', true],
    ['a?', true],
    ['[ab]', true],
    ['send_money', false],
    ['k8s.apply', false],
    ['a]', false],
    ['a!', false],
  ])('%s → %s', (pattern, glob) => {
    expect(isGlob(pattern)).toBe(glob);
  });
});

describe('globstar directories', () => {
  it.each([
    ['a/**/c', 'a/c', true],
    ['a/**/c', 'a/x/c', true],
    ['a/**/c', 'a/x/y/c', true],
    ['a/**/c', 'a/xc', false],
    ['/etc/**/*.conf', '/etc/x.conf', true],
    ['/etc/**/*.conf', '/etc/ssh/sshd.conf', true],
    ['/etc/**/*.conf', '/etcx/y.conf', false],
    ['**/secret', 'secret', true],
    ['**/secret', 'a/b/secret', true],
  ])('%s on %s → %s, the same as the regular expression', (pattern, s, expected) => {
    expect(compileGlob(pattern)(s)).toBe(expected);
    expect(globToRegExp(pattern).test(s)).toBe(expected);
  });
});
