/**
 * JSON values as writ accepts them from the outside: plain data, finite numbers, bounded
 * size and depth. Copies are built on null-prototype objects so a `__proto__` key stays
 * an ordinary key and can never reach an object's prototype.
 */

import { messageOf } from './errors.js';

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
/** A JSON object. */
export interface JsonObject {
  [key: string]: Json;
}

/** Bounds on untrusted JSON, so hostile input costs bounded time and memory. */
export interface JsonLimits {
  /** Deepest nesting of arrays and objects. */
  maxDepth: number;
  /** Most values (scalars, arrays and objects) in one document. */
  maxNodes: number;
  /** Longest string, in UTF-16 code units. */
  maxStringLength: number;
}

/** The limits applied to request data unless an engine is configured otherwise. */
export const DEFAULT_JSON_LIMITS: JsonLimits = {
  maxDepth: 32,
  maxNodes: 10_000,
  maxStringLength: 1_000_000,
};

/** A problem with one value of a request, located by a path like `args.items[2].name`. */
export interface ValueIssue {
  path: string;
  message: string;
}

/** Issues in one line, as messages quote them: `args.a: must be …; args.b: …`. */
export function issuesText(issues: readonly ValueIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Validates `value` as JSON within `limits` and returns a null-prototype deep copy, or the
 * issues found. Rejects non-finite numbers, lone surrogates (not valid in RFC 8785),
 * `undefined`, functions, class instances and cycles.
 */
export function toJson(
  value: unknown,
  path: string,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): { ok: true; value: Json } | { ok: false; issues: ValueIssue[] } {
  const issues: ValueIssue[] = [];
  let nodes = 0;

  // A value's path is its parent's path and its key, joined only where an issue or a nested
  // value needs it: most values are valid scalars, whose paths would be thrown away.
  const copy = (v: unknown, parent: string, key: string | number | null, depth: number): Json => {
    if (++nodes > limits.maxNodes) {
      if (nodes === limits.maxNodes + 1) {
        issues.push({ path: pathOf(parent, key), message: `more than ${limits.maxNodes} values` });
      }
      return null;
    }
    switch (typeof v) {
      case 'string':
        if (v.length > limits.maxStringLength) {
          issues.push({
            path: pathOf(parent, key),
            message: `string longer than ${limits.maxStringLength}`,
          });
        } else if (LONE_SURROGATE.test(v)) {
          issues.push({
            path: pathOf(parent, key),
            message: 'string holds a lone UTF-16 surrogate',
          });
        }
        return v;
      case 'number':
        if (!Number.isFinite(v))
          issues.push({ path: pathOf(parent, key), message: `${v} is not a JSON number` });
        // -0 becomes 0, as canonical JSON writes it: a policy must not tell apart two
        // requests that sign and digest alike.
        return v + 0;
      case 'boolean':
        return v;
      case 'object': {
        if (v === null) return null;
        const at = pathOf(parent, key);
        if (depth >= limits.maxDepth) {
          issues.push({ path: at, message: `nested deeper than ${limits.maxDepth}` });
          return null;
        }
        // Getters and proxies can throw; that is a bad value, not a reason to throw.
        try {
          if (Array.isArray(v)) {
            // A sparse array has a length but few elements: bound the length itself, and
            // visit every index so a hole is reported instead of copied as a hole.
            if (v.length > limits.maxNodes - nodes) {
              nodes = limits.maxNodes + 1;
              issues.push({ path: at, message: `more than ${limits.maxNodes} values` });
              return null;
            }
            const items: Json[] = [];
            // A hole is read as the hole it is, not as what an index of Array.prototype or
            // Object.prototype (polluted) would put there.
            for (let i = 0; i < v.length; i++)
              items.push(copy(Object.hasOwn(v, i) ? v[i] : undefined, at, i, depth + 1));
            return items;
          }
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) {
            issues.push({ path: at, message: 'is not a plain JSON object' });
            return null;
          }
          const out: JsonObject = Object.create(null);
          for (const name of Object.keys(v)) {
            if (LONE_SURROGATE.test(name)) {
              issues.push({ path: at, message: 'a key holds a lone UTF-16 surrogate' });
            }
            let item: unknown;
            try {
              item = (v as Record<string, unknown>)[name];
            } catch (error) {
              issues.push({
                path: childPath(at, name),
                message: `cannot be read: ${errorMessage(error)}`,
              });
              continue;
            }
            out[name] = copy(item, at, name, depth + 1);
          }
          return out;
        } catch (error) {
          issues.push({ path: at, message: `cannot be read: ${errorMessage(error)}` });
          return null;
        }
      }
      default:
        issues.push({ path: pathOf(parent, key), message: `${typeof v} is not a JSON value` });
        return null;
    }
  };

  const result = copy(value, path, null, 0);
  return issues.length === 0 ? { ok: true, value: result } : { ok: false, issues };
}

/**
 * {@link messageOf}, cut to 200 characters: for what is kept with a decision or a request's
 * issues (a store failure's reason, a value that cannot be read), where a thrown value's
 * text must not make the entry as long as it likes.
 */
export function errorMessage(error: unknown): string {
  return messageOf(error).slice(0, 200);
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The path of the value at `key` (an index, a field, or `null` for the root) in `parent`. */
function pathOf(parent: string, key: string | number | null): string {
  if (key === null) return parent;
  return typeof key === 'number' ? `${parent}[${key}]` : childPath(parent, key);
}

function childPath(parent: string, key: string): string {
  return IDENTIFIER.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/** True for a non-null, non-array object. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
