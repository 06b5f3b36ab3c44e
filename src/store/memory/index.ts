import { type LogEntry, type LogHead, sealTail } from '../../log/entry.js';
import { type ChainReport, ChainVerifier } from '../../log/verify.js';
import { indexedDecision, KvStore } from '../kv-store.js';
import type { Kind, KvView } from '../ledger.js';
import type { Store } from '../types.js';

class MemoryStore extends KvStore {
  readonly kind = 'memory';
  // Records are kept as objects; the ledger never changes one it has read (it writes new
  // ones), and what crosses the store's boundary is copied (`own`), so a caller can never
  // change the store's state behind its back.
  readonly #tables = new Map<Kind, Map<string, unknown>>();
  #closed = false;

  protected readonly view: KvView = {
    get: (kind, key) => this.#table(kind).get(key),
    put: (kind, key, value) => {
      this.#table(kind).set(key, value);
    },
    delete: (kind, key) => {
      this.#table(kind).delete(key);
    },
    list: (kind) => [...this.#table(kind).values()],
    append: (entry, body) => {
      this.#log.appendSealed(body, entry.hash);
    },
  };
  readonly #log = new TextLog();
  /**
   * Where each decision's entry is, by decision id, for the entries up to `#indexed`: built
   * when a decision is looked up (rarely: `writ explain`), not by every decision — a map
   * that grows with every decision costs each one an insert and the garbage collector a
   * string to keep.
   */
  readonly #decisions = new Map<string, number>();
  #indexed = 0;

  async readLog(afterSeq: number, limit: number): Promise<LogEntry[]> {
    this.assertOpen();
    const out: LogEntry[] = [];
    const end = Math.min(this.#log.length, Math.max(0, afterSeq) + limit);
    for (let seq = Math.max(0, afterSeq) + 1; seq <= end; seq++)
      out.push(JSON.parse(this.#log.text(seq)));
    return out;
  }

  async findDecision(id: string): Promise<LogEntry | undefined> {
    this.assertOpen();
    while (this.#indexed < this.#log.length) {
      const seq = ++this.#indexed;
      const found = decisionIdOf(this.#log.text(seq));
      if (found !== undefined) this.#decisions.set(found, seq);
    }
    const seq = this.#decisions.get(id);
    return seq === undefined || seq > this.#log.length
      ? undefined
      : indexedDecision(id, seq, JSON.parse(this.#log.text(seq)));
  }

  async verifyLog(anchors: readonly LogHead[] = []): Promise<ChainReport> {
    this.assertOpen();
    const verifier = new ChainVerifier(anchors);
    for (let seq = 1; seq <= this.#log.length; seq++)
      if (!verifier.push({ seq, text: this.#log.text(seq) })) break;
    return verifier.finish(this.view.get('log-head', 'head') as LogHead | undefined);
  }

  /** Where each kind's sweep goes on: an iterator over its keys, in insertion order. */
  readonly #sweeps = new Map<Kind, Iterator<string>>();

  // A map iterator stays valid while the map changes: it skips removed keys and reaches
  // keys added since, so a sweep resumed later still visits every record.
  protected sweepKeys(kind: Kind, limit: number): { keys: string[]; done: boolean } {
    const cursor = this.#sweeps.get(kind) ?? this.#table(kind).keys();
    const keys: string[] = [];
    while (keys.length < limit) {
      const next = cursor.next();
      if (next.done) {
        this.#sweeps.delete(kind);
        return { keys, done: true };
      }
      keys.push(next.value);
    }
    this.#sweeps.set(kind, cursor);
    return { keys, done: false };
  }

  #table(kind: Kind): Map<string, unknown> {
    let table = this.#tables.get(kind);
    if (!table) {
      table = new Map();
      this.#tables.set(kind, table);
    }
    return table;
  }

  // A step runs synchronously to completion, so no other step can interleave with it.
  protected async atomic<T>(step: (view: KvView) => T): Promise<T> {
    this.assertOpen();
    return step(this.view);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * How a decision entry starts, as the ledger writes it (`chainEntryBody`): its sequence
 * number, time, kind and the decision's id, the first fields of the entry and of its decision.
 */
const DECISION_START =
  /^\{"seq":\d+,"at":"[^"\\]*","kind":"decision","decision":\{"id":("(?:[^"\\]|\\.)*")/;

/** The decision id of an entry's text, if it is a decision's entry. */
function decisionIdOf(text: string): string | undefined {
  const start = DECISION_START.exec(text);
  if (start) return JSON.parse(start[1]!) as string;
  // Not in that form (no entry writ writes): read the entry whole.
  if (!text.includes('"decision"')) return undefined;
  return (JSON.parse(text) as LogEntry).decision?.id;
}

/**
 * The log's entries as UTF-8 text in buffers outside the JavaScript heap. Kept as strings,
 * every entry — the bulk of what the store keeps — would be copied by the garbage collector
 * from the young generation to the old one; in a buffer it is copied once, when appended,
 * and the collector never walks it. Buffers are filled one after the other and never moved.
 */
export class TextLog {
  /** The size of buffers once the log has grown: the first is 64 KB, each next twice as big. */
  static readonly CHUNK_BYTES = 1 << 20;
  readonly #chunks: Buffer[] = [];
  #used = 0;
  // Entry `seq` is in chunk `chunk[seq - 1]`, from byte `start[seq - 1]` to `end[seq - 1]`.
  readonly #chunk: number[] = [];
  readonly #start: number[] = [];
  readonly #end: number[] = [];

  get length(): number {
    return this.#end.length;
  }

  append(text: string): void {
    const chunk = this.#room(text, '');
    this.#chunk.push(this.#chunks.length - 1);
    this.#start.push(this.#used);
    this.#used += chunk.write(text, this.#used);
    this.#end.push(this.#used);
  }

  /**
   * Appends an entry's stored text, `sealedText(body, hash)`, without building it: the body is
   * written, and the hash field over its closing brace.
   */
  appendSealed(body: string, hash: string): void {
    const tail = sealTail(hash);
    const chunk = this.#room(body, tail);
    this.#chunk.push(this.#chunks.length - 1);
    this.#start.push(this.#used);
    this.#used += chunk.write(body, this.#used) - 1;
    this.#used += chunk.write(tail, this.#used);
    this.#end.push(this.#used);
  }

  /** The buffer to write `head` and then `tail` in: the last, or a new one if they may not fit. */
  #room(head: string, tail: string): Buffer {
    let last = this.#chunks[this.#chunks.length - 1];
    // UTF-8 takes at most 3 bytes per UTF-16 code unit: when that much fits, the text need
    // not be measured first (which costs a third of writing it).
    if (last !== undefined && this.#used + 3 * (head.length + tail.length) <= last.length)
      return last;
    const bytes = Buffer.byteLength(head) + Buffer.byteLength(tail);
    if (last === undefined || this.#used + bytes > last.length) {
      const size = Math.min(TextLog.CHUNK_BYTES, 2 ** (16 + this.#chunks.length));
      last = Buffer.allocUnsafe(Math.max(bytes, size));
      this.#chunks.push(last);
      this.#used = 0;
    }
    return last;
  }

  /** The text of entry `seq` (1 ≤ seq ≤ length). */
  text(seq: number): string {
    const i = seq - 1;
    return this.#chunks[this.#chunk[i]!]!.toString('utf8', this.#start[i], this.#end[i]);
  }
}

/**
 * A store that keeps everything in this process's memory: for tests and ephemeral use.
 * Its state is gone when the process ends.
 */
export function memoryStore(): Store {
  return new MemoryStore();
}
