import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { canonicalJson } from './canonical-json.js';
import type { Json, JsonObject } from './json.js';

/** SHA-256 of a UTF-8 string, as lower-case hex. */
export function sha256Hex(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
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
