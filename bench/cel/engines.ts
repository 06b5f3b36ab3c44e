/**
 * The two CEL libraries behind one interface, fed the same request, with results turned
 * into comparable text. `cel-js` runs exactly as writ runs it: writ's environment
 * (typed variables, the `path.`/`url.`/`email.`/`glob.` helpers) and writ's context built
 * from a validated action. `@bufbuild/cel` gets the same values as plain objects and the
 * same helpers registered as functions; it has no type checker, so an expression writ
 * would refuse at load time is evaluated there anyway.
 */
import {
  type CelInput,
  CelScalar,
  celEnv,
  celFunc,
  isCelError,
  isCelList,
  isCelMap,
  isCelType,
  isCelUint,
  parse,
  plan,
} from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import type { Action } from '../../src/core/action.js';
import { celEnvironment } from '../../src/policy/cel.js';
import { buildContext } from '../../src/policy/evaluate.js';
import {
  emailDomain,
  globMatch,
  normalizePath,
  pathWithin,
  urlHost,
  urlScheme,
} from '../../src/policy/helpers.js';

/** The result of one evaluation as comparable text. */
export type Result =
  | { kind: 'value'; value: string }
  | { kind: 'error'; message: string }
  /** writ refuses the expression when the policy loads (parse or type error). */
  | { kind: 'rejected'; message: string };

/** A compiled expression of one library: evaluates against an action. */
export type Evaluate = (action: Action) => Result;

/** The decision time given to both libraries as `now`. */
export const CEL_NOW = Date.parse('2026-11-23T12:00:00Z');

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/** Canonical text of a CEL value from either library: type-tagged, map keys sorted. */
export function canonical(value: unknown): string {
  switch (typeof value) {
    case 'bigint':
      return `int(${value})`;
    case 'number':
      return `double(${Object.is(value, -0) ? '-0' : String(value)})`;
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return String(value);
    case 'undefined':
      return 'undefined';
    case 'object': {
      if (value === null) return 'null';
      if (isCelUint(value)) return `uint(${value.value})`;
      const ctor = (value as object).constructor?.name;
      if (ctor === 'UnsignedInt') return `uint(${String(value)})`;
      if (value instanceof Date) return `timestamp(${value.toISOString()})`;
      if (isCelType(value)) return `type(${String(value)})`;
      if (ctor === 'Type') return `type(${String(value)})`;
      if (ctor === 'Duration') return `duration(${String(value)})`;
      if (Array.isArray(value) || isCelList(value))
        return `[${[...(value as Iterable<unknown>)].map(canonical).join(', ')}]`;
      if (value instanceof Map || isCelMap(value)) {
        const entries = [...(value as Map<unknown, unknown>)].map(
          ([k, v]) => `${canonical(k)}: ${canonical(v)}`,
        );
        return `{${entries.sort().join(', ')}}`;
      }
      const message = value as { $typeName?: string; seconds?: bigint; nanos?: number };
      if (message.$typeName === 'google.protobuf.Timestamp')
        return `timestamp(${new Date(Number(message.seconds) * 1000 + Math.floor((message.nanos ?? 0) / 1e6)).toISOString()})`;
      if (message.$typeName === 'google.protobuf.Duration')
        return `duration(${message.seconds}s${message.nanos ? `${message.nanos}ns` : ''})`;
      const entries = Object.entries(value as Record<string, unknown>).map(
        ([k, v]) => `${JSON.stringify(k)}: ${canonical(v)}`,
      );
      return `{${entries.sort().join(', ')}}`;
    }
    default:
      return `<${typeof value}>`;
  }
}

/** Compiles `source` with cel-js in writ's environment. */
export function celJs(source: string): Evaluate {
  const env = celEnvironment();
  const checked = env.check(source);
  if (!checked.valid) {
    const message = firstLine(checked.error);
    return () => ({ kind: 'rejected', message });
  }
  const run = env.parse(source);
  return (action) => {
    try {
      return { kind: 'value', value: canonical(run(buildContext(action, CEL_NOW))) };
    } catch (error) {
      return { kind: 'error', message: firstLine(error) };
    }
  };
}

const S = CelScalar.STRING;
/** writ's helpers as @bufbuild/cel functions (CEL resolves `path.within` as one qualified name). */
const HELPERS = [
  celFunc('path.within', [S, S], CelScalar.BOOL, (p, root) => pathWithin(p, root)),
  celFunc('path.normalize', [S], S, (p) => normalizePath(p)),
  celFunc('url.host', [S], S, (u) => urlHost(u)),
  celFunc('url.scheme', [S], S, (u) => urlScheme(u)),
  celFunc('email.domain', [S], S, (a) => emailDomain(a)),
  celFunc('glob.match', [S, S], CelScalar.BOOL, (g, s) => globMatch(g, s)),
];

let bufEnv: ReturnType<typeof celEnv> | undefined;

/** The @bufbuild/cel environment: std library, the `strings` extension, writ's helpers. */
export function bufEnvironment(): ReturnType<typeof celEnv> {
  bufEnv ??= celEnv({ funcs: [...strings, ...HELPERS] });
  return bufEnv;
}

/**
 * A deep copy with ordinary prototypes, or with objects as `Map`s. writ's JSON values are
 * null-prototype objects (so `__proto__` stays data); @bufbuild/cel 0.6.1 fails on those
 * ("Cannot read properties of undefined (reading 'name')"). It reads `Map`s several times
 * faster than plain objects, which it converts on every access.
 */
function copy(value: unknown, maps: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => copy(v, maps));
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).map(([k, v]) => [k, copy(v, maps)] as const);
    return maps ? new Map(entries) : Object.fromEntries(entries);
  }
  return value;
}

/**
 * The variables writ's context holds, as values @bufbuild/cel accepts: plain objects, or
 * (`maps`) every object as a `Map`, its fastest input.
 */
export function bufBindings(action: Action, maps = false): Record<string, CelInput> {
  const plain = (v: unknown) => copy(v, maps);
  const principal: Record<string, unknown> = {
    id: action.principal.id,
    roles: action.principal.roles,
    attrs: action.principal.attrs,
  };
  if (action.principal.tenant !== undefined) principal.tenant = action.principal.tenant;
  const request: Record<string, unknown> = { meta: action.meta };
  if (action.idempotencyKey !== undefined) request.idempotencyKey = action.idempotencyKey;
  if (action.nonce !== undefined) request.nonce = action.nonce;
  const session = {
    id: action.session.id,
    attrs: action.session.attrs,
    labels: action.session.labels,
  };
  return {
    tool: action.tool,
    args: plain(action.args) as CelInput,
    principal: plain(principal) as CelInput,
    session: plain(session) as CelInput,
    request: plain(request) as CelInput,
    estimate: plain(action.estimate) as CelInput,
    now: timestampFromMs(CEL_NOW),
  };
}

/** Compiles `source` with @bufbuild/cel (std library, the `strings` extension, writ's helpers). */
export function bufCel(source: string): Evaluate {
  let run: ReturnType<typeof plan>;
  try {
    run = plan(bufEnvironment(), parse(source));
  } catch (error) {
    const message = firstLine(error);
    return () => ({ kind: 'rejected', message });
  }
  return (action) => {
    try {
      const value = run(bufBindings(action));
      if (isCelError(value)) return { kind: 'error', message: firstLine(value) };
      return { kind: 'value', value: canonical(value) };
    } catch (error) {
      return { kind: 'error', message: firstLine(error) };
    }
  };
}
