import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonCopy } from './copy.js';

/** What a JSON round trip gives, or the error it throws. */
function viaJson(value: unknown): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(JSON.stringify(value)) };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}
function viaCopy(value: unknown): { value: unknown } | { error: string } {
  try {
    return { value: jsonCopy(value) };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  }
}

/** Same text, same key order, same prototypes and -0 versus 0 at every level. */
function expectSameCopy(value: unknown) {
  const expected = viaJson(value);
  const actual = viaCopy(value);
  if ('error' in expected) {
    expect(actual).toEqual(expected);
    return;
  }
  expect('value' in actual).toBe(true);
  const copy = (actual as { value: unknown }).value;
  expect(JSON.stringify(copy)).toBe(JSON.stringify(expected.value));
  sameShape(copy, expected.value);
  if (value !== null && typeof value === 'object') expect(copy).not.toBe(value);
}
function sameShape(a: unknown, b: unknown) {
  expect(Object.is(a, b) || typeof a === 'object').toBe(true);
  if (a === null || typeof a !== 'object') return;
  expect(Object.getPrototypeOf(a)).toBe(Object.getPrototypeOf(b));
  expect(Object.keys(a)).toEqual(Object.keys(b as object));
  for (const key of Object.keys(a))
    sameShape((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]);
}

describe('jsonCopy copies values as a JSON round trip does', () => {
  it('for any value', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withBoxedValues: true }), (value) => {
        expectSameCopy(value);
      }),
      { numRuns: 3_000 },
    );
  });

  it('for JSON, with undefined, functions and -0 where JSON drops or changes them', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expectSameCopy(value);
      }),
      { numRuns: 3_000 },
    );
    const values: unknown[] = [
      { a: undefined, b: () => 1, c: Symbol('s'), d: -0, e: [undefined, () => 1, -0] },
      Object.assign(Object.create(null), { x: 1, 2: 'two', 1: 'one' }),
      JSON.parse('{"__proto__":{"x":1},"a":2}'),
      { at: new Date(0), big: [1, 2] },
      { toJSON: () => 'custom' },
      { toJSON: 5, a: 1 },
      // biome-ignore lint/suspicious/noSparseArray: a hole is written as null
      [1, , 3],
      { n: Number.NaN, i: Number.POSITIVE_INFINITY },
      { deep: JSON.parse(`${'['.repeat(100)}1${']'.repeat(100)}`) },
      'text',
      7,
      null,
      true,
    ];
    for (const value of values) expectSameCopy(value);
  });

  it('throws what JSON throws for bigints and cycles', () => {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    expectSameCopy({ n: 1n });
    expectSameCopy(cycle);
    expect(() => jsonCopy(cycle)).toThrow(TypeError);
  });
});
