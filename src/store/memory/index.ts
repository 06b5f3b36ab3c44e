import { KvStore } from '../kv-store.js';
import type { Kind, KvView } from '../ledger.js';
import type { Store } from '../types.js';

class MemoryStore extends KvStore {
  readonly kind = 'memory';
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
  };

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
