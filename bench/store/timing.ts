/**
 * Timing for paths that go through a store: each call is asynchronous and takes
 * microseconds to milliseconds, long enough to time one at a time. A path runs for a fixed
 * time with its callers (one, or several concurrent loops); every call's latency is kept,
 * and the rate is the calls completed over the time they took.
 *
 * Paths compared with each other are measured interleaved: after each has warmed up, the
 * time is split into rounds that take turns, so a burst of other work on the machine falls
 * on all of them alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { quantile } from '../harness.js';
import type { Caller, Subject } from './subjects.js';

/** How long to run each path. */
export interface StoreTiming {
  warmupMs: number;
  rounds: number;
  roundMs: number;
}

/** What one path measured. */
export interface StoreResult {
  name: string;
  note: string;
  callers: number;
  /** Calls completed while timed. */
  calls: number;
  /** Calls per second over the timed rounds. */
  perSecond: number;
  /** Median and 99th percentile of one call's latency, ns. */
  p50Ns: number;
  p99Ns: number;
  /** The slowest and fastest round, calls per second: how steady the rate was. */
  roundMin: number;
  roundMax: number;
}

interface Running {
  subject: Subject;
  caller: Caller;
  next: number;
  calls: number;
  ns: number;
  latencies: number[];
  rounds: number[];
}

/** Runs `callers` loops of calls on one path for `ms`; returns calls made and time taken. */
async function drive(run: Running, ms: number, keep: boolean): Promise<void> {
  const began = performance.now();
  const deadline = began + ms;
  let calls = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      const i = run.next++;
      const t0 = performance.now();
      await run.caller.call(i);
      const t1 = performance.now();
      calls++;
      if (keep) run.latencies.push((t1 - t0) * 1e6);
    }
  };
  await Promise.all(Array.from({ length: run.subject.callers }, loop));
  const elapsed = (performance.now() - began) * 1e6;
  if (keep) {
    run.calls += calls;
    run.ns += elapsed;
    run.rounds.push((calls * 1e9) / elapsed);
  }
}

let gc: (() => void) | undefined;

/** Collects garbage between paths, so one path's garbage is not collected on another's time. */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}

/**
 * Measures paths side by side: each opened on fresh state (SQLite files in a new
 * directory under the system's temporary directory, removed afterwards), warmed up, then
 * timed in rounds that take turns.
 */
export async function measureStores(
  subjects: readonly Subject[],
  timing: StoreTiming,
): Promise<StoreResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-store-'));
  const runs: Running[] = [];
  try {
    for (const subject of subjects) {
      const caller = await subject.open(dir);
      runs.push({ subject, caller, next: 0, calls: 0, ns: 0, latencies: [], rounds: [] });
    }
    for (const run of runs) await drive(run, timing.warmupMs, false);
    for (let round = 0; round < timing.rounds; round++) {
      for (const run of runs) {
        collectGarbage();
        await drive(run, timing.roundMs, true);
      }
    }
  } finally {
    for (const run of runs) await run.caller.close();
    rmSync(dir, { recursive: true, force: true });
  }
  collectGarbage();
  return runs.map((run) => ({
    name: run.subject.name,
    note: run.subject.note,
    callers: run.subject.callers,
    calls: run.calls,
    perSecond: (run.calls * 1e9) / run.ns,
    p50Ns: quantile(run.latencies, 0.5),
    p99Ns: quantile(run.latencies, 0.99),
    roundMin: Math.min(...run.rounds),
    roundMax: Math.max(...run.rounds),
  }));
}
