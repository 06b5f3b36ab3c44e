import { WritError } from '../core/errors.js';
import { GENESIS_HASH, type LogEntry, type LogHead, sealedHash } from './entry.js';

/** What is wrong at the first bad place of a chain. */
export type ChainProblem = 'edited' | 'deleted' | 'reordered' | 'truncated';

/** The outcome of verifying a log. */
export type ChainReport =
  | { ok: true; entries: number; head?: LogHead }
  | { ok: false; entries: number; seq: number; problem: ChainProblem; detail: string };

/** One stored row: where the store keeps it, and its text. */
export interface StoredRow {
  seq: number;
  text: string;
}

/**
 * Checks a log one row at a time, in storage order, so memory stays bounded however long
 * the log. `head` is the chain head the store recorded separately; without it a truncated
 * tail cannot be told from a short log, so a log with entries and no head does not verify.
 */
export class ChainVerifier {
  #previous: LogHead = { seq: 0, hash: GENESIS_HASH };
  #count = 0;
  #failure: Extract<ChainReport, { ok: false }> | undefined;
  /** Hashes recorded outside the store, by seq: the chain must still hold those entries. */
  readonly #anchors = new Map<number, string>();

  /**
   * `anchors` are heads kept outside the store — earlier reports of `writ log verify`. The
   * chain alone cannot show that someone who can write the store rewrote it from some
   * entry on and hashed it all again; an anchor at or after that entry can.
   */
  constructor(anchors: readonly LogHead[] = []) {
    for (const anchor of anchors) {
      // Checked here, for callers without types: an anchor that can match no entry would
      // be passed over without a word.
      if (
        !Number.isSafeInteger(anchor?.seq) ||
        anchor.seq < 1 ||
        !/^[0-9a-f]{64}$/.test(anchor.hash)
      )
        throw new WritError(
          'USAGE',
          `an anchor is { seq, hash }: an entry's number and its 64 lower-case hex digits, not ${JSON.stringify(anchor)}`,
        );
      this.#anchors.set(anchor.seq, anchor.hash);
    }
  }

  /** Feeds the next row; returns false once a problem is found (later rows are not read). */
  push(row: StoredRow): boolean {
    if (this.#failure) return false;
    const fail = (seq: number, problem: ChainProblem, detail: string) => {
      this.#failure = { ok: false, entries: this.#count, seq, problem, detail };
      return false;
    };
    let entry: LogEntry;
    try {
      entry = JSON.parse(row.text) as LogEntry;
    } catch {
      return fail(row.seq, 'edited', 'the entry is not valid JSON');
    }
    // Valid JSON that is no object (`null`, a number) has no fields to read.
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      return fail(row.seq, 'edited', 'the entry is not a JSON object');
    const expected = this.#previous.seq + 1;
    if (row.seq > expected)
      return fail(expected, 'deleted', `entries ${expected}–${row.seq - 1} are missing`);
    if (row.seq < expected) {
      // Nothing read yet: a row before 1, where the chain starts, is one added to it.
      return this.#previous.seq === 0
        ? fail(row.seq, 'edited', `a row is stored at ${row.seq}, before the first entry (1)`)
        : fail(row.seq, 'reordered', `entry ${row.seq} comes after ${this.#previous.seq}`);
    }
    // Sealed: the stored text hashes to the hash it ends with, which is the entry's hash.
    const hash = sealedHash(row.text);
    const sealed = hash !== undefined && entry.hash === hash;
    if (entry.seq !== row.seq) {
      return sealed
        ? fail(row.seq, 'reordered', `the entry stored at ${row.seq} is entry ${entry.seq}`)
        : fail(row.seq, 'edited', 'the content does not match its hash');
    }
    if (!sealed) return fail(row.seq, 'edited', 'the content does not match its hash');
    if (entry.prevHash !== this.#previous.hash) {
      return row.seq === 1
        ? fail(1, 'edited', 'the first entry does not start the chain')
        : fail(
            row.seq - 1,
            'edited',
            `entry ${row.seq} links to a different entry ${row.seq - 1} (rewritten and rehashed)`,
          );
    }
    const anchored = this.#anchors.get(entry.seq);
    if (anchored !== undefined && anchored !== entry.hash)
      return fail(
        entry.seq,
        'edited',
        `entry ${entry.seq} is not the one anchored (${anchored}): the log was rewritten and hashed again from there or before`,
      );
    this.#previous = { seq: entry.seq, hash: entry.hash };
    this.#count++;
    return true;
  }

  /**
   * The verdict, checking the last entry against the recorded head. A head rewritten to an
   * earlier entry's seq and hash, after the entries behind it were deleted, passes: that is
   * rewriting the chain's end, which anyone who can write the store can do — only a head
   * kept outside the store (a copy of `writ log verify`'s last report, given as an anchor)
   * can show it.
   */
  finish(head: LogHead | undefined): ChainReport {
    if (this.#failure) return this.#failure;
    const last = this.#previous;
    // Every write moves the head with its entry, so entries without a head mean the head was
    // deleted: then a cut-off tail would pass for a shorter log.
    if (!head && last.seq > 0) {
      return {
        ok: false,
        entries: this.#count,
        seq: last.seq + 1,
        problem: 'truncated',
        detail: `the log ends at ${last.seq} and has no head record to check that end against: entries after it may be missing`,
      };
    }
    if (head && head.seq > last.seq) {
      return {
        ok: false,
        entries: this.#count,
        seq: last.seq + 1,
        problem: 'truncated',
        detail: `the log ends at ${last.seq}; the head says ${head.seq}`,
      };
    }
    const beyond = Math.max(...this.#anchors.keys());
    if (beyond > last.seq) {
      return {
        ok: false,
        entries: this.#count,
        seq: last.seq + 1,
        problem: 'truncated',
        detail: `the log ends at ${last.seq}; an anchor holds entry ${beyond}`,
      };
    }
    if (head && (head.seq < last.seq || head.hash !== last.hash)) {
      return {
        ok: false,
        entries: this.#count,
        seq: Math.min(head.seq, last.seq),
        problem: 'edited',
        detail: 'the recorded head does not match the last entry',
      };
    }
    return { ok: true, entries: this.#count, ...(last.seq > 0 && { head: last }) };
  }
}
