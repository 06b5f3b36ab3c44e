/**
 * Benchmark `store`: authorize + settle of an action that touches one budget, one rate
 * limit and one idempotency key, on each store with the decision log on and off, beside
 * floors that make the same writes with nothing else (a raw better-sqlite3 transaction),
 * and the rate-limit-only path beside `rate-limiter-flexible`.
 */
import type { BenchContext } from '../context.js';
import { rate, table, us } from '../harness.js';
import { distRuntime, type Runtime } from './runtime.js';
import {
  action,
  DECISION_POLICY,
  rawFloor,
  rawUpsert,
  rlfMemory,
  rlfSqlite,
  type Subject,
  writDecision,
  writRateOnly,
} from './subjects.js';
import { measureStores, type StoreResult, type StoreTiming } from './timing.js';

/** The requirement of issue 3, in decisions (authorize + settle) per second. */
const TARGET = { memory: 200_000, normal: 30_000, fullGroup: 20_000 };
/**
 * The floors the issue measured where it set the SQLite targets: the same writes in raw
 * better-sqlite3 transactions reached about 65 k/s with NORMAL and 7 k/s with FULL. The
 * targets are those floors scaled (NORMAL at 30/65 of its floor, FULL with group commit at
 * 20/7 of the FULL floor), so the report also holds writ to the same shares of the floors
 * measured in the same run, on whatever disk runs it.
 */
const ISSUE_FLOOR = { normal: 65_000, full: 7_000 };
/** Concurrent callers for group commit. */
export const CALLERS = 64;

/** The paths, in sets measured interleaved: each writ row with the floor it is held to. */
export function storeSets(rt: Runtime): { title: string; subjects: Subject[] }[] {
  return [
    {
      title: 'memory',
      subjects: [writDecision(rt, 'memory', true), writDecision(rt, 'memory', false)],
    },
    {
      // The same decisions from many callers at once, all holding on one budget: what
      // sharing a budget among concurrent agents costs, with no disk in the way.
      title: `memory, ${CALLERS} callers`,
      subjects: [
        writDecision(rt, 'memory', true, CALLERS),
        writDecision(rt, 'memory', false, CALLERS),
      ],
    },
    {
      title: 'SQLite NORMAL, one caller',
      subjects: [
        writDecision(rt, 'normal', true),
        writDecision(rt, 'normal', false),
        rawFloor('NORMAL'),
        rawUpsert('NORMAL'),
      ],
    },
    {
      title: 'SQLite FULL, one caller',
      subjects: [
        writDecision(rt, 'full', true),
        writDecision(rt, 'full', false),
        rawFloor('FULL'),
        rawUpsert('FULL'),
      ],
    },
    {
      title: `SQLite FULL, group commit, ${CALLERS} callers`,
      subjects: [
        writDecision(rt, 'full-group', true, CALLERS),
        writDecision(rt, 'full-group', false, CALLERS),
        writDecision(rt, 'full-group', true, CALLERS, CALLERS),
        rawFloor('FULL', CALLERS),
      ],
    },
    {
      title: 'rate limit only, memory',
      subjects: [rlfMemory(), writRateOnly(rt, 'memory', false), writRateOnly(rt, 'memory', true)],
    },
    {
      title: 'rate limit only, SQLite NORMAL',
      subjects: [rlfSqlite(), writRateOnly(rt, 'normal', false), writRateOnly(rt, 'normal', true)],
    },
  ];
}

function timing(quick: boolean): StoreTiming {
  return quick
    ? { warmupMs: 200, rounds: 2, roundMs: 250 }
    : { warmupMs: 400, rounds: 3, roundMs: 600 };
}

const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');

/** How many log entries one authorize + settle leaves with `log: false`. */
export async function entriesWithLogOff(rt: Runtime): Promise<number> {
  const writ = rt.createWrit({ policy: DECISION_POLICY, store: rt.memoryStore(), log: false });
  const decided = await writ.authorize(action(0));
  if (!decided.writ) throw new Error(`expected allow, got ${decided.outcome}`);
  await writ.settle(decided.writ, { status: 'succeeded', result: { messageId: 0 } });
  const { entries } = await writ.store.verifyLog();
  await writ.close();
  return entries;
}

/** Runs the benchmark and returns its section of the report. */
export async function storeBenchmark(ctx: BenchContext): Promise<string> {
  const rt = await distRuntime();
  const results: StoreResult[] = [];
  for (const set of storeSets(rt)) {
    ctx.log(`  timing ${set.title}: ${set.subjects.map((s) => s.name).join('; ')} …`);
    const measured = await measureStores(set.subjects, timing(ctx.quick));
    for (const r of measured)
      ctx.log(
        `    ${r.name}: ${rate(r.perSecond)}/s, p50 ${us(r.p50Ns)} µs, p99 ${us(r.p99Ns)} µs`,
      );
    results.push(...measured);
  }
  return report(results, await entriesWithLogOff(rt));
}

const FLOORS: Record<string, string> = {
  'SQLite NORMAL': 'raw better-sqlite3 NORMAL (floor)',
  'SQLite FULL': 'raw better-sqlite3 FULL (floor)',
  'SQLite FULL, group commit': 'raw better-sqlite3 FULL, group commit (floor)',
};
const STORES = [
  'memory',
  `memory, ${CALLERS} callers`,
  'SQLite NORMAL',
  'SQLite FULL',
  'SQLite FULL, group commit',
];

/**
 * The section of the report, from the measured rows and the number of log entries a
 * decision leaves with `log: false`.
 */
export function report(results: readonly StoreResult[], logOffEntries: number): string {
  const find = (name: string) => {
    const found = results.find((r) => r.name === name);
    if (!found) throw new Error(`no result for ${name}`);
    return found;
  };
  const share = (r: StoreResult, of: StoreResult) =>
    `${((100 * r.perSecond) / of.perSecond).toFixed(0)} %`;
  const floorFor = (r: StoreResult) => {
    const store = r.name.match(/^writ (.*?), log (on|off)/)?.[1];
    const floor = store ? FLOORS[store] : undefined;
    return floor ? find(floor) : undefined;
  };
  const row = (r: StoreResult, withFloor: boolean) => {
    const floor = withFloor ? floorFor(r) : undefined;
    return [
      r.name,
      String(r.callers),
      rate(r.perSecond),
      `${rate(r.roundMin)}–${rate(r.roundMax)}`,
      us(r.p50Ns),
      us(r.p99Ns),
      ...(withFloor ? [floor ? share(r, floor) : ''] : []),
    ];
  };
  const isRate = (r: StoreResult) => r.note === 'authorize' || r.note === 'consume(key, 1)';

  const memory = find('writ memory, log on');
  const normal = find('writ SQLite NORMAL, log on');
  const group = find('writ SQLite FULL, group commit, log on');
  const spread = find(`writ SQLite FULL, group commit, log on, ${CALLERS} budget keys`);
  const fullFloor = find('raw better-sqlite3 FULL (floor)');
  const groupFloor = find('raw better-sqlite3 FULL, group commit (floor)');
  const scaled = {
    normal:
      (find('raw better-sqlite3 NORMAL (floor)').perSecond * TARGET.normal) / ISSUE_FLOOR.normal,
    fullGroup: (fullFloor.perSecond * TARGET.fullGroup) / ISSUE_FLOOR.full,
  };
  const upsert = {
    normal: find('raw better-sqlite3 NORMAL, one upsert per transaction'),
    full: find('raw better-sqlite3 FULL, one upsert per transaction'),
  };
  const logOff =
    logOffEntries === 0
      ? 'With `log: false` a decision leaves no log entry.'
      : `With \`log: false\` a decision still leaves ${logOffEntries} log ` +
        `entr${logOffEntries === 1 ? 'y' : 'ies'}: \`settle\` records its settlement ` +
        'whatever the option (the ledger\'s `settle` always calls `tx.log`), so the "log off" ' +
        'rows still chain, hash and store one entry per decision and understate what the log costs.';

  return [
    '### Store: authorize + settle (one budget, one rate limit, one idempotency key)',
    '',
    'One decision is `authorize` (checked to be `allow`) then `settle(writ, { status: ' +
      "'succeeded', result })`; each call claims a fresh idempotency key, holds 1 on one budget " +
      'key (a limit it never reaches) and takes a token from one rate-limit key (a rate it ' +
      "never reaches). SQLite files are new, in the system's temporary directory; the system " +
      `clock and random ids, as a deployment has them. "callers": loops running at once ` +
      `(${CALLERS}: async loops in one process, so group commit gathers their steps). Rates are ` +
      'decisions per second over the timed rounds ("rounds": the slowest and fastest round); ' +
      'latency is one authorize + settle as its caller sees it. "of floor": the rate as a ' +
      "share of the raw better-sqlite3 floor's with the same durability and callers: the same " +
      'writes in two plain transactions (authorize, settle), no policy, JSON or hashing. ' +
      `"${CALLERS} budget keys": the same, with calls spread over ${CALLERS} tenants instead of ` +
      'one, so no budget row carries every call in flight.',
    '',
    table(
      ['path', 'callers', 'decisions/s', 'rounds', 'p50 µs', 'p99 µs', 'of floor'],
      results.filter((r) => !isRate(r)).map((r) => row(r, true)),
    ),
    '',
    `The decision log on and off (issue 4). ${logOff}`,
    '',
    table(
      [
        'store',
        'callers',
        'log off: decisions/s',
        'log on: decisions/s',
        'on / off',
        'p50 µs off',
        'p50 µs on',
      ],
      STORES.map((store) => {
        const on = find(`writ ${store}, log on`);
        const off = find(`writ ${store}, log off`);
        return [
          store,
          String(on.callers),
          rate(off.perSecond),
          rate(on.perSecond),
          share(on, off),
          us(off.p50Ns),
          us(on.p50Ns),
        ];
      }),
    ),
    '',
    'The rate-limit-only path: writ `authorize` with a policy whose only invariant is the rate ' +
      'limit (no settle, so "log off" logs nothing), against `rate-limiter-flexible` consuming ' +
      'one point per call (a fixed-window counter; writ evaluates the policy and runs a GCRA ' +
      'bucket):',
    '',
    table(
      ['path', 'callers', 'calls/s', 'rounds', 'p50 µs', 'p99 µs'],
      results.filter(isRate).map((r) => row(r, false)),
    ),
    '',
    `Targets (log on): memory ≥ ${rate(TARGET.memory)}/s — ${rate(memory.perSecond)}/s, ` +
      `${verdict(memory.perSecond >= TARGET.memory)}; SQLite NORMAL ≥ ${rate(TARGET.normal)}/s — ` +
      `${rate(normal.perSecond)}/s, ${verdict(normal.perSecond >= TARGET.normal)}; SQLite FULL ` +
      `with group commit ≥ ${rate(TARGET.fullGroup)}/s under ${CALLERS} callers — ` +
      `${rate(group.perSecond)}/s (${rate(spread.perSecond)}/s with ${CALLERS} budget keys), ` +
      `${verdict(group.perSecond >= TARGET.fullGroup)}. The floors on this machine: the same ` +
      `writes reach ${rate(find('raw better-sqlite3 NORMAL (floor)').perSecond)}/s with NORMAL, ` +
      `${rate(fullFloor.perSecond)}/s with FULL (two fsyncs per decision) and ` +
      `${rate(groupFloor.perSecond)}/s with FULL and group commit; a transaction of one upsert ` +
      `reaches ${rate(upsert.normal.perSecond)}/s with NORMAL and ${rate(upsert.full.perSecond)}/s ` +
      `with FULL. Scaled to these floors as the issue scaled its own (${rate(ISSUE_FLOOR.normal)}/s ` +
      `and ${rate(ISSUE_FLOOR.full)}/s): SQLite NORMAL ≥ ${rate(scaled.normal)}/s — ` +
      `${verdict(normal.perSecond >= scaled.normal)}; SQLite FULL with group commit ≥ ` +
      `${rate(scaled.fullGroup)}/s — ${verdict(group.perSecond >= scaled.fullGroup)}.`,
  ].join('\n');
}
