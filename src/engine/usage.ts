import { checkApproverId, ID_RULE, isId, TOOL_NAME } from '../core/action.js';
import { WritError } from '../core/errors.js';
import { DEFAULT_JSON_LIMITS } from '../core/json.js';
import type { CompiledPolicy } from '../policy/index.js';
import type { ApprovalStatus, Store } from '../store/types.js';
import type {
  ExecuteOptions,
  GuardCall,
  GuardDefaults,
  SettleOutcome,
  WritOptions,
} from './writ.js';

/**
 * The checks of what a caller hands the engine's API. A mistake there — a store without its
 * methods, `log: 'no'`, a guard without a principal — is a `USAGE` error at the call that
 * made it, before anything is reserved, rather than a denial on every later decision or a
 * meaning quietly changed.
 */

export const usage = (message: string) => new WritError('USAGE', message);

/**
 * A value as a message shows it, its type in view — text quoted, so that `"5"` is not read
 * as 5; a bigint with its `n` — and without throwing: reporting a bad value (a symbol, an
 * object that cannot be turned into text) must not fail in turn.
 */
export function shown(value: unknown): string {
  try {
    switch (typeof value) {
      case 'string':
        return JSON.stringify(value);
      case 'bigint':
        return `${value}n`;
      case 'symbol':
        return value.toString();
      case 'function':
        return 'a function';
      case 'object':
        if (value === null) return 'null';
        return Array.isArray(value) ? 'an array' : 'an object';
      default:
        return String(value);
    }
  } catch {
    // A revoked proxy, which even Array.isArray cannot look at.
    return `an unreadable ${typeof value}`;
  }
}

export const APPROVAL_STATUSES: readonly ApprovalStatus[] = [
  'pending',
  'approved',
  'denied',
  'consumed',
  'expired',
];

/** What a store must offer; checked when an engine is created, not on its first decision. */
const STORE_METHODS = [
  'authorize',
  'settle',
  'record',
  'getSession',
  'putSession',
  'listSessions',
  'requestApproval',
  'findApproval',
  'getApproval',
  'listApprovals',
  'decideApproval',
  'listBudgets',
  'listOpenWrits',
  'sweep',
  'readLog',
  'logHead',
  'findDecision',
  'verifyLog',
  'putPolicy',
  'getPolicy',
  'close',
] as const satisfies readonly (keyof Store)[];
/** Fails to compile when `Store` gains a method this list does not name. */
type Unlisted = Exclude<keyof Store, 'kind' | (typeof STORE_METHODS)[number]>;
const _everyMethodListed: [Unlisted] extends [never] ? true : Unlisted = true;

/**
 * The keys each options object takes. Any other is a misspelling (`throwOnDenied`,
 * `writTTLMs`) that would otherwise be ignored, leaving the default in its place: it is
 * refused, naming the keys there are.
 */
const WRIT_OPTIONS = [
  'policy',
  'store',
  'clock',
  'ids',
  'writTtlMs',
  'limits',
  'secrets',
  'candidate',
  'log',
] as const satisfies readonly (keyof WritOptions)[];
const EXECUTE_OPTIONS = [
  'throwOnDeny',
  'cost',
  'waitForApproval',
] as const satisfies readonly (keyof ExecuteOptions<unknown>)[];
type WaitOptions = NonNullable<ExecuteOptions<unknown>['waitForApproval']>;
const WAIT_OPTIONS = ['timeoutMs', 'pollMs'] as const satisfies readonly (keyof WaitOptions)[];
const GUARD_DEFAULTS = [
  'principal',
  'session',
  'idempotencyKey',
  'estimate',
  'meta',
] as const satisfies readonly (keyof GuardDefaults)[];
/** A call adds what is its own: one nonce, time and signature cannot serve every call. */
const GUARD_CALL = [
  ...GUARD_DEFAULTS,
  'nonce',
  'issuedAt',
  'signature',
] as const satisfies readonly (keyof GuardCall)[];
const SETTLE_OUTCOME = [
  'status',
  'cost',
  'result',
] as const satisfies readonly (keyof SettleOutcome)[];
/** Fails to compile when an options type gains a key its list does not name. */
type UnlistedOption =
  | Exclude<keyof SettleOutcome, (typeof SETTLE_OUTCOME)[number]>
  | Exclude<keyof WritOptions, (typeof WRIT_OPTIONS)[number]>
  | Exclude<keyof ExecuteOptions<unknown>, (typeof EXECUTE_OPTIONS)[number]>
  | Exclude<keyof WaitOptions, (typeof WAIT_OPTIONS)[number]>
  | Exclude<keyof GuardDefaults, (typeof GUARD_DEFAULTS)[number]>
  | Exclude<keyof GuardCall, (typeof GUARD_CALL)[number]>;
const _everyOptionListed: [UnlistedOption] extends [never] ? true : UnlistedOption = true;

/** The first own key of `value` that `known` does not name, if any. */
function unknownKey(value: object, known: readonly string[]): string | undefined {
  return Object.keys(value).find((key) => !known.includes(key));
}

/** Refuses a settle outcome's misspelt key (`costs: 50` would settle at what was held). */
export function checkSettleKeys(outcome: object): void {
  const unknown = unknownKey(outcome, SETTLE_OUTCOME);
  if (unknown !== undefined)
    throw usage(`settle: an outcome has no ${unknown}; it takes ${SETTLE_OUTCOME.join(', ')}`);
}

/** What `execute` and `guard` are given besides the action, checked before anything runs. */
export function checkExecute<T>(fn: unknown, options: ExecuteOptions<T> | null): void {
  if (typeof fn !== 'function') throw usage('execute and guard expect the tool as a function');
  if (typeof options !== 'object' || options === null)
    throw usage('execute and guard options must be an object');
  const unknown = unknownKey(options, EXECUTE_OPTIONS);
  if (unknown !== undefined)
    throw usage(
      `execute and guard options have no ${unknown}; they are ${EXECUTE_OPTIONS.join(', ')}`,
    );
  const { cost, throwOnDeny, waitForApproval: wait } = options;
  if (cost !== undefined && typeof cost !== 'function')
    throw usage('cost must be a function from the result to its cost');
  if (throwOnDeny !== undefined && typeof throwOnDeny !== 'boolean')
    throw usage(`throwOnDeny must be true or false, not ${shown(throwOnDeny)}`);
  if (wait === undefined || wait === null) return;
  if (typeof wait !== 'object')
    throw usage(
      `waitForApproval must be an object such as { timeoutMs: 60000 }, not ${shown(wait)}`,
    );
  const unknownWait = unknownKey(wait, WAIT_OPTIONS);
  if (unknownWait !== undefined)
    throw usage(`waitForApproval has no ${unknownWait}; it takes ${WAIT_OPTIONS.join(', ')}`);
  // Infinity waits until someone decides; NaN or a negative number is a mistake.
  if (!(typeof wait.timeoutMs === 'number' && wait.timeoutMs >= 0))
    throw usage(`waitForApproval.timeoutMs must be milliseconds ≥ 0, not ${shown(wait.timeoutMs)}`);
  if (
    wait.pollMs !== undefined &&
    !(typeof wait.pollMs === 'number' && wait.pollMs > 0 && Number.isFinite(wait.pollMs))
  )
    throw usage(`waitForApproval.pollMs must be milliseconds above 0, not ${shown(wait.pollMs)}`);
}

/** Who decides an approval, and their note: checked before any store sees them. */
export function checkApprover(by: { approver: string; note?: string } | undefined): void {
  checkApproverId(by?.approver);
  if (by?.note !== undefined && typeof by.note !== 'string')
    throw usage(`an approval note must be text, not ${shown(by.note)}`);
}

/**
 * Refuses options that would fail every decision later (a store without its methods) or
 * quietly mean something else (a negative writ lifetime, `log: 'no'` read as true).
 */
export function checkOptions(options: WritOptions): void {
  const refuse = (message: string) => usage(`createWrit: ${message}`);
  if (typeof options !== 'object' || options === null)
    throw refuse('expects an options object, such as { policy: "./policy.yaml" }');
  const unknown = unknownKey(options, WRIT_OPTIONS);
  if (unknown !== undefined)
    throw refuse(`there is no option ${unknown}; the options are ${WRIT_OPTIONS.join(', ')}`);
  const isPolicy = (p: unknown) =>
    typeof p === 'string' || typeof (p as CompiledPolicy | null)?.scopeFor === 'function';
  if (!isPolicy(options.policy))
    throw refuse('policy must be a policy file path, YAML text, or a policy from loadPolicy');
  if (options.candidate !== undefined && !isPolicy(options.candidate))
    throw refuse('candidate must be a policy file path, YAML text, or a policy from loadPolicy');
  const { store, clock, ids, writTtlMs, log, secrets } = options;
  if (store !== undefined) {
    const missing = STORE_METHODS.filter(
      (method) => typeof (store as Partial<Store> | null)?.[method] !== 'function',
    );
    if (missing.length > 0)
      throw refuse(`store must be a Store such as memoryStore(); it lacks ${missing.join(', ')}`);
  }
  if (clock !== undefined && typeof clock?.now !== 'function')
    throw refuse('clock must have a now() that returns epoch milliseconds');
  if (ids !== undefined && typeof ids?.next !== 'function')
    throw refuse('ids must have a next(kind) that returns a new id');
  if (
    writTtlMs !== undefined &&
    !(typeof writTtlMs === 'number' && writTtlMs > 0 && Number.isFinite(writTtlMs))
  )
    throw refuse(`writTtlMs must be a number of milliseconds above 0, not ${shown(writTtlMs)}`);
  if (log !== undefined && typeof log !== 'boolean')
    throw refuse(`log must be true or false, not ${shown(log)}`);
  if (options.limits !== undefined) {
    if (typeof options.limits !== 'object' || options.limits === null)
      throw refuse('limits must be an object such as { maxDepth: 32 }');
    const names = Object.keys(DEFAULT_JSON_LIMITS);
    const unknownLimit = unknownKey(options.limits, names);
    if (unknownLimit !== undefined)
      throw refuse(`limits has no ${unknownLimit}; it takes ${names.join(', ')}`);
    for (const [name, value] of Object.entries(options.limits)) {
      if (!(Number.isSafeInteger(value) && (value as number) >= 1))
        throw refuse(`limits.${name} must be a whole number ≥ 1, not ${shown(value)}`);
    }
  }
  if (secrets !== undefined && typeof secrets !== 'function')
    throw refuse('secrets must be a function from a variable name to its value');
}

/** What `guard` is given, checked when the tool is wrapped rather than on its first call. */
export function checkGuard<T>(
  tool: unknown,
  fn: unknown,
  defaults: GuardDefaults | undefined,
  options: ExecuteOptions<T>,
): void {
  if (typeof tool !== 'string' || !TOOL_NAME.test(tool))
    throw usage(`guard: ${shown(tool)} is not a tool name`);
  checkExecute(fn, options);
  if (typeof defaults === 'object' && defaults !== null) checkGuardKeys('defaults', defaults);
  if (!isId(defaults?.principal?.id))
    throw usage(`guard: defaults.principal.id must be ${ID_RULE}`);
  const session = defaults?.session;
  if (!isId(typeof session === 'string' ? session : session?.id))
    throw usage(`guard: defaults.session must be a session id, or { id } with ${ID_RULE}`);
}

/**
 * Refuses a key of a guard's defaults, or of what a guarded call adds to them, that an
 * action made from them would not read as meant: a misspelling, `tool` and `args`, which
 * the guard sets itself, or in the defaults a nonce, time or signature, which belong to
 * one call.
 */
export function checkGuardKeys(what: 'defaults' | 'a call', given: object): void {
  const known = what === 'defaults' ? GUARD_DEFAULTS : GUARD_CALL;
  const unknown = unknownKey(given, known);
  if (unknown === undefined) return;
  const hint = (GUARD_CALL as readonly string[]).includes(unknown)
    ? ` (${unknown} belongs to one call: pass it with the call, as guarded(args, { ${unknown} }))`
    : '';
  throw usage(`guard: ${what} has no ${unknown}; it takes ${known.join(', ')}${hint}`);
}
