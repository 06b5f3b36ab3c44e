import type { LogEntry, LogHead } from '../../log/entry.js';
import { type ChainReport, ChainVerifier } from '../../log/verify.js';
import { KvStore } from '../kv-store.js';
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
    append: (_entry, text) => {
      this.#log.push(text);
    },
  };
  /** Log entries as JSON text; entry `seq` is at index `seq - 1`. */
  readonly #log: string[] = [];

  async readLog(afterSeq: number, limit: number): Promise<LogEntry[]> {
    return this.#log
      .slice(Math.max(0, afterSeq), Math.max(0, afterSeq) + limit)
      .map((text) => JSON.parse(text));
  }

  async findDecision(id: string): Promise<LogEntry | undefined> {
    const seq = this.view.get('decision-index', id) as number | undefined;
    const text = seq === undefined ? undefined : this.#log[seq - 1];
    return text === undefined ? undefined : JSON.parse(text);
  }

  async verifyLog(): Promise<ChainReport> {
    const verifier = new ChainVerifier();
    for (const [i, text] of this.#log.entries()) if (!verifier.push({ seq: i + 1, text })) break;
    return verifier.finish(this.view.get('log-head', 'head') as LogHead | undefined);
  }

  protected override own<T>(value: T): T {
    return value === undefined ? value : JSON.parse(JSON.stringify(value));
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
    if (this.#closed) throw new Error('the memory store is closed');
    return step(this.view);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}

/**
 * A store that keeps everything in this process's memory: for tests and ephemeral use.
 * Its state is gone when the process ends.
 */
export function memoryStore(): Store {
  return new MemoryStore();
}
