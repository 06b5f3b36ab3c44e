/**
 * Benchmark `cel`: the two CEL libraries side by side. First the differential conformance
 * check over the corpus, then evaluation throughput on typical policy expressions.
 */
import { parse, plan } from '@bufbuild/cel';
import { parseAction } from '../../src/core/action.js';
import { celEnvironment } from '../../src/policy/cel.js';
import { buildContext } from '../../src/policy/evaluate.js';
import type { BenchContext } from '../context.js';
import {
  measureAll,
  rate,
  type Timed,
  type Timing,
  type TimingOptions,
  table,
} from '../harness.js';
import { runConformance } from './conformance.js';
import { CONTEXTS, EXPRESSIONS } from './corpus.js';
import { bufBindings, bufEnvironment, CEL_NOW } from './engines.js';

/** Typical conditions of a policy, evaluated on the corpus's `full` request. */
const TYPICAL: readonly (readonly [string, string])[] = [
  ['number', 'args.amount > 100'],
  ['in list', 'args.currency in ["USD", "EUR", "GBP"]'],
  ['payee', 'args.recipient in session.attrs.payees'],
  ['string + flag', 'args.memo.startsWith("INV-") && has(args.force) && args.force == true'],
  [
    'flow rule',
    '"untrusted-content" in session.labels && tool == "billing.send_payment" && !(args.recipient in session.attrs.payees)',
  ],
  ['path helper', 'path.within(args.path, "/srv/data")'],
  ['macro', 'args.items.exists(x, x > 10)'],
];

const OPTIONS: TimingOptions = {
  warmupMs: 300,
  streamMs: 900,
  minBatches: 30,
  batchSize: 1_000,
  perItemMs: 0,
  passes: 1,
};

/** Runs the benchmark and returns its section of the report. */
export async function celBenchmark(ctx: BenchContext): Promise<string> {
  const results = runConformance();
  const groups = new Map<string, { total: number; agree: number }>();
  for (const r of results) {
    const g = groups.get(r.group) ?? { total: 0, agree: 0 };
    g.total++;
    if (r.agree) g.agree++;
    groups.set(r.group, g);
  }
  const disagreements = results.filter((r) => !r.agree);
  const unexplained = disagreements.filter((r) => !r.known);
  const agreeing = results.length - disagreements.length;
  ctx.log(
    `Conformance: ${EXPRESSIONS.length} expressions × ${Object.keys(CONTEXTS).length} requests = ` +
      `${results.length} cases; ${agreeing} agree, ${disagreements.length} differ ` +
      `(${unexplained.length} not explained).`,
  );
  for (const r of unexplained) ctx.log(`  unexplained: ${r.context} :: ${r.expression}`);

  const request = parseAction(CONTEXTS.full);
  if (!request.ok) throw new Error('the full context is invalid');
  const writContext = buildContext(request.action, CEL_NOW);
  const bindings = bufBindings(request.action);
  const mapBindings = bufBindings(request.action, true);
  const env = celEnvironment();
  const bufEnv = bufEnvironment();
  const options = ctx.quick ? { ...OPTIONS, streamMs: 200, warmupMs: 100 } : OPTIONS;
  const rows: string[][] = [];
  for (const [name, source] of TYPICAL) {
    ctx.log(`  timing ${name} …`);
    const a = env.parse(source);
    const b = plan(bufEnv, parse(source));
    if (a(writContext) !== b(bindings) || a(writContext) !== b(mapBindings))
      throw new Error(`the libraries disagree on ${source}`);
    const yes = (v: unknown) => (v === true ? 'yes' : 'no');
    const subject = <T>(items: T[], run: (item: T) => string) =>
      ({ subject: { name, note: '', items, run } as unknown as Timed<never>, options }) as const;
    const [celJs, buf, bufMaps] = measureAll(
      [
        subject([writContext], (c) => yes(a(c))),
        subject([bindings], (c) => yes(b(c))),
        subject([mapBindings], (c) => yes(b(c))),
      ],
      3,
    ) as [Timing, Timing, Timing];
    rows.push([
      name,
      `\`${source}\``,
      `${rate(celJs.perSecond)}/s`,
      `${rate(buf.perSecond)}/s`,
      `${rate(bufMaps.perSecond)}/s`,
      `${(bufMaps.streamNs / celJs.streamNs).toFixed(1)}×`,
    ]);
  }

  // One row per divergence: the requests it shows in, and what each library said on the first.
  const byCase = new Map<string, typeof disagreements>();
  for (const r of disagreements) {
    const key = r.known ? `known:${r.known.expression}` : `${r.context}:${r.expression}`;
    byCase.set(key, [...(byCase.get(key) ?? []), r]);
  }
  const divergenceRows = [...byCase.values()].map((rs) => {
    const r = rs[0]!;
    return [
      `\`${r.expression}\``,
      rs.map((x) => x.context).join(', '),
      describe(r.celJs),
      describe(r.bufCel),
      r.known ? `${r.known.departs}: ${r.known.reason}` : '**not explained**',
    ];
  });

  return [
    '### CEL libraries: @marcbachmann/cel-js (writ) vs @bufbuild/cel',
    '',
    'Evaluation only: each expression compiled once, evaluated against a context built once ' +
      "(cel-js: writ's environment and context; @bufbuild/cel: the same values as plain objects, " +
      'or with every object as a `Map`, which it reads several times faster). ' +
      'One core, median of batches of 1,000 evaluations.',
    '',
    table(
      [
        'condition',
        'expression',
        'cel-js',
        '@bufbuild/cel, objects',
        '@bufbuild/cel, Maps',
        'cel-js faster by (vs Maps)',
      ],
      rows,
      [0, 1],
    ),
    '',
    `Differential conformance: ${EXPRESSIONS.length} expressions (the benchmark policy's forms and ` +
      'the CEL features policies use) over 4 requests (complete, sparse, mistyped, edge values): ' +
      `${results.length} cases, ${agreeing} agree (same value, or both an error). Per group:`,
    '',
    table(
      ['group', 'cases', 'agree'],
      [...groups].map(([g, c]) => [g, String(c.total), String(c.agree)]),
    ),
    '',
    'Where they differ:',
    '',
    table(
      ['expression', 'requests', 'cel-js', '@bufbuild/cel', 'who departs from CEL, and why'],
      divergenceRows,
      [0, 1, 2, 3, 4],
    ),
  ].join('\n');
}

function describe(r: { kind: string; value?: string; message?: string }): string {
  const text = r.kind === 'value' ? r.value! : `${r.kind}: ${r.message}`;
  return text.replace(/\|/g, '\\|').slice(0, 80);
}
