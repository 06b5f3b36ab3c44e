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
  const principal: JsonObject = { id: action.principal.id };
  if (action.principal.tenant !== undefined) principal.tenant = action.principal.tenant;
  return digestJson({
    tool: action.tool,
    args: action.args,
    principal,
    session: action.session.id,
  });
}

/**
 * The text a caller signs (HMAC-SHA256 or Ed25519) to prove a request is its own and
 * unaltered: the canonical JSON of what the action does, who asks, and its replay envelope.
 */
export function signingPayload(action: {
  tool: string;
  args: JsonObject;
  principal: { id: string; tenant?: string };
  session: { id: string };
  idempotencyKey?: string;
  nonce?: string;
  issuedAt?: number;
}): string {
  const payload: JsonObject = {
    tool: action.tool,
    args: action.args,
    principal: action.principal.id,
    session: action.session.id,
  };
  if (action.principal.tenant !== undefined) payload.tenant = action.principal.tenant;
  if (action.idempotencyKey !== undefined) payload.idempotencyKey = action.idempotencyKey;
  if (action.nonce !== undefined) payload.nonce = action.nonce;
  if (action.issuedAt !== undefined) payload.issuedAt = new Date(action.issuedAt).toISOString();
  return canonicalJson(payload);
}
