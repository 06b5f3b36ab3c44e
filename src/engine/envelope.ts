import { createHmac, createPublicKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';
import type { Action } from '../core/action.js';
import { type Reason, reason } from '../core/decision.js';
import { signingPayload } from '../core/digest.js';
import { ED25519_SPKI_PREFIX, ed25519KeyBytes } from '../core/ed25519.js';
import type { CompiledReplay } from '../policy/index.js';

/** Looks up a secret by the name a policy gives (`hmac_secret_env`). */
export type SecretSource = (name: string) => string | undefined;

/**
 * Checks the replay envelope before the policy runs: nonce present when required, request
 * age within `max_age` (either side, so future-dated requests are refused too), and the
 * principal's signature over the canonical action. Returns the reason to deny, if any.
 * The nonce itself is claimed later, in the store's atomic step.
 */
export function checkEnvelope(
  replay: CompiledReplay,
  action: Action,
  now: number,
  secrets: SecretSource,
): Reason | undefined {
  if (replay.requireNonce && action.nonce === undefined)
    return reason('NONCE_REQUIRED', { rule: 'replay.require_nonce' });
  if (replay.maxAgeMs !== undefined) {
    if (action.issuedAt === undefined) {
      return reason('REQUEST_EXPIRED', {
        rule: 'replay.max_age',
        message: 'the policy requires issuedAt on every request',
      });
    }
    if (Math.abs(now - action.issuedAt) > replay.maxAgeMs)
      return reason('REQUEST_EXPIRED', { rule: 'replay.max_age' });
  }
  const key = replay.keys[action.principal.id];
  if (!key) {
    return replay.requireSignature
      ? reason('BAD_SIGNATURE', {
          rule: 'replay.keys',
          message: `no signature key is configured for ${action.principal.id}`,
        })
      : undefined;
  }
  if (action.signature === undefined)
    return reason('BAD_SIGNATURE', { rule: 'replay.keys', message: 'the request is not signed' });
  return verifySignature(key, action, secrets)
    ? undefined
    : reason('BAD_SIGNATURE', { rule: 'replay.keys' });
}

function verifySignature(
  key: CompiledReplay['keys'][string],
  action: Action,
  secrets: SecretSource,
): boolean {
  const signature = action.signature ?? '';
  const colon = signature.indexOf(':');
  const scheme = signature.slice(0, colon);
  const given = Buffer.from(signature.slice(colon + 1), 'base64');
  const payload = Buffer.from(signingPayload(action), 'utf8');
  try {
    if (scheme === 'hmac-sha256' && key.hmacSecretEnv !== undefined) {
      const secret = secrets(key.hmacSecretEnv);
      if (!secret) return false;
      const expected = createHmac('sha256', secret).update(payload).digest();
      return given.length === expected.length && timingSafeEqual(given, expected);
    }
    if (scheme === 'ed25519' && key.ed25519 !== undefined) {
      const publicKey = ed25519PublicKey(key.ed25519);
      return publicKey !== undefined && verify(null, payload, publicKey, given);
    }
  } catch {
    return false;
  }
  return false;
}

const publicKeys = new Map<string, KeyObject | undefined>();

/** A policy's Ed25519 key as Node verifies with it, made once per key. */
function ed25519PublicKey(base64: string): KeyObject | undefined {
  if (publicKeys.has(base64)) return publicKeys.get(base64);
  const bytes = ed25519KeyBytes(base64);
  const key =
    bytes &&
    createPublicKey({
      key: Buffer.concat([Buffer.from(ED25519_SPKI_PREFIX), bytes]),
      format: 'der',
      type: 'spki',
    });
  if (publicKeys.size < 1_000) publicKeys.set(base64, key);
  return key;
}
