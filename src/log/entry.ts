import type { Decision, Outcome, Reason } from '../core/decision.js';
import { sha256Hex } from '../core/digest.js';
import type { Json, JsonObject } from '../core/json.js';

/**
 * The decision log: append-only, one entry per decision, settlement, approval decision and
 * session change, each written in the same atomic step as the state change it records.
 * Entries form a SHA-256 chain — every entry's hash covers its content and the hash of the
 * one before — so an edit, a deletion, a reordering or a truncation is detected.
 */
export interface LogEntry {
  /** 1, 2, 3, … without gaps. */
  seq: number;
  at: string;
  kind: 'decision' | 'settlement' | 'approval' | 'session';
  decision?: LoggedDecision;
  settlement?: LoggedSettlement;
  approval?: LoggedApproval;
  /**
   * A session opened or changed: its attributes with `redact:`ed paths as digests, and
   * which paths those are (absent when none), so that a replay knows what it cannot read.
   */
  session?: { id: string; attrs: JsonObject; version: number; redacted?: string[] };
  /** Hash of the previous entry; 64 zeros for the first. */
  prevHash: string;
  /** SHA-256 over the canonical JSON of every other field. */
  hash: string;
}

/** A decision as recorded: the action as decided on, with `redact:`ed paths as digests. */
export interface LoggedDecision {
  id: string;
  outcome: Outcome;
  reasons: Reason[];
  policyHash: string;
  actionDigest: string;
  action: JsonObject;
  /** Paths of the action replaced by the digest of their value. */
  redacted: string[];
  writId?: string;
  approvalId?: string;
  reservations?: Json[];
  shadow?: { outcome: Outcome; reasons: Reason[] };
  /** What a candidate policy evaluated beside the enforced one would have decided. */
  candidate?: CandidateVerdict;
}

/** What a candidate policy, evaluated beside the enforced one, would have decided. */
export interface CandidateVerdict {
  policyHash: string;
  /** What the candidate's rules decide (with the approval the call had, if any). */
  outcome: Outcome;
  reasons: Reason[];
  /**
   * What the enforced policy's rules decided, before budgets, limits, approvals' state and
   * replays: what the candidate's outcome is compared with. (Entries written before it was
   * kept are compared with the decision's outcome.)
   */
  enforced?: Outcome;
}

export interface LoggedSettlement {
  writId: string;
  decisionId: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  cost?: number;
  overage: Record<string, number>;
  labelsAdded: string[];
  /** Digest of the stored result, so replays can be checked without keeping the result here. */
  resultDigest?: string;
  /**
   * Budget keys this settle's cost did not change: the hold was captured at its expiry and
   * that capture had become final. Absent when there are none.
   */
  uncounted?: string[];
}

export interface LoggedApproval {
  id: string;
  status: 'approved' | 'denied';
  by: string;
  note?: string;
}

/** An entry before it is placed in the chain. */
export type LogDraft = Omit<LogEntry, 'seq' | 'prevHash' | 'hash'>;

/** The chain's head: what the next entry links to. */
export interface LogHead {
  seq: number;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/**
 * The hash an entry must carry: SHA-256 over its JSON text without the hash. Not RFC 8785:
 * the log hashes its own bytes, and text that `JSON.stringify` wrote parses and prints back
 * identically (integer-like keys already come first, numbers and strings round-trip), so an
 * entry read back from any store hashes the same. For an entry in hand; a stored entry is
 * verified on its text ({@link sealedHash}), which parsing can hide edits from.
 */
export function entryHash(entry: Omit<LogEntry, 'hash'> | LogEntry): string {
  const { hash: _ignored, ...content } = entry as LogEntry;
  return sha256Hex(JSON.stringify(content));
}

/**
 * Places a draft after `head` in the chain. Canonical JSON leaves out `undefined` fields as
 * `JSON.stringify` does, so the hash covers exactly what is stored and read back.
 */
export function chainEntry(head: LogHead | undefined, draft: LogDraft): LogEntry {
  return chainEntryText(head, draft).entry;
}

/**
 * {@link chainEntry}, with the entry's stored text: the text hashed, with the hash appended
 * as its last field — what `JSON.stringify(entry)` gives, without serializing twice.
 */
export function chainEntryText(
  head: LogHead | undefined,
  draft: LogDraft,
): { entry: LogEntry; text: string } {
  const { entry, body } = chainEntryBody(head, draft);
  return { entry, text: sealedText(body, entry.hash) };
}

/**
 * {@link chainEntry}, with the text it hashed: the entry's JSON without its hash field. The
 * entry is stored as {@link sealedText} of the two, which a store may write without
 * building it (the memory store writes its two parts into its buffer).
 */
export function chainEntryBody(
  head: LogHead | undefined,
  draft: LogDraft,
): { entry: LogEntry; body: string } {
  // Built by assignment, not as `{ seq, ...draft, prevHash }`: a spread after the first
  // field makes V8 build a slow object, which then also slows JSON.stringify. Same fields,
  // same order; the entry is this object with its hash added.
  const entry = Object.assign({ seq: (head?.seq ?? 0) + 1 }, draft) as LogEntry;
  entry.prevHash = head?.hash ?? GENESIS_HASH;
  const body = JSON.stringify(entry);
  entry.hash = sha256Hex(body);
  return { entry, body };
}

/** An entry's stored text: its JSON without the hash (`body`, an object), the hash added last. */
export function sealedText(body: string, hash: string): string {
  return `${body.slice(0, -1)}${sealTail(hash)}`;
}

/** What follows an entry's JSON without its hash, in place of its closing brace. */
export function sealTail(hash: string): string {
  return `${HASH_FIELD}${hash}"}`;
}

/** How every stored entry ends: its hash as the last field (see {@link chainEntryText}). */
const HASH_FIELD = ',"hash":"';
const HASH_SUFFIX_LENGTH = HASH_FIELD.length + 64 + '"}'.length;

/**
 * The hash a stored entry's text is sealed with, or `undefined` when it is not sealed: the
 * text must end with its hash as the last field, exactly as {@link chainEntryText} writes
 * it, and SHA-256 of the text without that field must be that hash. The stored bytes are
 * hashed, not what they parse to printed again: a parse hides a duplicated key
 * (`JSON.parse` keeps the last, SQLite's `json_extract` the first) or added whitespace.
 */
export function sealedHash(text: string): string | undefined {
  const at = text.length - HASH_SUFFIX_LENGTH;
  if (at < 1 || !text.startsWith(HASH_FIELD, at) || !text.endsWith('"}')) return undefined;
  const hash = text.slice(at + HASH_FIELD.length, -2);
  // SHA-256 hex is 64 lower-case hex digits: equal to it, the field is well formed too.
  return sha256Hex(`${text.slice(0, at)}}`) === hash ? hash : undefined;
}

/** A decision in the form the log keeps. */
export function logDecision(
  decision: Decision,
  action: JsonObject,
  redacted: string[],
): LoggedDecision {
  const logged: LoggedDecision = {
    id: decision.id,
    outcome: decision.outcome,
    reasons: decision.reasons,
    policyHash: decision.policyHash,
    actionDigest: decision.actionDigest,
    action,
    redacted,
  };
  if (decision.writ) {
    logged.writId = decision.writ.id;
    logged.reservations = decision.writ.reservations;
  }
  if (decision.approval) logged.approvalId = decision.approval.id;
  if (decision.shadow) logged.shadow = decision.shadow;
  return logged;
}
