import { digestJson } from '../core/digest.js';
import { isJsonObject, type Json, type JsonObject } from '../core/json.js';

/**
 * Replaces the values at `redact:` paths of an action (`args.card_number`,
 * `args.*.password`; `*` matches any one key or index) with `sha256:<hex>` digests of their
 * canonical JSON, so the log proves what was sent without keeping it. Returns the concrete
 * paths replaced.
 */
export function redact(
  action: JsonObject,
  patterns: readonly string[],
): { action: JsonObject; redacted: string[] } {
  if (patterns.length === 0) return { action, redacted: [] };
  const redacted: string[] = [];
  let result: Json = action;
  for (const pattern of patterns) result = redactPath(result, pattern.split('.'), [], redacted);
  return { action: result as JsonObject, redacted: [...new Set(redacted)].sort() };
}

function redactPath(value: Json, rest: readonly string[], at: string[], found: string[]): Json {
  if (rest.length === 0) {
    found.push(at.join('.'));
    return digestJson(value);
  }
  const [head, ...tail] = rest as [string, ...string[]];
  if (Array.isArray(value)) {
    return value.map((item, i) =>
      head === '*' || head === String(i) ? redactPath(item, tail, [...at, String(i)], found) : item,
    );
  }
  if (!isJsonObject(value)) return value;
  const out: JsonObject = Object.create(null);
  for (const [key, item] of Object.entries(value)) {
    out[key] = head === '*' || head === key ? redactPath(item, tail, [...at, key], found) : item;
  }
  return out;
}
