/**
 * Timing for the benchmarks. A call that takes about a microsecond cannot be timed on its
 * own (reading the clock costs tens of nanoseconds and varies), so calls are timed in
 * batches and the per-call time is derived:
 *
 * - **stream**: the implementation runs through its input mix in batches of `batchSize`
 *   consecutive calls; each batch is timed with `process.hrtime.bigint()` and divided by
 *   its size. The median of those batch means is the per-decision time of the mixed
 *   workload, its inverse the throughput; the 99th percentile of batch means shows how
 *   much garbage collection and other pauses cost a batch.
 * - **per item**: every input is timed alone, repeated `reps` times in a row (reps chosen
 *   so a timed run lasts at least ~20 µs), several passes, the median pass kept. The
 *   distribution of those per-input costs gives p50 and p99 of the decision time: what a
 *   typical and a slow request cost.
 *
 * Each implementation gets its own copy of the timing loops (compiled with `new Function`)
 * so that one implementation's call sites in the loop stay monomorphic and V8 can inline
 * it, as it would in a caller that uses only that implementation. Implementations compared
 * with each other are measured interleaved ({@link measureAll}).
 */
import { availableParallelism, cpus } from 'node:os';

/** Anything the benchmark calls: one input → a string result (its length is consumed). */
export interface Timed<T> {
  name: string;
  note: string;
  items: readonly T[];
  run: (item: T) => string;
}

/** How long and how much to measure. */
export interface TimingOptions {
  /** Warm-up before measuring, so V8 (and a wasm module) have tiered up. */
  warmupMs: number;
  /** Time for stream batches (at least `minBatches` are taken). */
  streamMs: number;
  minBatches: number;
  /** Calls per stream batch; smaller for slow implementations. */
  batchSize: number;
  /** Time for the per-item passes; fewer items are timed if they would not fit. */
  perItemMs: number;
  passes: number;
}

/** What one implementation measured. */
export interface Timing {
  name: string;
  note: string;
  /** Median over stream batches of the mean time per call, ns. */
  streamNs: number;
  /** 99th percentile over stream batches of the mean time per call, ns. */
  streamP99Ns: number;
  /** Calls per second derived from {@link streamNs}. */
  perSecond: number;
  batches: number;
  batchSize: number;
  /** Median over inputs of the per-input cost, ns. */
  p50Ns: number;
  /** 99th percentile over inputs of the per-input cost, ns. */
  p99Ns: number;
  /** How many inputs the per-item distribution covers, and with how many repetitions. */
  itemsTimed: number;
  reps: number;
  /** The cost of each timed input (index = input index), ns. */
  perItem: number[];
}

let blackhole = 0;

/** Keeps results alive so no call can be optimized away; report it to use it. */
export function sink(): number {
  return blackhole;
}

type StreamLoop = (
  run: (item: unknown) => string,
  items: readonly unknown[],
  start: number,
  count: number,
) => number;
type RepeatLoop = (run: (item: unknown) => string, item: unknown, reps: number) => number;

function streamLoop(): StreamLoop {
  return new Function(
    'run',
    'items',
    'start',
    'count',
    `const n = items.length;
     let i = start, s = 0;
     for (let c = 0; c < count; c++) {
       s += run(items[i]).length;
       if (++i === n) i = 0;
     }
     return s;`,
  ) as StreamLoop;
}

function repeatLoop(): RepeatLoop {
  return new Function(
    'run',
    'item',
    'reps',
    `let s = 0;
     for (let r = 0; r < reps; r++) s += run(item).length;
     return s;`,
  ) as RepeatLoop;
}

const clock = () => process.hrtime.bigint();
const msSince = (start: bigint) => Number(clock() - start) / 1e6;

/** Nearest-rank quantile of a list of numbers. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

/** One implementation being measured, with its loops and what it has measured so far. */
class Run {
  readonly run: (item: unknown) => string;
  readonly items: readonly unknown[];
  readonly stream = streamLoop();
  readonly repeat = repeatLoop();
  readonly perCall: number[] = [];
  samples: number[][] = [];
  reps = 1;
  start = 0;

  constructor(
    readonly subject: Timed<never>,
    readonly options: TimingOptions,
  ) {
    this.run = subject.run as (item: unknown) => string;
    this.items = subject.items;
  }

  batch(): void {
    blackhole += this.stream(this.run, this.items, this.start, this.options.batchSize);
    this.start = (this.start + this.options.batchSize) % this.items.length;
  }

  warmUp(): void {
    const began = clock();
    do this.batch();
    while (msSince(began) < this.options.warmupMs);
  }

  /** Times stream batches for `ms`, and at least `min` of them. */
  streamFor(ms: number, min: number): void {
    const began = clock();
    for (let taken = 0; taken < min || msSince(began) < ms; taken++) {
      const t0 = clock();
      this.batch();
      this.perCall.push(Number(clock() - t0) / this.options.batchSize);
    }
  }

  /** Sizes the per-item passes from the stream: ~20 µs per timed run, within `perItemMs`. */
  planItems(): void {
    const streamNs = quantile(this.perCall, 0.5);
    this.reps = Math.max(1, Math.ceil(20_000 / streamNs));
    const costPerItem = Math.max(streamNs * this.reps, 20_000) * this.options.passes;
    const fit = Math.floor((this.options.perItemMs * 1e6) / costPerItem);
    this.samples = Array.from({ length: Math.max(1, Math.min(this.items.length, fit)) }, () => []);
  }

  /** One pass over the timed items. */
  itemPass(): void {
    for (let i = 0; i < this.samples.length; i++) {
      const t0 = clock();
      blackhole += this.repeat(this.run, this.items[i], this.reps);
      this.samples[i]!.push(Number(clock() - t0) / this.reps);
    }
  }

  result(): Timing {
    const streamNs = quantile(this.perCall, 0.5);
    const perItem = this.samples.map((s) => quantile(s, 0.5));
    return {
      name: this.subject.name,
      note: this.subject.note,
      streamNs,
      streamP99Ns: quantile(this.perCall, 0.99),
      perSecond: 1e9 / streamNs,
      batches: this.perCall.length,
      batchSize: this.options.batchSize,
      p50Ns: quantile(perItem, 0.5),
      p99Ns: quantile(perItem, 0.99),
      itemsTimed: this.samples.length,
      reps: this.reps,
      perItem,
    };
  }
}

/**
 * Measures several implementations, interleaved: after each has warmed up, the stream time
 * is split into `rounds` rounds that take turns, and the per-item passes take turns too.
 * On a machine that also runs other work, a burst of load then falls on every
 * implementation alike instead of on whichever happened to be running.
 */
export function measureAll(
  entries: readonly { subject: Timed<never>; options: TimingOptions }[],
  rounds = 5,
): Timing[] {
  const runs = entries.map((e) => new Run(e.subject, e.options));
  for (const r of runs) r.warmUp();
  for (let round = 0; round < rounds; round++) {
    for (const r of runs) {
      r.streamFor(r.options.streamMs / rounds, Math.ceil(r.options.minBatches / rounds));
    }
  }
  for (const r of runs) r.planItems();
  const passes = Math.max(...runs.map((r) => r.options.passes));
  for (let pass = 0; pass < passes; pass++) {
    for (const r of runs) if (pass < r.options.passes) r.itemPass();
  }
  return runs.map((r) => r.result());
}

/** Measures one implementation: warm-up, stream batches, then per-item costs. */
export function measure<T>(subject: Timed<T>, options: TimingOptions): Timing {
  return measureAll([{ subject: subject as unknown as Timed<never>, options }], 1)[0]!;
}

/** The machine, for the results file. */
export function machine(): Record<string, string> {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: process.env.WRIT_BENCH_CORES ?? String(availableParallelism()),
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform} ${process.arch}`,
    pinned: process.env.WRIT_BENCH_CPU !== undefined ? `CPU ${process.env.WRIT_BENCH_CPU}` : 'no',
  };
}

/** Formats nanoseconds as microseconds with sensible precision. */
export function us(ns: number): string {
  const v = ns / 1000;
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

/** Formats a rate such as 1234567 as `1.23 M`. */
export function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k`;
  return perSecond.toFixed(0);
}

/**
 * A Markdown table. Columns align right (numbers) except those listed in `left` (by
 * default the first).
 */
export function table(head: string[], rows: string[][], left: number[] = [0]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const rule = head.map((_, i) => (left.includes(i) ? '---' : '---:'));
  return [line(head), line(rule), ...rows.map(line)].join('\n');
}
