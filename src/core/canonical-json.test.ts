import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import type { Json } from './json.js';

/** The IEEE 754 double with the given bit pattern (16 hex digits). */
function double(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

describe('canonicalJson: key order (RFC 8785 §3.2.3)', () => {
  it('sorts the RFC example keys by UTF-16 code units', () => {
    const input = JSON.parse(
      '{"\\u20ac":"Euro Sign","\\r":"Carriage Return","\\ufb33":"Hebrew Letter Dalet With Dagesh",' +
        '"1":"One","\\ud83d\\ude00":"Emoji: Grinning Face","\\u0080":"Control",' +
        '"\\u00f6":"Latin Small Letter O With Diaeresis"}',
    );
    expect(canonicalJson(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control",' +
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",' +
        '"\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('puts "\\r" before "\\u20ac"', () => {
    expect(canonicalJson({ '\u20ac': 1, '\r': 2 })).toBe('{"\\r":2,"€":1}');
  });

  it('orders a non-BMP key by its surrogates, before U+E000 and U+FFFF', () => {
    // By code point U+1F600 would come last; by UTF-16 code units 0xD83D sorts first.
    const text = canonicalJson({ '\uffff': 1, '\ue000': 2, '\ud83d\ude00': 3 });
    expect(text).toBe('{"😀":3,"\ue000":2,"\uffff":1}');
  });

  it('sorts integer-like keys as text, not in the engine property order', () => {
    expect(canonicalJson({ 9: 'a', 10: 'b', a: 'c', '-1': 'd' })).toBe(
      '{"-1":"d","10":"b","9":"a","a":"c"}',
    );
  });

  it('sorts nested objects at every level and keeps array order', () => {
    const value: Json = { z: [{ b: 1, a: 2 }, 3, [{ y: null, x: true }]], a: { d: {}, c: [] } };
    expect(canonicalJson(value)).toBe(
      '{"a":{"c":[],"d":{}},"z":[{"a":2,"b":1},3,[{"x":true,"y":null}]]}',
    );
  });

  it('gives the same text whatever the insertion order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        expect(canonicalJson(reversed as Json)).toBe(canonicalJson(dict as Json));
      }),
    );
  });
});

describe('canonicalJson: numbers (RFC 8785 Appendix B)', () => {
  const vectors: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  it.each(vectors)('0x%s serializes as %s', (hex, text) => {
    expect(canonicalJson(double(hex))).toBe(text);
  });

  it.each([
    [1e21, '1e+21'],
    [1e20, '100000000000000000000'],
    [1e-7, '1e-7'],
    [1e-6, '0.000001'],
    [-0, '0'],
    [0.1 + 0.2, '0.30000000000000004'],
    [2 ** 53 + 2, '9007199254740994'],
    [123456789012345680000, '123456789012345680000'],
    [4.5, '4.5'],
    [-1.5e-300, '-1.5e-300'],
  ])('%s serializes as %s', (value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    'refuses %s instead of printing null',
    (value) => {
      expect(() => canonicalJson(value)).toThrow(TypeError);
      expect(() => canonicalJson({ a: [value] })).toThrow(/not a JSON number/);
    },
  );
});

describe('canonicalJson: strings', () => {
  it('escapes only what JSON requires, with lower-case hex', () => {
    expect(canonicalJson('\u0000\u0001\u001f')).toBe('"\\u0000\\u0001\\u001f"');
    expect(canonicalJson('\b\t\n\f\r')).toBe('"\\b\\t\\n\\f\\r"');
    expect(canonicalJson('"\\')).toBe('"\\"\\\\"');
    expect(canonicalJson('/\u007f\u2028\u2029é€😀')).toBe('"/\u007f\u2028\u2029é€😀"');
  });

  it('reproduces the RFC 8785 §3.2.2 example', () => {
    const input =
      '{\n  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n' +
      '  "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",\n' +
      '  "literals": [null, true, false]\n}';
    expect(canonicalJson(JSON.parse(input))).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('refuses lone surrogates in values and keys', () => {
    expect(() => canonicalJson('\ud800')).toThrow(/surrogate/);
    expect(() => canonicalJson('a\udc00b')).toThrow(/surrogate/);
    expect(() => canonicalJson({ '\udfff': 1 })).toThrow(/surrogate/);
    expect(canonicalJson('\ud800\udc00')).toBe('"𐀀"');
  });
});

describe('canonicalJson: values that are not JSON', () => {
  it('throws rather than printing invalid or colliding text', () => {
    expect(() => canonicalJson([undefined] as unknown as Json)).toThrow(TypeError);
    // biome-ignore lint/suspicious/noSparseArray: a hole is the point of this test
    expect(() => canonicalJson([, 1] as unknown as Json)).toThrow(TypeError);
    expect(() => canonicalJson((() => 1) as unknown as Json)).toThrow(TypeError);
    expect(() => canonicalJson(1n as unknown as Json)).toThrow(TypeError);
    expect(() => canonicalJson(undefined as unknown as Json)).toThrow(TypeError);
  });

  it('omits object properties whose value is undefined, as JSON.stringify does', () => {
    expect(canonicalJson({ a: undefined, b: 1 } as unknown as Json)).toBe('{"b":1}');
    expect(canonicalJson({ a: undefined } as unknown as Json)).toBe('{}');
  });

  it('keeps a __proto__ key as ordinary data', () => {
    const value = JSON.parse('{"__proto__":{"x":1},"a":2}');
    expect(canonicalJson(value)).toBe('{"__proto__":{"x":1},"a":2}');
  });
});

describe('canonicalJson: properties', () => {
  it('is valid JSON that parses back to the same value and is a fixed point', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value as Json);
        // No white space outside string literals.
        expect(text.replace(/"(?:[^"\\]|\\.)*"/g, '""')).not.toMatch(/\s/);
        const back = JSON.parse(text);
        expect(back).toEqual(JSON.parse(JSON.stringify(value)));
        expect(canonicalJson(back)).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});

describe('canonicalJson: strings written verbatim', () => {
  it('writes every well-formed string as JSON.stringify does, and refuses lone surrogates', () => {
    const anyUnits = fc.string({
      unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    });
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), anyUnits), (text) => {
        const wellFormed = !/\p{Surrogate}/u.test(text);
        if (wellFormed) {
          expect(canonicalJson(text)).toBe(JSON.stringify(text));
          expect(canonicalJson({ [text]: text })).toBe(
            `{${JSON.stringify(text)}:${JSON.stringify(text)}}`,
          );
        } else expect(() => canonicalJson(text)).toThrow(TypeError);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('canonicalJson: key order of any object', () => {
  it('is the order of Object.keys(…).sort(), for few keys and many', () => {
    const key = fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), fc.nat(20).map(String));
    fc.assert(
      fc.property(fc.dictionary(key, fc.nat(9), { maxKeys: 40 }), (object) => {
        const expected = `{${Object.keys(object)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${object[k]}`)
          .join(',')}}`;
        expect(canonicalJson(object)).toBe(expected);
      }),
      { numRuns: 3_000 },
    );
  });
});
