/** The DER prefix that makes 32 raw key bytes an SPKI Ed25519 public key. */
export const ED25519_SPKI_PREFIX = [
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The 32 bytes of the Ed25519 public key a policy names — base64 of those bytes, or of the
 * key's SPKI DER — or undefined when the text is no such key.
 */
export function ed25519KeyBytes(base64: string): Uint8Array | undefined {
  if (!BASE64.test(base64)) return undefined;
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  if (bytes.length === 32) return bytes;
  const prefix = ED25519_SPKI_PREFIX.length;
  if (bytes.length === prefix + 32 && ED25519_SPKI_PREFIX.every((b, i) => bytes[i] === b))
    return bytes.subarray(prefix);
  return undefined;
}
