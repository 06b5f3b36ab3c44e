import type { Json } from './json.js';

const LONE_SURROGATE = /\p{Surrogate}/u;
/**
 * What JSON.stringify would escape (controls, `"`, `\`) or RFC 8785 may refuse (any
 * surrogate, in UTF-16 code units): a string with none of these is written as it is.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON escapes
const NOT_VERBATIM = /[\u0000-\u001f"\\\ud800-\udfff]/;

/**
 * Serializes a JSON value per RFC 8785 (JSON Canonicalization Scheme): object keys sorted
 * by UTF-16 code units, no white space, numbers and strings as ECMAScript's JSON.stringify
 * prints them. Equal values give byte-identical text, which is what digests are taken over.
 * The input should come from {@link toJson}; anything RFC 8785 cannot represent (NaN,
 * ±Infinity, lone surrogates, `undefined` or holes in arrays, functions) throws a `TypeError`
 * rather than being printed as something else, so two different values never share a digest.
 * An object property whose value is `undefined` is absent, as with `JSON.stringify`.
 */
export function canonicalJson(value: Json): string {
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'string':
      return canonicalString(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += canonicalJson(value[i] as Json);
        }
        return `${out}]`;
      }
      const keys = sortedKeys(value);
      let out = '{';
      for (const key of keys) {
        const item = value[key];
        // An optional field set to undefined is absent, as JSON.stringify treats it.
        if (item === undefined) continue;
        if (out.length > 1) out += ',';
        out += `${canonicalString(key)}:${canonicalJson(item)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`${typeof value} is not a JSON value`);
  }
}

/**
 * An object's keys in UTF-16 code unit order, as `Object.keys(object).sort()` gives them:
 * `<` compares strings the same way, and an insertion sort of the few keys an object
 * usually has is much faster than the generic sort.
 */
function sortedKeys(object: object): string[] {
  const keys = Object.keys(object);
  if (keys.length > 16) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
}

function canonicalString(text: string): string {
  // Most keys and values are plain text: quoting them is all JSON.stringify would do.
  if (!NOT_VERBATIM.test(text)) return `"${text}"`;
  if (LONE_SURROGATE.test(text)) throw new TypeError('a string holds a lone UTF-16 surrogate');
  return JSON.stringify(text);
}
