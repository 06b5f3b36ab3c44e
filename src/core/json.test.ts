import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import { DEFAULT_JSON_LIMITS, type Json, toJson } from './json.js';

afterEach(() => {
  // Every test here feeds hostile keys; none may reach Object.prototype.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

function issuesOf(value: unknown, limits = DEFAULT_JSON_LIMITS) {
  const result = toJson(value, 'args', limits);
  expect(result.ok).toBe(false);
  return result.ok ? [] : result.issues;
}

describe('toJson', () => {
  it('turns -0 into 0, as canonical JSON writes it', () => {
    // Otherwise `1.0 / args.x > 0.0` tells apart two requests that sign and digest alike.
    const copied = toJson({ x: -0, list: [-0] }, 'args');
    if (!copied.ok) throw new Error('expected JSON');
    const value = copied.value as { x: number; list: number[] };
    expect(Object.is(value.x, 0)).toBe(true);
    expect(Object.is(value.list[0], 0)).toBe(true);
  });

  it('returns a deep copy on null prototypes', () => {
    const input = { a: { b: [1, { c: 'x' }] } };
    const result = toJson(input, 'args');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value).toEqual(input);
    expect(result.value).not.toBe(input);
    const a = (result.value as Record<string, Json>).a as Record<string, Json>;
    expect(Object.getPrototypeOf(result.value)).toBeNull();
    expect(Object.getPrototypeOf(a)).toBeNull();
    expect(Object.getPrototypeOf((a.b as Json[])[1])).toBeNull();
  });

  it('keeps __proto__, constructor and prototype as ordinary keys', () => {
    const input = JSON.parse(
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
    );
    const result = toJson(input, 'args');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const value = result.value as Record<string, Json>;
    expect(Object.keys(value)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ polluted: true });
    expect((value as Record<string, unknown>).polluted).toBeUndefined();
    expect(canonicalJson(value)).toBe(
      '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
    );
  });

  it('names the path of every problem, quoting keys that are not identifiers', () => {
    const issues = issuesOf({
      ok: 1,
      'a b': { 'x.y': [0, Number.NaN] },
      n: Number.POSITIVE_INFINITY,
    });
    expect(issues).toEqual([
      { path: 'args["a b"]["x.y"][1]', message: 'NaN is not a JSON number' },
      { path: 'args.n', message: 'Infinity is not a JSON number' },
    ]);
  });

  it('rejects values JSON cannot hold', () => {
    const issues = issuesOf({
      u: undefined,
      f: () => 1,
      s: Symbol('s'),
      b: 10n,
      d: new Date(0),
      m: new Map(),
      r: /x/,
      e: new Error('x'),
    });
    expect(issues.map((i) => i.path)).toEqual([
      'args.u',
      'args.f',
      'args.s',
      'args.b',
      'args.d',
      'args.m',
      'args.r',
      'args.e',
    ]);
  });

  it('stops at the depth limit without recursing further (10,000 levels)', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 10_000; i++) {
      const next = {};
      deep.a = next;
      deep = next;
    }
    const issues = issuesOf(root);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.message).toBe('nested deeper than 32');
    expect(issues[0]!.path).toBe(`args${'.a'.repeat(32)}`);
  });

  it('treats a cycle as too deep instead of looping', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(issuesOf(cyclic)[0]!.message).toBe('nested deeper than 32');
  });

  it('counts every value against the node limit and reports it once', () => {
    const big = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]));
    const issues = issuesOf(big);
    expect(issues).toEqual([{ path: 'args.k9999', message: 'more than 10000 values' }]);
  });

  it('bounds a sparse array by its length, not by its few elements', () => {
    const started = performance.now();
    const issues = issuesOf({ s: new Array(50_000_000) });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(issues).toEqual([{ path: 'args.s', message: 'more than 10000 values' }]);
  });

  it('reports a hole in an array instead of copying it', () => {
    // biome-ignore lint/suspicious/noSparseArray: a hole is the point of this test
    const issues = issuesOf({ s: [1, , 3] });
    expect(issues).toEqual([{ path: 'args.s[1]', message: 'undefined is not a JSON value' }]);
  });

  it('limits string length in UTF-16 code units', () => {
    const limits = { ...DEFAULT_JSON_LIMITS, maxStringLength: 4 };
    expect(toJson({ s: 'abcd' }, 'args', limits).ok).toBe(true);
    expect(issuesOf({ s: 'abcde' }, limits)).toEqual([
      { path: 'args.s', message: 'string longer than 4' },
    ]);
  });

  it('rejects lone surrogates in values and keys, accepts pairs', () => {
    expect(toJson({ s: '😀' }, 'args').ok).toBe(true);
    expect(issuesOf({ s: '\ud83d' })).toEqual([
      { path: 'args.s', message: 'string holds a lone UTF-16 surrogate' },
    ]);
    expect(issuesOf({ '\ude00': 1 })).toEqual([
      { path: 'args', message: 'a key holds a lone UTF-16 surrogate' },
    ]);
  });

  it('turns throwing getters and proxies into issues, never exceptions', () => {
    const getter = {
      ok: 1,
      get bad() {
        throw new Error('boom');
      },
    };
    expect(issuesOf(getter)).toEqual([{ path: 'args.bad', message: 'cannot be read: boom' }]);
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('trap');
        },
      },
    );
    expect(issuesOf({ p: proxy })).toEqual([{ path: 'args.p', message: 'cannot be read: trap' }]);
    const nasty = new Proxy(
      {},
      {
        getPrototypeOf() {
          throw 'not even an Error';
        },
      },
    );
    expect(issuesOf(nasty)[0]!.message).toMatch(/^cannot be read/);
  });

  it('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.anything({ withBoxedValues: true, withMap: true, withSet: true }), (value) => {
        const result = toJson(value, 'args');
        if (result.ok) expect(() => canonicalJson(result.value)).not.toThrow();
        else for (const issue of result.issues) expect(issue.path).toMatch(/^args/);
      }),
      { numRuns: 500 },
    );
  });
});
