/**
 * The parts of writ the store and log benchmarks call, from the source (tests) or from the
 * build in `dist/` (timing: what ships, see `bench/engine.ts`).
 */
import { createWrit } from '../../src/engine/writ.js';
import { chainEntry } from '../../src/log/entry.js';
import { memoryStore } from '../../src/store/memory/index.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';
import { loadDist } from '../engine.js';

/** writ's engine, its stores and the log's chaining function. */
export interface Runtime {
  from: 'src' | 'dist';
  createWrit: typeof createWrit;
  memoryStore: typeof memoryStore;
  sqliteStore: typeof sqliteStore;
  chainEntry: typeof chainEntry;
}

/** writ from its TypeScript source, as tests see it. */
export const srcRuntime: Runtime = {
  from: 'src',
  createWrit,
  memoryStore,
  sqliteStore,
  chainEntry,
};

/** writ from `dist/`. */
export async function distRuntime(): Promise<Runtime> {
  const [engine, memory, sqlite, entry] = await Promise.all([
    loadDist('engine/writ.js'),
    loadDist('store/memory/index.js'),
    loadDist('store/sqlite/index.js'),
    loadDist('log/entry.js'),
  ]);
  return {
    from: 'dist',
    createWrit: engine.createWrit as Runtime['createWrit'],
    memoryStore: memory.memoryStore as Runtime['memoryStore'],
    sqliteStore: sqlite.sqliteStore as Runtime['sqliteStore'],
    chainEntry: entry.chainEntry as Runtime['chainEntry'],
  };
}
