import { Environment } from '@marcbachmann/cel-js';
import type { Action } from '../core/action.js';
import type { Json, JsonObject } from '../core/json.js';
import {
  emailDomain,
  globMatch,
  normalizePath,
  pathWithin,
  regexMatches,
  regexProblem,
  urlHost,
  urlScheme,
} from './helpers.js';

/**
 * The CEL environment every policy expression is compiled in. Variables are typed so a
 * misspelt name or field (`sesion.attrs`, `principal.tenat`) fails at load time instead of
 * silently never matching. `args`, `attrs` and `meta` are maps of dynamic JSON values.
 */

/** `principal` as expressions see it. */
export class PrincipalContext {
  readonly id: string;
  readonly tenant?: string;
  readonly roles: string[];
  readonly attrs: JsonObject;
  constructor(action: Action) {
    this.id = action.principal.id;
    if (action.principal.tenant !== undefined) this.tenant = action.principal.tenant;
    this.roles = action.principal.roles;
    this.attrs = action.principal.attrs;
  }
}

/** `session` as expressions see it. */
export class SessionContext {
  constructor(
    readonly id: string,
    readonly attrs: JsonObject,
    readonly labels: readonly string[],
  ) {}
}

/** `request` as expressions see it; absent fields are absent (test them with `has()`). */
export class RequestContext {
  readonly idempotencyKey?: string;
  readonly nonce?: string;
  readonly issuedAt?: Date;
  readonly meta: JsonObject;
  constructor(action: Action) {
    if (action.idempotencyKey !== undefined) this.idempotencyKey = action.idempotencyKey;
    if (action.nonce !== undefined) this.nonce = action.nonce;
    if (action.issuedAt !== undefined) this.issuedAt = new Date(action.issuedAt);
    this.meta = action.meta;
  }
}

/** The constant whose `matches(s, p)` runs RE2 (see {@link withLinearRegexes}). */
const RE2 = '__re2';

class PathHelpers {}
class UrlHelpers {}
class EmailHelpers {}
class GlobHelpers {}
class RegexHelpers {}

const TIMESTAMP = 'google.protobuf.Timestamp';

function helper(
  receiverType: string,
  name: string,
  params: string[],
  returnType: string,
  fn: (...args: string[]) => unknown,
) {
  return {
    name,
    receiverType,
    returnType,
    params: params.map((type, i) => ({ name: `arg${i}`, type })),
    handler: (_receiver: unknown, ...args: string[]) => fn(...args),
  };
}

function createEnvironment(): Environment {
  return (
    new Environment({ homogeneousAggregateLiterals: false })
      .registerType('writ.Principal', {
        ctor: PrincipalContext,
        fields: {
          id: 'string',
          tenant: 'string',
          roles: 'list<string>',
          attrs: 'map<string, dyn>',
        },
      })
      .registerType('writ.Session', {
        ctor: SessionContext,
        fields: { id: 'string', attrs: 'map<string, dyn>', labels: 'list<string>' },
      })
      .registerType('writ.Request', {
        ctor: RequestContext,
        fields: {
          idempotencyKey: 'string',
          nonce: 'string',
          issuedAt: TIMESTAMP,
          meta: 'map<string, dyn>',
        },
      })
      .registerType('writ.PathHelpers', PathHelpers)
      .registerType('writ.UrlHelpers', UrlHelpers)
      .registerType('writ.EmailHelpers', EmailHelpers)
      .registerType('writ.GlobHelpers', GlobHelpers)
      .registerType('writ.RegexHelpers', RegexHelpers)
      .registerFunction(
        helper('writ.PathHelpers', 'within', ['string', 'string'], 'bool', pathWithin),
      )
      .registerFunction(
        helper('writ.PathHelpers', 'normalize', ['string'], 'string', normalizePath),
      )
      .registerFunction(helper('writ.UrlHelpers', 'host', ['string'], 'string', urlHost))
      .registerFunction(helper('writ.UrlHelpers', 'scheme', ['string'], 'string', urlScheme))
      .registerFunction(helper('writ.EmailHelpers', 'domain', ['string'], 'string', emailDomain))
      .registerFunction(
        helper('writ.GlobHelpers', 'match', ['string', 'string'], 'bool', globMatch),
      )
      .registerFunction(
        helper('writ.RegexHelpers', 'matches', ['string', 'string'], 'bool', regexMatches),
      )
      // CEL's global form, which cel-js does not have; RE2 as well.
      .registerFunction('matches(string, string): bool', regexMatches)
      .registerConstant('path', 'writ.PathHelpers', new PathHelpers())
      .registerConstant('url', 'writ.UrlHelpers', new UrlHelpers())
      .registerConstant('email', 'writ.EmailHelpers', new EmailHelpers())
      .registerConstant('glob', 'writ.GlobHelpers', new GlobHelpers())
      .registerConstant(RE2, 'writ.RegexHelpers', new RegexHelpers())
      .registerVariable('tool', 'string')
      .registerVariable('args', 'map<string, dyn>')
      .registerVariable('principal', 'writ.Principal')
      .registerVariable('session', 'writ.Session')
      .registerVariable('request', 'writ.Request')
      .registerVariable('estimate', 'map<string, double>')
      .registerVariable('now', TIMESTAMP)
  );
}

let shared: Environment | undefined;

/** The environment, built once per process (building one is expensive). */
export function celEnvironment(): Environment {
  shared ??= createEnvironment();
  return shared;
}

/** What an expression is used for, which fixes the types it may return. */
export type ExpressionKind = 'condition' | 'key' | 'amount';

const ACCEPTED_TYPES: Record<ExpressionKind, readonly string[]> = {
  condition: ['bool', 'dyn'],
  key: ['string', 'int', 'uint', 'double', 'dyn'],
  amount: ['int', 'uint', 'double', 'dyn'],
};

/** The evaluation context: every variable an expression can read. */
export interface CelContext {
  tool: string;
  args: JsonObject;
  principal: PrincipalContext;
  session: SessionContext;
  request: RequestContext;
  estimate: Record<string, number>;
  now: Date;
}

/** A compiled expression, or where and why it failed to compile. */
export type CompiledExpression =
  | { ok: true; evaluate: (ctx: CelContext) => unknown }
  | { ok: false; message: string; offset: number };

/** Parses and type-checks `source` once; the result evaluates it many times. */
export function compileExpression(source: string, kind: ExpressionKind): CompiledExpression {
  const env = celEnvironment();
  const checked = env.check(source);
  if (!checked.valid) {
    const error = checked.error as { summary?: string; message: string; range?: { start: number } };
    return { ok: false, message: error.summary ?? error.message, offset: error.range?.start ?? 0 };
  }
  const type = String(checked.type);
  if (!ACCEPTED_TYPES[kind].includes(type)) {
    return {
      ok: false,
      message: `expression has type ${type}; ${kind === 'amount' ? 'an' : 'a'} ${kind} must be ${ACCEPTED_TYPES[kind].filter((t) => t !== 'dyn').join(' or ')}`,
      offset: 0,
    };
  }
  const reserved = new RegExp(`\\b${RE2}\\b`).exec(source);
  if (reserved)
    return { ok: false, message: `${RE2} is a name writ keeps for itself`, offset: reserved.index };
  const run = env.parse(source);
  const invalid = withLinearRegexes(run.ast as unknown as AstNode);
  if (invalid) return { ok: false, ...invalid };
  return {
    ok: true,
    evaluate: (ctx) => {
      try {
        return run(ctx);
      } catch (error) {
        const maps = withMaps(ctx);
        if (!maps) throw error;
        return run(maps);
      }
    },
  };
}

/**
 * The context with every object that has a key named `constructor` handed over as a `Map`,
 * or undefined when there is none. cel-js tells a map from other types by an object's
 * `constructor`, which such a key shadows: every condition that touched
 * `{"lang": "ts", "constructor": "public"}` failed with "Unsupported type". Looked for only
 * after an expression failed, so that no decision pays for the walk.
 */
function withMaps(ctx: CelContext): CelContext | undefined {
  const [args, principal, session, meta, estimate] = [
    ctx.args,
    ctx.principal.attrs,
    ctx.session.attrs,
    ctx.request.meta,
    ctx.estimate,
  ].map(hasConstructorKey);
  if (!(args || principal || session || meta || estimate)) return undefined;
  return {
    tool: ctx.tool,
    args: args ? asMaps(ctx.args) : ctx.args,
    principal: principal
      ? Object.assign(Object.create(PrincipalContext.prototype), ctx.principal, {
          attrs: asMaps(ctx.principal.attrs),
        })
      : ctx.principal,
    session: session
      ? new SessionContext(ctx.session.id, asMaps(ctx.session.attrs), ctx.session.labels)
      : ctx.session,
    request: meta
      ? Object.assign(Object.create(RequestContext.prototype), ctx.request, {
          meta: asMaps(ctx.request.meta),
        })
      : ctx.request,
    estimate: estimate ? asMaps(ctx.estimate) : ctx.estimate,
    now: ctx.now,
  };
}

function hasConstructorKey(value: Json): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasConstructorKey);
  return Object.hasOwn(value, 'constructor') || Object.values(value).some(hasConstructorKey);
}

/** A JSON value with its objects that have a `constructor` key turned into `Map`s. */
function asMaps<T extends Json>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(asMaps) as T;
  const entries = Object.entries(value).map(([k, v]) => [k, asMaps(v)] as const);
  if (Object.hasOwn(value, 'constructor')) return new Map(entries) as unknown as T;
  return Object.assign(Object.create(null), Object.fromEntries(entries));
}

interface AstNode {
  op: string;
  args: unknown;
  start: number;
}

const isAst = (value: unknown): value is AstNode =>
  typeof value === 'object' && value !== null && typeof (value as AstNode).op === 'string';

/** A node that reads {@link RE2}, to put in place of a `matches` call's receiver. */
let re2Node: AstNode | undefined;

/**
 * CEL specifies RE2 for `matches`, which runs in linear time; cel-js uses JavaScript's
 * backtracking engine, where `"^(a+)+$"` takes seconds on a 30-character argument — and
 * arguments come from the agent. Every `s.matches(p)` in the parsed expression becomes
 * `__re2.matches(s, p)`, which runs RE2, by changing the call's node in place: its
 * receiver and arguments, nothing else. (The global `matches(s, p)` is registered to run
 * RE2 itself.) The text is never printed again: printing the tree dropped parentheses that
 * matter (`a - (b + c)` became `a - b + c`) and rounded numbers, and splicing the text
 * depended on cel-js's source ranges, which are not exact around parentheses. A constant
 * pattern that is not valid RE2 is a load error.
 */
function withLinearRegexes(root: AstNode): { message: string; offset: number } | undefined {
  re2Node ??= celEnvironment().parse(RE2).ast as unknown as AstNode;
  let invalid: { message: string; offset: number } | undefined;
  const seen = new Set<unknown>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) visit(item);
    if (!isAst(value) || seen.has(value)) return;
    seen.add(value);
    const args = value.args as unknown[];
    visit(args);
    let pattern: unknown;
    if (value.op === 'rcall' && args[0] === 'matches' && (args[2] as unknown[]).length === 1) {
      pattern = (args[2] as unknown[])[0];
      value.args = ['matches', re2Node, [args[1], pattern]];
    } else if (value.op === 'call' && args[0] === 'matches' && (args[1] as unknown[]).length === 2)
      pattern = (args[1] as unknown[])[1];
    if (isAst(pattern) && pattern.op === 'value' && typeof pattern.args === 'string') {
      const problem = regexProblem(pattern.args);
      if (problem)
        invalid ??= {
          message: `invalid RE2 regular expression: ${problem}`,
          offset: pattern.start,
        };
    }
  };
  visit(root);
  return invalid;
}

/**
 * Runs `evaluate` without capturing stack traces. A failing condition (a missing argument —
 * which the caller controls) throws inside cel-js; the stack is never shown, and capturing
 * it made a failure cost about 70 times an evaluation. Every entry point that evaluates
 * expressions runs them inside this, once per decision (with its input passed on, so hot
 * callers allocate no closure).
 */
export function withoutStackTraces<A, T>(evaluate: (input: A) => T, input: A): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return evaluate(input);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
