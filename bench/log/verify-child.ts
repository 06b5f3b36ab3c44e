/**
 * Verifies one SQLite store's log in a process of its own, as `writ log verify` does (the
 * Node runtime loaded, so digests use `node:crypto`), and prints what it took as JSON: the
 * time, and the memory the process held before and after and at its peak. Its own process,
 * so the peak is the verification's and not that of whatever ran before it.
 *
 * Usage: `node --import tsx bench/log/verify-child.ts <store.db> <dist|src>`
 */
import { resourceUsage } from 'node:process';
import type { ChainReport } from '../../src/log/verify.js';
import type { Store } from '../../src/store/types.js';

/** What the child reports. */
export interface VerifyReport {
  report: ChainReport;
  ms: number;
  /** Resident set size before opening the store and after verifying, bytes. */
  rssBefore: number;
  rssAfter: number;
  /** The process's peak resident set size, bytes. */
  maxRss: number;
  heapBefore: number;
  heapAfter: number;
  /** The old-space limit the child ran under, MB, if one was set. */
  heapLimitMb?: number;
}

async function main(path: string, from: string) {
  const load = (module: string) =>
    import(new URL(`../../${from === 'src' ? 'src' : 'dist'}/${module}`, import.meta.url).href);
  await load(from === 'src' ? 'runtime/system.ts' : 'runtime/system.js');
  const sqlite = await load(from === 'src' ? 'store/sqlite/index.ts' : 'store/sqlite/index.js');
  const before = process.memoryUsage();
  const began = performance.now();
  const store = sqlite.sqliteStore({ path }) as Store;
  const report = await store.verifyLog();
  await store.close();
  const ms = performance.now() - began;
  const after = process.memoryUsage();
  const limit = process.execArgv.find((a) => a.startsWith('--max-old-space-size='));
  const out: VerifyReport = {
    report,
    ms,
    rssBefore: before.rss,
    rssAfter: after.rss,
    maxRss: resourceUsage().maxRSS * 1024,
    heapBefore: before.heapUsed,
    heapAfter: after.heapUsed,
    ...(limit && { heapLimitMb: Number(limit.split('=')[1]) }),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const [path, from = 'dist'] = process.argv.slice(2);
if (!path) throw new Error('usage: verify-child.ts <store.db> <dist|src>');
await main(path, from);
