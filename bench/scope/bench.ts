/**
 * Benchmark `scope`: the pure scope decision on a generated policy of 50 tools and 200
 * rules, writ side by side with Cedar and with a hand-written JavaScript floor, after a
 * differential check that all of them decide every request of the mix alike. Then where
 * the time goes: the parts of `decideScope`, the parts of a Cedar call.
 */
import type { BenchContext } from '../context.js';
import { distEngine } from '../engine.js';
import {
  measure,
  measureAll,
  quantile,
  rate,
  type Timing,
  type TimingOptions,
  table,
  us,
} from '../harness.js';
import { cedarProbes } from './cedar.js';
import { RULE_COUNT, TOOL_COUNT } from './generate.js';
import {
  type DifferentialReport,
  differential,
  NOW,
  type Pace,
  type Prepared,
  prepare,
  subjects,
} from './subjects.js';

/** The requirement of issue 2, for the pure evaluation. */
const TARGET = { p50Ns: 2_000, perSecond: 300_000, floorRatio: 10 };

const PACES: Record<Pace, TimingOptions> = {
  fast: {
    warmupMs: 700,
    streamMs: 2_500,
    minBatches: 50,
    batchSize: 1_000,
    perItemMs: 1_500,
    passes: 5,
  },
  // wasm starts in its baseline tier: give it time to tier up before measuring.
  slow: {
    warmupMs: 2_500,
    streamMs: 4_000,
    minBatches: 20,
    batchSize: 100,
    perItemMs: 3_000,
    passes: 3,
  },
  'very slow': {
    warmupMs: 1_000,
    streamMs: 3_000,
    minBatches: 10,
    batchSize: 10,
    perItemMs: 2_000,
    passes: 1,
  },
};

function options(pace: Pace, quick: boolean): TimingOptions {
  const base = PACES[pace];
  if (!quick) return base;
  return {
    ...base,
    warmupMs: pace === 'fast' ? base.warmupMs / 4 : base.warmupMs,
    streamMs: base.streamMs / 5,
    perItemMs: base.perItemMs / 5,
    minBatches: Math.min(base.minBatches, 10),
  };
}

/** Timing for a part measured only as a stream. */
function partOptions(quick: boolean, batchSize = 1_000): TimingOptions {
  return {
    warmupMs: 400,
    streamMs: quick ? 300 : 1_200,
    minBatches: 20,
    batchSize,
    perItemMs: 0,
    passes: 1,
  };
}

/** Runs the benchmark and returns its section of the report. */
export async function scopeBenchmark(ctx: BenchContext): Promise<string> {
  const p = prepare(await distEngine());
  const check = differential(p);
  const summary = describe(p, check);
  ctx.log(summary);
  if (check.disagreements.length > 0) {
    for (const d of check.disagreements.slice(0, 5)) ctx.log(JSON.stringify(d, null, 1));
    throw new Error(
      `differential check failed: ${check.disagreements.length} of ${check.requests} requests disagree`,
    );
  }

  const list = subjects(p);
  ctx.log(`  timing ${list.map((s) => s.name).join(', ')}, interleaved …`);
  const timings = measureAll(
    list.map((subject) => ({ subject, options: options(subject.pace, ctx.quick) })),
  );
  ctx.log('  timing the parts of decideScope …');
  const parts = timeDecideParts(p, ctx.quick);
  ctx.log('  timing the parts of a Cedar call …');
  const probes = cedarProbes(p.scenario, p.engine.normalizePath).map((c) =>
    measure({ ...c, note: '', items: p.actions }, partOptions(ctx.quick, 100)),
  );

  const find = (name: string) => timings.find((t) => t.name === name)!;
  const floor = timings[0]!;
  const writ = find('writ evaluateScope');
  const failing = new Set(check.failing);
  const clean = writ.perItem.filter((_, i) => !failing.has(i));
  const failed = writ.perItem.filter((_, i) => failing.has(i));
  const ratio = writ.streamNs / floor.streamNs;
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

  return [
    '### Scope decision: 50 tools, 200 rules',
    '',
    summary,
    '',
    table(
      [
        'implementation',
        'p50 µs',
        'p99 µs',
        'mixed stream µs/decision',
        'stream p99 µs',
        'decisions/s (one core)',
        'vs floor',
      ],
      timings.map((t) => [
        t.name,
        us(t.p50Ns),
        us(t.p99Ns),
        us(t.streamNs),
        us(t.streamP99Ns),
        rate(t.perSecond),
        times(t.streamNs / floor.streamNs),
      ]),
    ),
    '',
    ...timings.map(
      (t) =>
        `- ${t.name}: ${t.note}. Stream: ${t.batches} batches of ${t.batchSize}; ` +
        `per request: ${t.itemsTimed} requests × ${t.reps} repetitions.`,
    ),
    '',
    `Targets for writ evaluateScope: p50 ≤ 2 µs — ${us(writ.p50Ns)} µs, ${verdict(writ.p50Ns <= TARGET.p50Ns)}; ` +
      `≥ 300 k decisions/s — ${rate(writ.perSecond)}/s, ${verdict(writ.perSecond >= TARGET.perSecond)}; ` +
      `within 10× of the floor — ${times(ratio)} in the mixed stream (${times(writ.p50Ns / floor.p50Ns)} ` +
      `at p50), ${verdict(ratio <= TARGET.floorRatio)}.`,
    '',
    `Where the time of writ decideScope (${us(find('writ decideScope').streamNs)} µs per decision in ` +
      'the stream) goes, each part timed on its own:',
    '',
    table(
      ['part', 'µs per call'],
      [
        ...parts.map((t) => [t.name, us(t.streamNs)]),
        ['evaluateScope with buildContext (row above)', us(writ.streamNs)],
      ],
    ),
    '',
    `A condition that fails costs more: writ evaluateScope costs ${us(quantile(clean, 0.5))} µs (p50) ` +
      `on the ${clean.length} requests where no condition fails and ${us(quantile(failed, 0.5))} µs on ` +
      `the ${failed.length} where at least one does (a missing argument, missing \`session.attrs.payees\`).`,
    '',
    'Where a Cedar call goes (`statefulIsAuthorized`, policies preparsed; mixed stream):',
    '',
    table(
      ['call', 'µs per call'],
      [
        ...probes.map((t) => [t.name, us(t.streamNs)]),
        [
          `this benchmark's ${RULE_COUNT} policies (row above)`,
          us(find('Cedar statefulIsAuthorized').streamNs),
        ],
      ],
    ),
  ].join('\n');
}

/** What was generated and what the differential check saw. */
function describe(p: Prepared, check: DifferentialReport): string {
  const s = p.scenario;
  const count = (f: (r: (typeof s.rules)[number]) => boolean) => s.rules.filter(f).length;
  return [
    `Policy (seed ${s.seed}): ${TOOL_COUNT} tools and ${s.globs.length} tool globs, ` +
      `${RULE_COUNT} rules (${count((r) => r.effect === 'forbid')} forbid, ` +
      `${count((r) => r.effect === 'require_approval')} require_approval, ` +
      `${count((r) => r.effect === 'allow')} allow; ${count((r) => r.scope.kind === 'glob')} on globs, ` +
      `${count((r) => r.scope.kind === 'flow')} flow). writ compiles it in ${p.loadMs.writ.toFixed(0)} ms, ` +
      `Cedar parses its ${RULE_COUNT} policies in ${p.loadMs.cedar.toFixed(0)} ms (Cedar ${p.cedar.version}).`,
    '',
    `Request mix: ${check.requests} requests → ${check.outcomes.allow} allow, ${check.outcomes.deny} deny, ` +
      `${check.outcomes.approval_required} approval_required; ${check.conditionErrors} with a condition ` +
      `error, ${check.unnamed} for tools the policy does not name.`,
    '',
    'Differential check: writ evaluateScope, writ decideScope, the floor and Cedar agree on the ' +
      `outcome of ${check.requests - check.disagreements.length} of ${check.requests} requests, and ` +
      'writ and Cedar on the rules that decided.',
  ].join('\n');
}

/** The parts of writ decideScope, each timed on its own. */
function timeDecideParts(p: Prepared, quick: boolean): Timing[] {
  const { buildContext, parseAction, actionDigest, canonicalJson, sha256Hex } = p.engine;
  // What actionDigest hashes: tool, arguments, principal id and tenant, session id.
  const digestInputs = p.actions.map((a) => ({
    tool: a.tool,
    args: a.args,
    principal:
      a.principal.tenant === undefined
        ? { id: a.principal.id }
        : { id: a.principal.id, tenant: a.principal.tenant },
    session: a.session.id,
  }));
  const texts = digestInputs.map((d) => canonicalJson(d));
  const bytes = Math.round(texts.reduce((n, t) => n + t.length, 0) / texts.length);
  const o = partOptions(quick);
  return [
    measure(
      {
        name: 'parseAction (validate and copy the request)',
        note: '',
        items: p.scenario.requests,
        run: (r) => (parseAction(r).ok ? 'ok' : 'invalid'),
      },
      o,
    ),
    measure(
      { name: 'buildContext', note: '', items: p.actions, run: (a) => buildContext(a, NOW).tool },
      o,
    ),
    measure(
      {
        name: 'actionDigest (RFC 8785 JSON + SHA-256)',
        note: '',
        items: p.actions,
        run: (a) => actionDigest(a),
      },
      o,
    ),
    measure(
      {
        name: '… of which canonicalJson of the digest input',
        note: '',
        items: digestInputs,
        run: (d) => canonicalJson(d),
      },
      o,
    ),
    measure(
      {
        name: `… of which sha256Hex of that text (${bytes} bytes on average)`,
        note: '',
        items: texts,
        run: (text) => sha256Hex(text),
      },
      o,
    ),
  ];
}

function times(x: number): string {
  return `${x >= 100 ? x.toFixed(0) : x.toFixed(1)}×`;
}
