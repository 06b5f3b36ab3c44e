/**
 * A long decision log, made quickly: entries shaped like the store benchmark's (a decision
 * and its settlement per call: the action, reasons, reservations, ids, digests), chained
 * with the ledger's own `chainEntry` and inserted in bulk, bypassing the engine and its
 * store.
 */
import Database from 'better-sqlite3';
import type { Json } from '../../src/core/json.js';
import type { LogDraft, LogEntry } from '../../src/log/entry.js';
import type { Runtime } from '../store/runtime.js';
import { action, DECISION_POLICY } from '../store/subjects.js';

/** A decision and a settlement as the engine logs them for one call of the store benchmark. */
export async function templates(
  rt: Runtime,
): Promise<{ decision: LogDraft; settlement: LogDraft }> {
  const store = rt.memoryStore();
  const writ = rt.createWrit({ policy: DECISION_POLICY, store });
  const decided = await writ.authorize(action(0));
  if (!decided.writ) throw new Error(`expected allow, got ${decided.outcome}`);
  await writ.settle(decided.writ, { status: 'succeeded', result: { messageId: 0 } });
  const entries = await store.readLog(0, 10);
  await writ.close();
  const draft = (kind: LogEntry['kind']): LogDraft => {
    const found = entries.find((e) => e.kind === kind);
    if (!found) throw new Error(`no ${kind} entry`);
    const { seq: _seq, prevHash: _prev, hash: _hash, ...rest } = found;
    return rest;
  };
  return { decision: draft('decision'), settlement: draft('settlement') };
}

/** Appends chained entries to a SQLite store's log. */
export interface LogWriter {
  /** Appends `count` more entries (a decision, then its settlement, call after call). */
  append(count: number): void;
  /** Entries written so far, their bytes of JSON, and the time spent writing them (ms). */
  readonly entries: number;
  readonly bytes: number;
  readonly ms: number;
  close(): void;
}

/**
 * Opens a writer on a new SQLite store at `path`. Entry `i` is a decision or settlement for
 * call `i / 2`, with its own ids, idempotency key and subject. Rows are committed 10,000 at
 * a time, with `synchronous = OFF`: only the result matters here, not surviving a crash.
 */
export async function logWriter(rt: Runtime, path: string): Promise<LogWriter> {
  await rt.sqliteStore({ path }).close();
  const { decision, settlement } = await templates(rt);
  const db = new Database(path);
  db.pragma('synchronous = OFF');
  const insert = db.prepare<[number, string]>('INSERT INTO log (seq, entry) VALUES (?, ?)');
  const putHead = db.prepare<[string]>(
    `INSERT INTO shared (kind, key, value) VALUES ('log-head', 'head', ?)
     ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`,
  );
  const args = decision.decision!.action.args as Record<string, Json>;
  let head: LogEntry | undefined;
  let entries = 0;
  let bytes = 0;
  let ms = 0;

  const draftAt = (index: number): LogDraft => {
    const call = Math.floor(index / 2);
    const decisionId = `dec_${String(call).padStart(32, '0')}`;
    const writId = `wr_${String(call).padStart(32, '0')}`;
    if (index % 2 === 1)
      return { ...settlement, settlement: { ...settlement.settlement!, writId, decisionId } };
    const logged = decision.decision!;
    return {
      ...decision,
      decision: {
        ...logged,
        id: decisionId,
        writId,
        action: {
          ...logged.action,
          args: { ...args, subject: `weekly report ${call}` },
          idempotencyKey: `req-${call}`,
        },
        reservations: logged.reservations!.map((r) =>
          (r as { kind: string }).kind === 'idempotency'
            ? { kind: 'idempotency', key: `requests:req-${call}` }
            : r,
        ),
      },
    };
  };
  const chunk = db.transaction((count: number) => {
    for (let n = 0; n < count; n++) {
      head = rt.chainEntry(head, draftAt(entries++));
      const text = JSON.stringify(head);
      bytes += text.length;
      insert.run(head.seq, text);
    }
    if (head) putHead.run(JSON.stringify({ seq: head.seq, hash: head.hash }));
  });

  return {
    append(count) {
      const began = performance.now();
      for (let left = count; left > 0; left -= 10_000) chunk(Math.min(left, 10_000));
      ms += performance.now() - began;
    },
    get entries() {
      return entries;
    },
    get bytes() {
      return bytes;
    },
    get ms() {
      return ms;
    },
    close: () => db.close(),
  };
}
