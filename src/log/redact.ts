import type { Reason } from '../core/decision.js';
import { digestJson } from '../core/digest.js';
import { isJsonObject, type Json, type JsonObject } from '../core/json.js';
import type { LoggedDecision } from './entry.js';

/**
 * Replaces the values at `redact:` paths of an action (`args.card_number`,
 * `args.*.password`; `*` matches any one key or index) with digests of their canonical
 * JSON — `sha256:<hex>`, or what `digest` gives (a keyed one: `redact_key_env`) — so the
 * log proves what was sent without keeping it. Returns the concrete paths replaced.
 */
export function redact(
  action: JsonObject,
  patterns: readonly string[],
  digest: (value: Json) => string = digestJson,
): Redacted {
  if (patterns.length === 0) return { action, redacted: [], secrets: [] };
  const found: Found = { paths: [], secrets: new Set(), digest };
  let result: Json = action;
  for (const pattern of patterns) result = redactPath(result, pattern.split('.'), [], found);
  // A signature over the request checks guesses at what was hidden (the key that verifies
  // it is in the policy), so it goes with them.
  if (found.paths.length > 0 && typeof action.signature === 'string') {
    result = { ...(result as JsonObject), signature: digest(action.signature) };
    found.paths.push('signature');
  }
  return {
    action: result as JsonObject,
    redacted: [...new Set(found.paths)].sort(),
    secrets: longestFirst(found.secrets),
  };
}

/**
 * `logged` with more texts hidden (a digest over a hidden value, an opened session's
 * attribute), kept as {@link redact} keeps them.
 */
export function withSecrets(logged: Redacted, more: Iterable<string>): Redacted {
  const all = new Set([...logged.secrets, ...more]);
  return all.size === logged.secrets.length ? logged : { ...logged, secrets: longestFirst(all) };
}

/** Each once, longest first, so that a secret containing another is replaced whole. */
function longestFirst(secrets: Iterable<string>): string[] {
  return [...new Set(secrets)].sort((a, b) => b.length - a.length);
}

/** An action with its `redact:` paths replaced, and what was hidden. */
export interface Redacted {
  action: JsonObject;
  /** The concrete paths replaced. */
  redacted: string[];
  /** The hidden values as text might quote them, for {@link scrubReasons}. */
  secrets: string[];
}

interface Found {
  paths: string[];
  secrets: Set<string>;
  digest: (value: Json) => string;
}

/**
 * `reasons` with every hidden value's text replaced, for the log: a condition's error can
 * quote the value it failed on (`not a URL: "S3CRET"`, `No such key: S3CRET`), and the log
 * must not keep in an error what it hides in the action.
 */
export function scrubReasons(reasons: Reason[], secrets: readonly string[]): Reason[] {
  if (secrets.length === 0) return reasons;
  const scrub = scrubber(secrets);
  return reasons.map((r) => {
    const message = scrub(r.message);
    const error = r.error === undefined ? undefined : scrub(r.error);
    const key = r.key === undefined ? undefined : scrub(r.key);
    return message === r.message && error === r.error && key === r.key
      ? r
      : {
          ...r,
          message,
          ...(error !== undefined && { error }),
          ...(key !== undefined && { key }),
        };
  });
}

/**
 * A decision as the log keeps it, with no hidden value in its reasons (those of its shadow
 * and candidate verdicts too), in the keys of its reservations (a budget or rate limit
 * `per:` a redacted argument has that argument in its key) or in its action digest, when
 * `secrets` names that digest.
 */
export function scrubDecision(logged: LoggedDecision, secrets: readonly string[]): LoggedDecision {
  if (secrets.length === 0) return logged;
  const scrub = scrubber(secrets);
  const out: LoggedDecision = {
    ...logged,
    actionDigest: scrub(logged.actionDigest),
    reasons: scrubReasons(logged.reasons, secrets),
  };
  if (logged.shadow)
    out.shadow = { ...logged.shadow, reasons: scrubReasons(logged.shadow.reasons, secrets) };
  if (logged.candidate)
    out.candidate = {
      ...logged.candidate,
      reasons: scrubReasons(logged.candidate.reasons, secrets),
    };
  if (logged.reservations)
    out.reservations = logged.reservations.map((r) =>
      isJsonObject(r) && typeof r.key === 'string' ? { ...r, key: scrub(r.key) } : r,
    );
  return out;
}

/** `text` with every hidden value in it replaced by `[redacted]`. */
export function scrubText(text: string, secrets: readonly string[]): string {
  return scrubber(secrets)(text);
}

function scrubber(secrets: readonly string[]): (text: string) => string {
  return (text) => secrets.reduce((out, secret) => out.split(secret).join('[redacted]'), text);
}

/** Every text a value can show up as in a message: itself, its leaves, JSON-escaped too. */
function collectSecrets(value: Json, into: Set<string>): void {
  const add = (text: string) => {
    if (text === '') return;
    into.add(text);
    const escaped = JSON.stringify(text).slice(1, -1);
    if (escaped !== text) into.add(escaped);
  };
  if (typeof value === 'string') add(value);
  else if (typeof value === 'number' || typeof value === 'boolean') add(String(value));
  else if (value !== null) {
    add(JSON.stringify(value));
    for (const item of Object.values(value)) collectSecrets(item, into);
  }
}

function redactPath(value: Json, rest: readonly string[], at: string[], found: Found): Json {
  if (rest.length === 0) {
    found.paths.push(at.join('.'));
    collectSecrets(value, found.secrets);
    return found.digest(value);
  }
  const [head, ...tail] = rest as [string, ...string[]];
  if (Array.isArray(value)) {
    return value.map((item, i) =>
      head === '*' || head === String(i) ? redactPath(item, tail, [...at, String(i)], found) : item,
    );
  }
  if (!isJsonObject(value)) return value;
  const out: JsonObject = Object.create(null);
  for (const [key, item] of Object.entries(value)) {
    out[key] = head === '*' || head === key ? redactPath(item, tail, [...at, key], found) : item;
  }
  return out;
}
