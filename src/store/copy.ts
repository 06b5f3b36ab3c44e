/** `JSON.parse(JSON.stringify(value))`, built by hand where that gives the same. */
export function jsonCopy<T>(value: T): T {
  const copy = copyPlainJson(value, 0);
  return copy === NOT_PLAIN ? JSON.parse(JSON.stringify(value)) : (copy as T);
}

const NOT_PLAIN = Symbol('not plain JSON');
/** Deeper than any record writ keeps; a cycle reaches it too, and JSON.stringify reports it. */
const MAX_PLAIN_DEPTH = 64;

/**
 * What `JSON.parse(JSON.stringify(value))` gives, built directly — several times faster on
 * the small records that cross the store's boundary on every decision — or `NOT_PLAIN` for
 * anything that is not plain data (class instances, `toJSON`, non-finite numbers, bigints,
 * a `__proto__` key, cycles), which the caller leaves to JSON itself. Like JSON, it drops
 * object fields that are `undefined`, functions or symbols, writes them as `null` in arrays,
 * and turns -0 into 0.
 */
function copyPlainJson(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value + 0 : NOT_PLAIN;
    case 'object': {
      if (value === null) return null;
      if (depth >= MAX_PLAIN_DEPTH || (value as { toJSON?: unknown }).toJSON !== undefined)
        return NOT_PLAIN;
      if (Array.isArray(value)) {
        const out: unknown[] = [];
        for (let i = 0; i < value.length; i++) {
          const item = copyPlainJson(value[i], depth + 1);
          if (item === NOT_PLAIN) return NOT_PLAIN;
          out.push(item === undefined ? null : item);
        }
        return out;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        // Assigning `__proto__` would set the prototype, where JSON.parse makes a field.
        if (key === '__proto__') return NOT_PLAIN;
        const item = copyPlainJson((value as Record<string, unknown>)[key], depth + 1);
        if (item === NOT_PLAIN) return NOT_PLAIN;
        if (item !== undefined) out[key] = item;
      }
      return out;
    }
    case 'undefined':
    case 'function':
    case 'symbol':
      // Left out of objects and written as null in arrays by the caller, as JSON does.
      return depth === 0 ? NOT_PLAIN : undefined;
    default:
      return NOT_PLAIN;
  }
}
