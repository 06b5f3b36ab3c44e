import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from './canonical-json.js';
import type { Json, JsonObject } from './json.js';

/** SHA-256 of a UTF-8 string, as lower-case hex. */
export type Sha256Hex = (text: string) => string;

const portableSha256: Sha256Hex = (text) => bytesToHex(sha256(utf8ToBytes(text)));
let sha256Impl: Sha256Hex = portableSha256;

/**
 * Installs a platform SHA-256 (the Node runtime installs `node:crypto`'s, about four times
 * faster than the portable one). It must compute the same function: `installSha256` checks
 * it against the portable implementation before using it.
 */
export function installSha256(fn: Sha256Hex): void {
  const probe = 'writ \u00e9\u{1f511}';
  if (fn(probe) !== portableSha256(probe))
    throw new Error('installSha256: not SHA-256 of UTF-8 text');
  sha256Impl = fn;
}

/** SHA-256 of a UTF-8 string, as lower-case hex. */
export function sha256Hex(text: string): string {
  return sha256Impl(text);
}

/** SHA-256 over the RFC 8785 canonical form of a JSON value, as `sha256:<hex>`. */
export function digestJson(value: Json): string {
  return `sha256:${sha256Hex(canonicalJson(value))}`;
}

/**
 * The digest that binds approvals and idempotency keys to one exact action: the tool,
 * the canonical arguments, who asks (principal id and tenant) and in which session.
 */
export function actionDigest(action: {
  tool: string;
  args: JsonObject;
  principal: { id: string; tenant?: string };
  session: { id: string };
}): string {
  const { tool, args, principal: who, session } = action;
  const { id, tenant } = who;
  if (
    typeof tool === 'string' &&
    typeof args === 'object' &&
    typeof id === 'string' &&
    (tenant === undefined || typeof tenant === 'string') &&
    typeof session.id === 'string'
  ) {
    // The canonical JSON of the object below, written out: its keys in their sorted order.
    const principal = `{"id":${canonicalJson(id)}${tenant === undefined ? '' : `,"tenant":${canonicalJson(tenant)}`}}`;
    return `sha256:${sha256Hex(`{"args":${canonicalJson(args)},"principal":${principal},"session":${canonicalJson(session.id)},"tool":${canonicalJson(tool)}}`)}`;
  }
  const principal: JsonObject = { id };
  if (tenant !== undefined) principal.tenant = tenant;
  return digestJson({ tool, args, principal, session: session.id });
}

/** A request as a caller builds it (`issuedAt` as RFC 3339 text) or as writ parsed it. */
export interface SignableAction {
  tool: string;
  args?: JsonObject;
  principal: { id: string; tenant?: string; roles?: readonly string[]; attrs?: JsonObject };
  session: { id: string; attrs?: JsonObject; labels?: readonly string[] };
  idempotencyKey?: string;
  nonce?: string;
  issuedAt?: number | string;
  estimate?: Readonly<Record<string, number>>;
  meta?: JsonObject;
}

/**
 * The text a caller signs (HMAC-SHA256 or Ed25519) to prove a request is its own and
 * unaltered: the RFC 8785 canonical JSON of every field of the request but `signature` —
 * everything a policy can read — normalized as writ reads the request: empty lists and
 * objects left out (so absent and empty sign alike), session labels sorted without
 * duplicates, `issuedAt` as a UTC time with milliseconds. A caller computes it from the
 * request it is about to send; writ, from the request it parsed.
 */
export function signingPayload(action: SignableAction): string {
  const principal: JsonObject = { id: action.principal.id };
  if (action.principal.tenant !== undefined) principal.tenant = action.principal.tenant;
  if (action.principal.roles?.length) principal.roles = [...action.principal.roles];
  if (hasKeys(action.principal.attrs)) principal.attrs = action.principal.attrs;
  const session: JsonObject = { id: action.session.id };
  if (hasKeys(action.session.attrs)) session.attrs = action.session.attrs;
  if (action.session.labels?.length) session.labels = [...new Set(action.session.labels)].sort();
  const payload: JsonObject = { tool: action.tool, args: action.args ?? {}, principal, session };
  if (action.idempotencyKey !== undefined) payload.idempotencyKey = action.idempotencyKey;
  if (action.nonce !== undefined) payload.nonce = action.nonce;
  if (action.issuedAt !== undefined) payload.issuedAt = utcTime(action.issuedAt);
  if (hasKeys(action.estimate)) payload.estimate = { ...action.estimate };
  if (hasKeys(action.meta)) payload.meta = action.meta;
  return canonicalJson(payload);
}

function hasKeys(value: object | undefined): value is object {
  if (value === undefined) return false;
  for (const _ in value) return true;
  return false;
}

/** `issuedAt` as one text however it was written (`+01:00` or `Z`, with or without ms). */
function utcTime(issuedAt: number | string): string {
  const ms = typeof issuedAt === 'number' ? issuedAt : Date.parse(issuedAt);
  // Text that is not a time is signed as written: writ refuses such a request before
  // it checks a signature.
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(issuedAt);
}
