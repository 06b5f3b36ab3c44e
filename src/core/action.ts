import { WritError } from './errors.js';
import {
  DEFAULT_JSON_LIMITS,
  isJsonObject,
  type JsonLimits,
  type JsonObject,
  toJson,
  type ValueIssue,
} from './json.js';

/** Who acts. Over HTTP and MCP this comes from authentication, never from the request body. */
export interface Principal {
  id: string;
  tenant?: string;
  roles: string[];
  attrs: JsonObject;
}

/**
 * The agent run an action belongs to. `attrs` are set by the trusted host (e.g. payees the
 * user named); `labels` are set by writ's label rules after earlier calls.
 */
export interface SessionRef {
  id: string;
  attrs: JsonObject;
  labels: string[];
}

/** A proposed tool call, validated and normalized. */
export interface Action {
  tool: string;
  args: JsonObject;
  principal: Principal;
  session: SessionRef;
  idempotencyKey?: string;
  nonce?: string;
  /** When the caller issued the request, epoch ms (given as RFC 3339 text). */
  issuedAt?: number;
  /** Expected consumption, e.g. `{ cost: 12.5 }`. */
  estimate: Record<string, number>;
  meta: JsonObject;
  /** Signature over the canonical action, `hmac-sha256:<base64>` or `ed25519:<base64>`. */
  signature?: string;
}

/**
 * Tool names are ASCII identifiers, optionally dotted, slashed or colon-separated
 * (`k8s.apply`, `github/create_issue`). Anything else, including Unicode look-alikes of a
 * real tool name, is rejected rather than matched against rules by accident.
 */
export const TOOL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$/;
// No controls, lone surrogates, line separators or bidi controls (which make the text
// around an id read in another order). Joiners and other invisible characters that real
// names use (the ZWNJ of Persian, the ZWJ of emoji) are kept; `sameParty` sees through
// them.
const ID = /^[^\p{Cc}\p{Cs}\p{Zl}\p{Zp}\p{Bidi_Control}]{1,256}$/u;
/**
 * Characters that show nothing by themselves: joiners, variation selectors, fillers, the
 * other format characters (annotation marks, number signs) and the blank Braille pattern.
 */
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\u2800]/gu;
const LABEL = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses an RFC 3339 date-time (`2026-11-23T10:00:00Z`, `…+01:00`) into epoch ms, or
 * `undefined`. Stricter than `Date.parse`, which also takes other formats and rolls
 * impossible dates such as February 30 over into the next month.
 */
export function parseRfc3339(text: string): number | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const year = Number(match[1]);
  const month = Number(match[2]);
  const day = Number(match[3]);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (days === undefined || day < 1 || day > days) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

const ACTION_KEYS = new Set([
  'tool',
  'args',
  'principal',
  'session',
  'idempotencyKey',
  'nonce',
  'issuedAt',
  'estimate',
  'meta',
  'signature',
]);
const PRINCIPAL_KEYS = new Set(['id', 'tenant', 'roles', 'attrs']);
const SESSION_KEYS = new Set(['id', 'attrs', 'labels']);

/** The result of {@link parseAction}: an action, or every problem found. */
export type ParsedAction = { ok: true; action: Action } | { ok: false; issues: ValueIssue[] };

/**
 * Validates untrusted input as an {@link Action}. Never throws: every problem is returned
 * with the path it was found at, and the caller denies with `INVALID_REQUEST`.
 */
export function parseAction(
  input: unknown,
  limits: JsonLimits = DEFAULT_JSON_LIMITS,
): ParsedAction {
  // Input from a library caller may carry getters or proxies that throw; a request that
  // cannot be read is an invalid request, not an exception.
  try {
    return parseActionUnguarded(input, limits);
  } catch (error) {
    const message = error instanceof Error ? error.message : 'unreadable value';
    return { ok: false, issues: [{ path: 'action', message: `cannot be read: ${message}` }] };
  }
}

function parseActionUnguarded(input: unknown, limits: JsonLimits): ParsedAction {
  const issues: ValueIssue[] = [];
  if (!isJsonObject(input))
    return { ok: false, issues: [{ path: 'action', message: 'must be an object' }] };
  const obj = input as Record<string, unknown>;
  unknownKeys(obj, ACTION_KEYS, 'action', issues);

  const tool = field(obj, 'tool');
  if (typeof tool !== 'string') issues.push({ path: 'tool', message: 'must be a string' });
  else if (!TOOL_NAME.test(tool)) {
    issues.push({
      path: 'tool',
      message: `${JSON.stringify(tool.slice(0, 140))} is not a valid tool name (ASCII letters, digits and _ . : / - only)`,
    });
  }

  const args = jsonObject(field(obj, 'args') ?? EMPTY, 'args', limits, issues);
  const principal = parsePrincipal(field(obj, 'principal'), limits, issues);
  const session = parseSession(field(obj, 'session'), limits, issues);
  const idempotencyKey = optionalId(field(obj, 'idempotencyKey'), 'idempotencyKey', issues);
  const nonce = optionalId(field(obj, 'nonce'), 'nonce', issues);
  const signature = optionalId(field(obj, 'signature'), 'signature', issues);

  let issuedAt: number | undefined;
  const issued = field(obj, 'issuedAt');
  if (issued !== undefined) {
    const ms = typeof issued === 'string' ? parseRfc3339(issued) : undefined;
    if (ms !== undefined) issuedAt = ms;
    else
      issues.push({
        path: 'issuedAt',
        message: 'must be an RFC 3339 time such as 2026-11-23T10:00:00Z',
      });
  }

  const estimate: Record<string, number> = Object.create(null);
  const estimated = field(obj, 'estimate');
  if (estimated !== undefined) {
    if (!isJsonObject(estimated))
      issues.push({ path: 'estimate', message: 'must be an object of numbers' });
    else {
      for (const [key, value] of Object.entries(estimated)) {
        if (typeof value === 'number' && Number.isFinite(value) && value >= 0)
          estimate[key] = value;
        else issues.push({ path: `estimate.${key}`, message: 'must be a finite number ≥ 0' });
      }
    }
  }
  const meta = jsonObject(field(obj, 'meta') ?? EMPTY, 'meta', limits, issues);

  if (issues.length > 0) return { ok: false, issues };
  const action: Action = { tool: tool as string, args, principal, session, estimate, meta };
  if (idempotencyKey !== undefined) action.idempotencyKey = idempotencyKey;
  if (nonce !== undefined) action.nonce = nonce;
  if (issuedAt !== undefined) action.issuedAt = issuedAt;
  if (signature !== undefined) action.signature = signature;
  return { ok: true, action };
}

function parsePrincipal(value: unknown, limits: JsonLimits, issues: ValueIssue[]): Principal {
  const principal: Principal = { id: '', roles: [], attrs: Object.create(null) };
  if (!isJsonObject(value)) {
    issues.push({ path: 'principal', message: 'must be an object with an id' });
    return principal;
  }
  const obj = value as Record<string, unknown>;
  unknownKeys(obj, PRINCIPAL_KEYS, 'principal', issues);
  principal.id = requiredId(field(obj, 'id'), 'principal.id', issues);
  const tenant = optionalId(field(obj, 'tenant'), 'principal.tenant', issues);
  if (tenant !== undefined) principal.tenant = tenant;
  principal.roles = stringList(field(obj, 'roles'), 'principal.roles', ID, issues);
  principal.attrs = jsonObject(field(obj, 'attrs') ?? EMPTY, 'principal.attrs', limits, issues);
  return principal;
}

function parseSession(value: unknown, limits: JsonLimits, issues: ValueIssue[]): SessionRef {
  const session: SessionRef = { id: '', attrs: Object.create(null), labels: [] };
  if (!isJsonObject(value)) {
    issues.push({ path: 'session', message: 'must be an object with an id' });
    return session;
  }
  const obj = value as Record<string, unknown>;
  unknownKeys(obj, SESSION_KEYS, 'session', issues);
  session.id = requiredId(field(obj, 'id'), 'session.id', issues);
  session.attrs = jsonObject(field(obj, 'attrs') ?? EMPTY, 'session.attrs', limits, issues);
  const labels = stringList(field(obj, 'labels'), 'session.labels', LABEL, issues);
  // Sorted, without duplicates: a fresh list of fewer than two already is.
  session.labels = labels.length < 2 ? labels : [...new Set(labels)].sort();
  return session;
}

/**
 * A field of a request object, its own only: one inherited — from a prototype the caller
 * built, or one something in the process polluted (`Object.prototype.nonce`) — is not part
 * of the request, and must not be read as if it were.
 */
function field(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function unknownKeys(
  obj: Record<string, unknown>,
  known: Set<string>,
  at: string,
  issues: ValueIssue[],
) {
  for (const key of Object.keys(obj)) {
    if (!known.has(key)) {
      issues.push({
        path: at,
        message: `unknown key ${JSON.stringify(key)}; expected one of ${[...known].join(', ')}`,
      });
    }
  }
}

/** What an absent object of a request stands for: `{}`. Only ever compared with, never returned. */
const EMPTY: JsonObject = Object.freeze({}) as JsonObject;

function jsonObject(
  value: unknown,
  at: string,
  limits: JsonLimits,
  issues: ValueIssue[],
): JsonObject {
  // Absent: what toJson makes of `{}`, without its walk (most requests leave out attrs and
  // meta) — unless limits allow no value or no nesting at all, which refuse even `{}`.
  if (value === EMPTY && limits.maxNodes >= 1 && limits.maxDepth >= 1) return Object.create(null);
  if (!isJsonObject(value)) {
    issues.push({ path: at, message: 'must be an object' });
    return Object.create(null);
  }
  const result = toJson(value, at, limits);
  if (!result.ok) {
    issues.push(...result.issues);
    return Object.create(null);
  }
  return result.value as JsonObject;
}

/** What an id must be — of a principal, a session, an approver, a key. */
export const ID_RULE =
  'a string of at most 256 characters that shows something, with no space at either end';

/**
 * Printable ASCII, a visible character at either end: an id whatever else {@link isId} would
 * check (no control, separator or invisible character, nothing for `trim` to take off), and
 * what nearly every id is — tested first, as the full check's Unicode classes cost more.
 */
const PLAIN_ID = /^[!-~](?:[ -~]*[!-~])?$/;

/** True when `value` is an id: {@link ID_RULE}. */
export function isId(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  if (value.length <= 256 && PLAIN_ID.test(value)) return true;
  if (!ID.test(value)) return false;
  // Judged as it reads: an invisible character must not hide a space at either end.
  const shown = value.replace(INVISIBLE, '');
  return shown !== '' && shown.trim() === shown && value.trim() === value;
}

/**
 * Whether two ids name the same party for the approver ≠ requester rule: equal once
 * invisible characters are dropped, compatibility-normalized (NFKC) and case-folded, so
 * that `Agent-7`, a full-width `ａgent-7` or `agent-7` with a zero-width joiner or a
 * variation selector cannot approve what `agent-7` asked for. (Look-alikes from other
 * scripts, a Cyrillic `а`, are other names: telling them apart is the approvers'
 * authentication's job.)
 */
export function sameParty(a: string, b: string): boolean {
  return partyOf(a) === partyOf(b);
}

/**
 * Case folding by way of lower, upper and lower case again: lower-casing alone keeps apart
 * what upper-casing merges — `AGENTΣ` lower-cases to a final `ς`, not the `σ` of `agentσ`,
 * and `STRASSE` is `straße` upper-cased — while upper-casing alone keeps apart what
 * lower-casing merges: the capital `ẞ` stays itself upper-cased, and lower-cases to `ß`.
 * Merging more names than full case folding would only refuse more self-approvals.
 */
function partyOf(id: string): string {
  return id
    .replace(INVISIBLE, '')
    .normalize('NFKC')
    .toLowerCase()
    .toUpperCase()
    .toLowerCase()
    .normalize('NFKC');
}

/**
 * Refuses (`USAGE`) an approver that is not an id: an approval decided by nobody in
 * particular would bind nobody. The engine checks it for every store, the ledger for
 * callers of a store itself.
 */
export function checkApproverId(approver: unknown): asserts approver is string {
  if (!isId(approver))
    throw new WritError(
      'USAGE',
      `the approver must be ${ID_RULE}, not ${JSON.stringify(approver)}`,
    );
}

function requiredId(value: unknown, at: string, issues: ValueIssue[]): string {
  if (isId(value)) return value;
  issues.push({ path: at, message: `must be ${ID_RULE}` });
  return '';
}

function optionalId(value: unknown, at: string, issues: ValueIssue[]): string | undefined {
  return value === undefined ? undefined : requiredId(value, at, issues);
}

function stringList(value: unknown, at: string, pattern: RegExp, issues: ValueIssue[]): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 1000) {
    issues.push({ path: at, message: 'must be a list of at most 1000 strings' });
    return [];
  }
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    // A hole is missing, whatever an inherited index would read there.
    const item: unknown = Object.hasOwn(value, i) ? value[i] : undefined;
    if (typeof item === 'string' && pattern.test(item)) out.push(item);
    else
      issues.push({
        path: `${at}[${i}]`,
        message: item === undefined ? 'is missing' : `${JSON.stringify(item)} is not a valid name`,
      });
  }
  return out;
}

/**
 * An action as JSON in the shape {@link parseAction} accepts, so a logged action can be
 * decided again exactly (`writ replay`).
 */
export function actionToJson(action: Action): JsonObject {
  const principal: JsonObject = {
    id: action.principal.id,
    roles: action.principal.roles,
    attrs: action.principal.attrs,
  };
  if (action.principal.tenant !== undefined) principal.tenant = action.principal.tenant;
  const json: JsonObject = {
    tool: action.tool,
    args: action.args,
    principal,
    session: { id: action.session.id, attrs: action.session.attrs, labels: action.session.labels },
    estimate: action.estimate,
    meta: action.meta,
  };
  if (action.idempotencyKey !== undefined) json.idempotencyKey = action.idempotencyKey;
  if (action.nonce !== undefined) json.nonce = action.nonce;
  if (action.issuedAt !== undefined) json.issuedAt = new Date(action.issuedAt).toISOString();
  if (action.signature !== undefined) json.signature = action.signature;
  return json;
}
