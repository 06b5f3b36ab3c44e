/**
 * Benchmark `log`: `verifyLog()` over a SQLite store holding a million entries — entries
 * per second, and the memory it takes (in a process of its own, under a small heap limit,
 * to show that it streams) — and where a verified entry's time goes. What logging costs
 * authorize + settle is measured by the store benchmark (log on and off, per store).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { LogEntry } from '../../src/log/entry.js';
import type { BenchContext } from '../context.js';
import { loadDist } from '../engine.js';
import { rate, table } from '../harness.js';
import { distRuntime } from '../store/runtime.js';
import { logWriter } from './generate.js';
import type { VerifyReport } from './verify-child.js';

/** The old-space limit the verifying process runs under, MB. */
export const HEAP_LIMIT_MB = 32;
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `verifyLog()` on the store at `path` in a child process; returns what it reported. */
export function verifyInChild(path: string, from: 'dist' | 'src' = 'dist'): VerifyReport {
  const run = spawnSync(
    process.execPath,
    [
      `--max-old-space-size=${HEAP_LIMIT_MB}`,
      '--import',
      'tsx',
      join(root, 'bench', 'log', 'verify-child.ts'),
      path,
      from,
    ],
    { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (run.status !== 0) throw new Error(`verify-child failed (${run.status}): ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as VerifyReport;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

/** Runs the benchmark and returns its section of the report. */
export async function logBenchmark(ctx: BenchContext): Promise<string> {
  const sizes = ctx.quick ? [10_000, 100_000] : [100_000, 1_000_000];
  const count = sizes.at(-1)!;
  const rt = await distRuntime();
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-log-'));
  try {
    const path = join(dir, 'writ.db');
    const writer = await logWriter(rt, path);
    const runs: { entries: number; child: VerifyReport }[] = [];
    for (const size of sizes) {
      ctx.log(`  writing chained entries up to ${size.toLocaleString('en')} …`);
      writer.append(size - writer.entries);
      ctx.log(`  verifyLog() of ${size.toLocaleString('en')} entries in a child process …`);
      const child = verifyInChild(path);
      if (!child.report.ok || child.report.entries !== size)
        throw new Error(`verification failed: ${JSON.stringify(child.report)}`);
      ctx.log(`    ${(child.ms / 1000).toFixed(1)} s, peak RSS ${mb(child.maxRss)}`);
      runs.push({ entries: size, child });
    }
    writer.close();
    const fileBytes = statSync(path).size;

    ctx.log('  the parts of verifying an entry …');
    const parts = await verifyParts(path, ctx.quick ? 20_000 : 100_000);
    const last = runs.at(-1)!.child;

    return [
      `### Log: verifying ${count.toLocaleString('en')} entries on SQLite`,
      '',
      `The log holds ${count.toLocaleString('en')} entries, half decisions and half settlements ` +
        `shaped like the store benchmark's (${(writer.bytes / count).toFixed(0)} bytes of JSON on ` +
        `average, ${mb(fileBytes)} of database file), chained with the ledger's \`chainEntry\` ` +
        `and inserted in bulk: ${(writer.ms / 1000).toFixed(1)} s, ` +
        `${rate((count * 1000) / writer.ms)} entries/s. Each verification runs \`verifyLog()\` ` +
        'as `writ log verify` does (SQLite store, Node runtime), in a process of its own whose ' +
        `old space is limited to ${HEAP_LIMIT_MB} MB, first when the log has ` +
        `${sizes[0]!.toLocaleString('en')} entries, then at ${count.toLocaleString('en')}. The ` +
        "file was just written, so it is read from the operating system's page cache.",
      '',
      table(
        [
          'entries',
          'time s',
          'entries/s',
          'MB/s of JSON',
          'peak RSS',
          'RSS before → after',
          'heap before → after',
        ],
        runs.map(({ entries, child }) => [
          entries.toLocaleString('en'),
          (child.ms / 1000).toFixed(1),
          rate((entries * 1000) / child.ms),
          ((writer.bytes / count / 2 ** 20) * ((entries * 1000) / child.ms)).toFixed(0),
          mb(child.maxRss),
          `${mb(child.rssBefore)} → ${mb(child.rssAfter)}`,
          `${mb(child.heapBefore)} → ${mb(child.heapAfter)}`,
        ]),
      ),
      '',
      `The JavaScript heap of the verifying process could hold at most ${HEAP_LIMIT_MB} MB of ` +
        `old objects, ${((100 * HEAP_LIMIT_MB * 2 ** 20) / writer.bytes).toFixed(0)} % of the ` +
        `log's JSON, and ended with ${mb(last.heapAfter)} in use; its peak RSS was ` +
        `${mb(last.maxRss)} for ${count.toLocaleString('en')} entries against ` +
        `${mb(runs[0]!.child.maxRss)} for ${sizes[0]!.toLocaleString('en')}.`,
      '',
      `Where a verified entry's time goes: streams over the first ` +
        `${parts.sample.toLocaleString('en')} entries in this process, each doing one step more ` +
        "than the one before; a step's cost is the difference:",
      '',
      table(
        ['step', 'µs per entry'],
        parts.steps.map(([name, ns]) => [name, (ns / 1000).toFixed(2)]),
      ),
      '',
      'What logging costs authorize + settle, per store, is in the store benchmark ' +
        '("The decision log on and off").',
    ].join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Times the steps of verifying as streams over the first `sample` entries, each stream
 * doing one step more than the one before, as `ChainVerifier` does them: read the rows; and
 * parse their JSON; and hash the stored text without its hash field (`sealedHash`). Each
 * step's cost is the difference. One warm-up pass first, so every stream runs optimized code.
 */
async function verifyParts(
  path: string,
  sample: number,
): Promise<{ sample: number; steps: [string, number][] }> {
  const entry = await loadDist('log/entry.js');
  const sealedHash = entry.sealedHash as (text: string) => string | undefined;
  const db = new Database(path, { readonly: true });
  try {
    const rows = db.prepare<[number], { seq: number; entry: string }>(
      'SELECT seq, entry FROM log ORDER BY seq LIMIT ?',
    );
    const streams: ((text: string) => number)[] = [
      (text) => text.length,
      (text) => (JSON.parse(text) as LogEntry).seq,
      (text) => (JSON.parse(text) as LogEntry).seq + (sealedHash(text)?.length ?? 0),
    ];
    const pass = () =>
      streams.map((step) => {
        let check = 0;
        const began = performance.now();
        for (const row of rows.iterate(sample)) check += step(row.entry);
        const ns = ((performance.now() - began) * 1e6) / sample;
        if (check === 0) throw new Error('nothing was read');
        return ns;
      });
    pass();
    const [read, parsed, hashed] = pass() as [number, number, number];
    return {
      sample,
      steps: [
        ['read the row (better-sqlite3 `iterate`)', read],
        ['`JSON.parse` the entry', parsed - read],
        ['SHA-256 of the stored text without its hash field, as hex', hashed - parsed],
        ['all of the above (the chain check adds comparisons only)', hashed],
      ],
    };
  } finally {
    db.close();
  }
}
