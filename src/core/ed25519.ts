/** The DER prefix that makes 32 raw key bytes an SPKI Ed25519 public key. */
export const ED25519_SPKI_PREFIX = [
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The points of small order on the curve, as their y coordinate is encoded (little-endian,
 * the sign of x in the top bit, ignored here), canonical or not: 0, 1, p − 1, p, p + 1 and
 * the two of order 8. A public key among them accepts signatures made without any private
 * key (R the identity and S = 0 verify every message).
 */
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

function hexWithoutSign(key: Uint8Array): string {
  return Array.from(key, (b, i) => (i === 31 ? b & 0x7f : b).toString(16).padStart(2, '0')).join(
    '',
  );
}

/**
 * The 32 bytes of the Ed25519 public key a policy names — base64 of those bytes, or of the
 * key's SPKI DER — or undefined when the text is no such key, or a small-order point that
 * would accept forged signatures.
 */
export function ed25519KeyBytes(base64: string): Uint8Array | undefined {
  if (!BASE64.test(base64)) return undefined;
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const prefix = ED25519_SPKI_PREFIX.length;
  const key =
    bytes.length === 32
      ? bytes
      : bytes.length === prefix + 32 && ED25519_SPKI_PREFIX.every((b, i) => bytes[i] === b)
        ? bytes.subarray(prefix)
        : undefined;
  return key && !SMALL_ORDER.includes(hexWithoutSign(key)) ? key : undefined;
}
