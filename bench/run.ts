/**
 * The benchmark runner: `npm run bench` runs every benchmark, `npm run bench -- scope`
 * (or `cel`, `store`, `log`) one of them. Each benchmark lives in its own folder
 * (`bench/scope/`, `bench/cel/`, `bench/store/`, `bench/log/`) and exports one function that
 * returns its section of the report.
 *
 * Options: `--quick` shortens every timing (for a look, not for the results file);
 * `--out <file>` also writes the report as Markdown; `--no-pin` skips pinning.
 *
 * On Linux the runner re-runs itself under `taskset` on one CPU, so "per core" means one
 * core: the benchmark thread and V8's helper threads (garbage collection, compilation)
 * share it, as they would on a machine whose other cores serve other requests.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import type { BenchContext } from './context.js';
import { machine, sink, table } from './harness.js';

interface Benchmark {
  title: string;
  run(ctx: BenchContext): Promise<string>;
}

const BENCHMARKS: Record<string, Benchmark> = {
  scope: {
    title: 'scope decision: writ vs Cedar vs a hand-written floor',
    run: async (ctx) => (await import('./scope/bench.js')).scopeBenchmark(ctx),
  },
  cel: {
    title: 'CEL libraries: @marcbachmann/cel-js vs @bufbuild/cel',
    run: async (ctx) => (await import('./cel/bench.js')).celBenchmark(ctx),
  },
  store: {
    title: 'stores: authorize + settle on memory and SQLite, log on and off, beside raw floors',
    run: async (ctx) => (await import('./store/bench.js')).storeBenchmark(ctx),
  },
  log: {
    title: 'decision log: verifying a million entries, and what logging costs',
    run: async (ctx) => (await import('./log/bench.js')).logBenchmark(ctx),
  },
};

function parseArgs(argv: string[]) {
  const names: string[] = [];
  let quick = false;
  let pin = true;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--quick') quick = true;
    else if (arg === '--no-pin') pin = false;
    else if (arg === '--out') out = argv[++i];
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`);
    else if (!(arg in BENCHMARKS))
      throw new Error(
        `unknown benchmark ${arg}; expected one of ${Object.keys(BENCHMARKS).join(', ')}`,
      );
    else names.push(arg);
  }
  return { names: names.length > 0 ? names : Object.keys(BENCHMARKS), quick, pin, out };
}

/** Re-runs this process on one CPU with taskset; returns false where that is not possible. */
function pinned(): boolean {
  if (process.platform !== 'linux' || process.env.WRIT_BENCH_CPU !== undefined) return false;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return false;
  }
  const cpu = String(availableParallelism() - 1);
  const result = spawnSync(
    'taskset',
    ['-c', cpu, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        WRIT_BENCH_CPU: cpu,
        WRIT_BENCH_CORES: String(availableParallelism()),
      },
    },
  );
  process.exitCode = result.status ?? 1;
  return true;
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.pin && pinned()) return;

  const ctx: BenchContext = { quick: args.quick, log: (text) => console.log(text) };
  const started = new Date();
  const load = loadavg()[0]!.toFixed(2);
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length;
  const info = {
    ...machine(),
    date: started.toISOString(),
    commit: commit ? `${commit}${dirty > 0 ? ` + ${dirty} changed files in src/` : ''}` : 'unknown',
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    'load average (1 min) at start': load,
  };
  console.log(table(['', ''], Object.entries(info)));

  const sections: string[] = [];
  for (const name of args.names) {
    const bench = BENCHMARKS[name]!;
    console.log(`\n## ${name}: ${bench.title}\n`);
    const began = performance.now();
    const section = await bench.run(ctx);
    sections.push(section);
    console.log(
      `\n${section}\n\n(${name} took ${((performance.now() - began) / 1000).toFixed(1)} s)`,
    );
  }
  const end = `load average (1 min) at end: ${loadavg()[0]!.toFixed(2)}; sink ${sink() % 10}`;
  console.log(`\n${end}`);
  if (args.out) {
    const report = [table(['', ''], Object.entries(info)), ...sections, end].join('\n\n');
    writeFileSync(args.out, `${report}\n`);
    console.log(`wrote ${args.out}`);
  }
  if (args.quick) console.log('(--quick: shortened timings, not for the results file)');
}

await main();
