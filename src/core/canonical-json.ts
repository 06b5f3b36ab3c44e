import type { Json } from './json.js';

/**
 * Serializes a JSON value per RFC 8785 (JSON Canonicalization Scheme): object keys sorted
 * by UTF-16 code units, no white space, numbers and strings as ECMAScript's JSON.stringify
 * prints them. Equal values give byte-identical text, which is what digests are taken over.
 * The input must come from {@link toJson} (finite numbers, no lone surrogates).
 */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0) out += ',';
    out += `${JSON.stringify(key)}:${canonicalJson(value[key]!)}`;
  }
  return `${out}}`;
}
