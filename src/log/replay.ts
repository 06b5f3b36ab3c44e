import { canonicalJson } from '../core/canonical-json.js';
import type { IdSource } from '../core/clock.js';
import { manualClock } from '../core/clock.js';
import type { Outcome, Reason } from '../core/decision.js';
import type { Json } from '../core/json.js';
import { createWrit } from '../engine/writ.js';
import { overlaps } from '../policy/analyze.js';
import type { CompiledPolicy } from '../policy/index.js';
import { memoryStore } from '../store/memory/index.js';
import { type LogEntry, type LoggedDecision, logDecision } from './entry.js';

/** One decision that comes out differently under the new policy. */
export interface ChangedDecision {
  seq: number;
  decisionId: string;
  tool: string;
  before: { outcome: Outcome; reasons: Reason[] };
  after: { outcome: Outcome; reasons: Reason[] };
}

/** What replaying a log against a policy found. */
export interface ReplayReport {
  decisions: number;
  unchanged: number;
  changed: ChangedDecision[];
  /** Decisions whose redacted arguments the policy reads: reported, not guessed. */
  notReplayable: { seq: number; decisionId: string; paths: string[] }[];
  /** Requests that were invalid when recorded; their raw input is not logged. */
  invalid: number;
  /**
   * The first entry's `seq` when the log does not start at 1 (an export `--since`): the state
   * earlier entries built — sessions, budgets spent, claims, rate buckets — is missing, so a
   * decision that depends on it can come out differently under the very same policy.
   */
  startsAt?: number;
}

/** Ids as recorded: the replay reuses each decision's ids so unchanged decisions match exactly. */
class ScriptedIds implements IdSource {
  readonly #queue = new Map<string, string[]>();
  #fresh = 0;
  script(kind: string, ids: (string | undefined)[]) {
    this.#queue.set(
      kind,
      ids.filter((id): id is string => id !== undefined),
    );
  }
  next(kind: string): string {
    return this.#queue.get(kind)?.shift() ?? `${kind}_replay_${++this.#fresh}`;
  }
}

/**
 * Re-evaluates recorded entries in order against `policy`, with their recorded times and a
 * fresh in-memory store: sessions are reopened, approvals decided and writs settled as they
 * were. With the policy that recorded the log, every decision comes out identical.
 */
export async function replayLog(
  entries: Iterable<LogEntry> | AsyncIterable<LogEntry>,
  policy: CompiledPolicy,
): Promise<ReplayReport> {
  const clock = manualClock(0);
  const ids = new ScriptedIds();
  // Nothing a replay logs is kept (its store is thrown away), so a policy's redaction key
  // is not needed to replay it: a stand-in takes its place; other secrets are looked up.
  const secrets = (name: string) =>
    name === policy.redactKeyEnv ? 'a replay keeps no digests' : process.env[name];
  const writ = createWrit({ policy, store: memoryStore(), clock, ids, log: false, secrets });
  const reads = policy.reads;
  const checksSignatures =
    policy.replay.requireSignature || Object.keys(policy.replay.keys).length > 0;
  /** Per session, the attribute paths its last session entry holds as digests. */
  const hiddenInSession = new Map<string, string[]>();
  const report: ReplayReport = {
    decisions: 0,
    unchanged: 0,
    changed: [],
    notReplayable: [],
    invalid: 0,
  };
  try {
    let first = true;
    for await (const entry of entries) {
      if (first && entry.seq > 1) report.startsAt = entry.seq;
      first = false;
      clock.set(entry.at);
      if (entry.session) {
        await writ.sessions.open(entry.session.id, entry.session.attrs);
        hiddenInSession.set(entry.session.id, entry.session.redacted ?? []);
      } else if (entry.approval) {
        const { id, status, by, note } = entry.approval;
        const decide = status === 'approved' ? writ.approvals.approve : writ.approvals.deny;
        await decide(id, { approver: by, ...(note !== undefined && { note }) }).catch(
          () => undefined,
        );
      } else if (entry.settlement) {
        const { writId, status, cost } = entry.settlement;
        // A writ the new policy did not issue has nothing to settle.
        await writ
          .settle(writId, { status, ...(cost !== undefined && { cost }) })
          .catch(() => undefined);
      } else if (entry.decision) {
        await replayDecision(entry.seq, entry.decision);
      }
    }
  } finally {
    await writ.close();
  }
  return report;

  async function replayDecision(seq: number, recorded: LoggedDecision) {
    report.decisions++;
    if (Object.keys(recorded.action).length === 0) {
      report.invalid++;
      return;
    }
    // What the log holds only as digests: paths of the action, and of the attributes the
    // session was opened with, which the replayed session holds as digests too.
    const session = (recorded.action.session as { id?: unknown } | undefined)?.id;
    const redacted = [
      ...recorded.redacted,
      ...(typeof session === 'string' ? (hiddenInSession.get(session) ?? []) : []),
    ];
    const hidden = [...new Set(redacted)].filter(
      (path) =>
        reads.some((read) => overlaps(read, path.split('.'))) ||
        // A signature logged as its digest cannot be checked again.
        (path === 'signature' && checksSignatures),
    );
    if (hidden.length > 0) {
      report.notReplayable.push({ seq, decisionId: recorded.id, paths: hidden });
      return;
    }
    ids.script('dec', [recorded.id]);
    ids.script('wr', [recorded.writId]);
    ids.script('apr', [recorded.approvalId]);
    const decision = await writ.authorize(recorded.action);
    // A decision is unchanged when everything but the policy that made it is the same. With
    // paths redacted, the action replayed holds digests where the one decided on held
    // values, so its digest cannot be the recorded one: all else is compared.
    const { policyHash: _new, ...now } = logDecision(decision, recorded.action, recorded.redacted);
    const { candidate: _candidate, policyHash: _old, ...before } = recorded;
    if (recorded.redacted.length > 0) {
      now.actionDigest = before.actionDigest;
      // Keys the log shows with a hidden value as `[redacted]` (an idempotency key derived
      // from the arguments) are made, on replay, from the digests that took its place.
      hideAsLogged(now, before);
    }
    if (canonicalJson(now as unknown as Json) === canonicalJson(before as unknown as Json)) {
      report.unchanged++;
      return;
    }
    report.changed.push({
      seq,
      decisionId: recorded.id,
      tool: String(recorded.action.tool),
      before: { outcome: recorded.outcome, reasons: recorded.reasons },
      after: { outcome: decision.outcome, reasons: decision.reasons },
    });
  }
}

/** The parts of a logged decision a replay compares keys in. */
type Logged = Pick<LoggedDecision, 'reasons' | 'reservations'>;

/**
 * Replayed keys — of reservations and of reasons — shown as the recorded decision shows
 * them, where the recorded key is the same key with hidden parts as `[redacted]`.
 */
function hideAsLogged(now: Logged, before: Logged): void {
  const keyAt = (list: unknown[] | undefined, i: number): string | undefined => {
    const item = list?.[i];
    return item && typeof item === 'object' && typeof (item as { key?: unknown }).key === 'string'
      ? (item as { key: string }).key
      : undefined;
  };
  const hide = (mine: unknown[] | undefined, theirs: unknown[] | undefined) =>
    mine?.map((item, i) => {
      const logged = keyAt(theirs, i);
      const key = keyAt(mine, i);
      return logged !== undefined && key !== undefined && matchesHidden(logged, key)
        ? { ...(item as object), key: logged }
        : item;
    });
  if (now.reservations)
    now.reservations = hide(now.reservations, before.reservations) as typeof now.reservations;
  now.reasons = hide(now.reasons, before.reasons) as typeof now.reasons;
}

/** Whether `key` is `logged` with something in place of each `[redacted]`. */
function matchesHidden(logged: string, key: string): boolean {
  if (!logged.includes('[redacted]')) return false;
  const parts = logged.split('[redacted]');
  const first = parts[0]!;
  const last = parts.at(-1)!;
  if (!key.startsWith(first) || !key.endsWith(last) || key.length < first.length + last.length)
    return false;
  let at = first.length;
  for (const part of parts.slice(1, -1)) {
    const found = key.indexOf(part, at);
    if (found === -1) return false;
    at = found + part.length;
  }
  return at <= key.length - last.length;
}
