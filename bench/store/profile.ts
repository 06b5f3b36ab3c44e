/**
 * Where one path of the store benchmark spends its time: runs it for a few seconds under
 * V8's CPU profiler and prints self time grouped by what the code does (store JSON,
 * canonical JSON, SHA-256, SQLite, garbage collection, …), plus the heaviest functions.
 *
 * node --import tsx bench/store/profile.ts "writ memory, log on" [seconds] [--out file.cpuprofile]
 *
 * Run `npm run build` first (it profiles `dist/`, as the benchmark times it), and pin it
 * to one CPU as the benchmark does: `taskset -c 1 node --import tsx bench/store/profile.ts …`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeSets } from './bench.js';
import { distRuntime } from './runtime.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** What a frame's code does, from where it lives. */
const CATEGORIES: [string, (url: string, fn: string) => boolean][] = [
  ['garbage collection', (_, fn) => fn === '(garbage collector)'],
  ['canonical JSON (RFC 8785)', (url) => url.includes('canonical-json')],
  [
    'SHA-256 (digest, node:crypto)',
    (url) => /core\/digest|internal\/crypto\/hash/.test(url) || url.endsWith('node:crypto'),
  ],
  ['random ids', (url) => /runtime\/system|internal\/crypto\/random/.test(url)],
  [
    'better-sqlite3 (transactions; native time of statements shows in callers)',
    (url) => url.includes('better-sqlite3'),
  ],
  ['SQLite store: statements and JSON of records', (url) => url.includes('store/sqlite/')],
  ['memory store: JSON of records', (url) => url.includes('store/memory/')],
  ['log entries (build, copy, chain)', (url) => url.includes('log/entry')],
  ['ledger (invariants, Tx)', (url) => url.includes('store/ledger')],
  ['policy (CEL, plan)', (url) => /policy\/|cel-js|re2js/.test(url)],
  [
    'engine (validation, decisions, redaction)',
    (url) => /\/dist\/(engine|core|log|store|runtime)\//.test(url),
  ],
  ['rate-limiter-flexible', (url) => url.includes('rate-limiter-flexible')],
  ['benchmark loop', (url) => url.includes('/bench/')],
];

function categorize(profile: Profile): {
  categories: [string, number][];
  functions: [string, number][];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (const [i, id] of profile.samples.entries())
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName: fn, url, lineNumber } = node.callFrame;
    if (fn === '(idle)' || fn === '(program)' || fn === '(root)') continue;
    // Native code (statements, JSON.parse, …) is attributed to the JavaScript that called it.
    let frame = node;
    while (frame.callFrame.url === '' && fn !== '(garbage collector)' && parent.has(frame.id))
      frame = byId.get(parent.get(frame.id)!)!;
    const where = frame.callFrame.url;
    const category = CATEGORIES.find(([, test]) => test(where, fn))?.[0] ?? 'other';
    categories.set(category, (categories.get(category) ?? 0) + us);
    const name = `${fn || '(anonymous)'} ${url.replace(/.*\/(dist|node_modules)\//, '')}:${lineNumber + 1}`;
    functions.set(name, (functions.get(name) ?? 0) + us);
    total += us;
  }
  const shares = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, (100 * v) / total] as [string, number]);
  return { categories: shares(categories), functions: shares(functions).slice(0, 15) };
}

async function main(name: string, seconds: number, out: string | undefined) {
  const rt = await distRuntime();
  const subject = storeSets(rt)
    .flatMap((set) => set.subjects)
    .find((s) => s.name === name);
  if (!subject) {
    const names = storeSets(rt).flatMap((set) => set.subjects.map((s) => s.name));
    throw new Error(`no path named "${name}"; one of:\n  ${names.join('\n  ')}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-profile-'));
  const caller = await subject.open(dir);
  let next = 0;
  const drive = async (ms: number) => {
    const deadline = performance.now() + ms;
    await Promise.all(
      Array.from({ length: subject.callers }, async () => {
        while (performance.now() < deadline) await caller.call(next++);
      }),
    );
  };
  await drive(500);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  const before = next;
  const began = performance.now();
  await drive(seconds * 1000);
  const elapsed = performance.now() - began;
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  session.disconnect();
  await caller.close();
  rmSync(dir, { recursive: true, force: true });
  if (out) writeFileSync(out, JSON.stringify(profile));

  const calls = next - before;
  const { categories, functions } = categorize(profile);
  console.log(
    `${name}: ${calls} calls in ${(elapsed / 1000).toFixed(1)} s under the profiler ` +
      `(${((elapsed * 1000) / calls).toFixed(1)} µs per call)\n`,
  );
  console.log('self time by category:');
  for (const [k, share] of categories) console.log(`  ${share.toFixed(1).padStart(5)} %  ${k}`);
  console.log('\nheaviest functions (self time):');
  for (const [k, share] of functions) console.log(`  ${share.toFixed(1).padStart(5)} %  ${k}`);
}

const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const out = outAt >= 0 ? args.splice(outAt, 2)[1] : undefined;
const [name = 'writ memory, log on', seconds = '3'] = args;
await main(name, Number(seconds), out);
