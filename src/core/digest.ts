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
