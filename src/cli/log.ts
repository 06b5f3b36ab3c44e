import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseRfc3339 } from '../core/action.js';
import { messageOf, WritError } from '../core/errors.js';
import type { LogEntry, LogHead } from '../log/entry.js';
import { locateRule } from '../log/explain.js';
import { replayLog } from '../log/replay.js';
import type { Store } from '../store/types.js';
import { CliExit, EXIT, loadPolicyOrExit, oneFromStdin, out, paint, parseTimeFlag } from './io.js';
import { readLogFile } from './log-file.js';
import { DEFAULT_STORE, readStore } from './store.js';

/** Reads the whole log page by page, so memory holds one page at a time. */
async function* entries(store: Store, afterSeq = 0): AsyncGenerator<LogEntry> {
  for (let after = afterSeq; ; ) {
    const page = await store.readLog(after, 1000);
    if (page.length === 0) return;
    yield* page;
    after = page.at(-1)!.seq;
  }
}

/** One entry as one line for a terminal. */
function formatEntry(e: LogEntry): string {
  const head = `${paint('dim', `#${e.seq}`)} ${e.at}`;
  if (e.decision) {
    const d = e.decision;
    const shadow = d.shadow ? paint('yellow', ` (shadow: would ${d.shadow.outcome})`) : '';
    const candidate =
      d.candidate && d.candidate.outcome !== (d.shadow?.outcome ?? d.outcome)
        ? paint('yellow', ` (candidate: ${d.candidate.outcome})`)
        : '';
    const codes = (d.shadow?.reasons ?? d.reasons).map((r) => r.code).join(',');
    return `${head} ${d.id} ${d.outcome}${shadow}${candidate} ${String(d.action.tool ?? '-')} ${codes}`;
  }
  if (e.settlement) {
    const s = e.settlement;
    const cost = s.cost === undefined ? '' : ` cost ${s.cost}`;
    return `${head} settle ${s.writId} ${s.status}${cost}${s.labelsAdded.length > 0 ? ` +${s.labelsAdded.join(',')}` : ''}`;
  }
  if (e.approval)
    return `${head} approval ${e.approval.id} ${e.approval.status} by ${e.approval.by}`;
  if (e.session) return `${head} session ${e.session.id} opened (version ${e.session.version})`;
  return head;
}

/** True when what was enforced and what shadow mode or the candidate would do disagree. */
function disagrees(e: LogEntry): boolean {
  const d = e.decision;
  if (!d) return false;
  if (d.shadow) return true;
  return d.candidate !== undefined && d.candidate.outcome !== (d.candidate.enforced ?? d.outcome);
}

/**
 * An entry's time, to place it against `--since` and `--until`. An entry whose `at` is no
 * time cannot be placed on either side: it is named, never left out without a word.
 */
function timeOf(e: LogEntry): number {
  const at = typeof e.at === 'string' ? parseRfc3339(e.at) : undefined;
  if (at === undefined)
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `the store's log entry ${e.seq} has no time to filter by: its at is ${JSON.stringify(e.at)}`,
    );
  return at;
}

/**
 * A count an option gives, such as `-n 20`: decimal digits only. `Number()` would also read
 * `''` as 0, `0x10` as 16 and `1e1` as 10.
 */
function parseCount(flag: string, text: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${flag}: ${JSON.stringify(text)} is not a whole number in decimal, such as 20`,
    );
  return n;
}

/** Where `log export` writes: standard output, or a file, each failure named in one line. */
interface Sink {
  write(text: string): Promise<void>;
  close(): Promise<void>;
}

const stdoutSink: Sink = {
  async write(text) {
    if (!process.stdout.write(text)) await once(process.stdout, 'drain');
  },
  async close() {},
};

/** Opens (creating or truncating) the file `log export -o` writes. */
async function fileSink(path: string): Promise<Sink> {
  const cannotWrite = (error: unknown) =>
    new CliExit(
      EXIT.INVALID_INPUT,
      `${path}: cannot write: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`,
    );
  const file = await open(path, 'w').catch((error: unknown) => {
    throw cannotWrite(error);
  });
  return {
    async write(text) {
      await file.write(text).catch((error: unknown) => {
        throw cannotWrite(error);
      });
    },
    close: () => file.close(),
  };
}

/** Lines collected before a write, so a file gets a few large writes, not one per entry. */
const EXPORT_BATCH_CHARS = 64 * 1024;

export function registerLogCommands(program: Command) {
  const log = program.command('log').description('read, export and verify the decision log');

  log
    .command('tail')
    .description('print the last entries of the decision log')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('-n, --lines <n>', 'how many entries', '20')
    .option('--follow', 'keep printing new entries as they are written')
    .option('--json', 'print each entry as a JSON line')
    .option('--disagreements', 'only decisions where shadow mode or a candidate policy disagrees')
    .action(
      (opts: {
        store: string;
        lines: string;
        follow?: boolean;
        json?: boolean;
        disagreements?: boolean;
      }) =>
        readStore(opts.store, async (store) => {
          const n = parseCount('--lines', opts.lines);
          const show = (e: LogEntry) => {
            if (opts.disagreements && !disagrees(e)) return;
            out(opts.json ? JSON.stringify(e) : formatEntry(e));
          };
          const head = (await store.logHead())?.seq ?? 0;
          let after = Math.max(0, head - n);
          if (opts.disagreements) after = 0;
          const tail: LogEntry[] = [];
          for await (const e of entries(store, after)) {
            if (!opts.disagreements || disagrees(e)) tail.push(e);
            // Only the last n are shown: memory holds a few more, not every disagreement.
            if (tail.length > 2 * n + 1_000) tail.splice(0, tail.length - n);
            after = e.seq;
          }
          // Not `slice(-n)`, which for n = 0 is the whole list.
          for (const e of tail.slice(Math.max(0, tail.length - n))) show(e);
          while (opts.follow) {
            await new Promise((resolve) => setTimeout(resolve, 500));
            for await (const e of entries(store, after)) {
              show(e);
              after = e.seq;
            }
          }
        }),
    );

  log
    .command('export')
    .description('write log entries as JSON lines (for writ replay, or your SIEM)')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--since <time>', 'from the first entry at or after this RFC 3339 time')
    .option('--until <time>', 'up to the first entry at or after this RFC 3339 time')
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .action((opts: { store: string; since?: string; until?: string; output?: string }) =>
      readStore(opts.store, async (store) => {
        const since =
          opts.since === undefined
            ? Number.NEGATIVE_INFINITY
            : parseTimeFlag('--since', opts.since);
        const until =
          opts.until === undefined
            ? Number.POSITIVE_INFINITY
            : parseTimeFlag('--until', opts.until);
        const sink = opts.output ? await fileSink(opts.output) : stdoutSink;
        try {
          let batch = '';
          // A run of the log, not a filter: from the first entry at or after --since up to
          // the first at or after --until, every entry between in the order it was
          // written. Processes whose clocks differ a little write times slightly out of
          // order, and an export with holes would neither chain nor replay.
          let started = opts.since === undefined;
          for await (const e of entries(store)) {
            if (!started) {
              if (timeOf(e) < since) continue;
              started = true;
            }
            if (opts.until !== undefined && timeOf(e) >= until) break;
            batch += `${JSON.stringify(e)}\n`;
            if (batch.length >= EXPORT_BATCH_CHARS) {
              await sink.write(batch);
              batch = '';
            }
          }
          if (batch) await sink.write(batch);
        } finally {
          await sink.close();
        }
      }),
    );

  log
    .command('verify')
    .description('check the hash chain: exit 0 when it holds, 1 naming the first bad entry')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option(
      '--anchor <seq:hash>',
      'a head an earlier verify printed, kept outside the store: the chain must still hold that entry (repeatable)',
      (value: string, anchors: LogHead[]) => [...anchors, parseAnchor(value)],
      [] as LogHead[],
    )
    .option('--json', 'print the report as JSON')
    .action((opts: { store: string; anchor: LogHead[]; json?: boolean }) =>
      readStore(opts.store, async (store) => {
        const report = await store.verifyLog(opts.anchor);
        if (opts.json) out(JSON.stringify(report));
        else if (report.ok)
          out(
            // The head as --anchor takes it, to be kept elsewhere and passed back.
            `ok: ${report.entries} entries${report.head ? `, head ${report.head.seq}:${report.head.hash}` : ''}${opts.anchor.length > 0 ? `; anchors held: ${opts.anchor.map((a) => a.seq).join(', ')}` : ''}`,
          );
        if (!report.ok) {
          throw new CliExit(
            EXIT.FAILED,
            opts.json ? '' : `entry ${report.seq}: ${report.problem} — ${report.detail}`,
          );
        }
      }),
    );

  program
    .command('replay')
    .description('re-decide an exported log against a policy and list the decisions that change')
    .requiredOption('--log <file>', 'JSON lines from writ log export, or - for standard input')
    .requiredOption('--policy <file>', 'the policy to evaluate')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { log: string; policy: string; json?: boolean }) => {
      oneFromStdin([
        ['--log', opts.log],
        ['--policy', opts.policy],
      ]);
      const policy = loadPolicyOrExit(opts.policy);
      const log = readLogFile(opts.log);
      let report: Awaited<ReturnType<typeof replayLog>>;
      try {
        report = await replayLog(log.entries, policy);
      } catch (error) {
        // The engine refused what an entry asked of it (a session id it does not accept):
        // replay acts on each entry as it is read, so the line read last is the one.
        if (error instanceof WritError && error.code === 'USAGE')
          throw new CliExit(EXIT.INVALID_INPUT, `${log.name}:${log.line()}: ${error.message}`);
        throw error;
      }
      if (opts.json) out(JSON.stringify(report, null, 2));
      else {
        for (const c of report.changed) {
          const codes = (reasons: { code: string; rule?: string }[]) =>
            reasons.map((r) => (r.rule ? `${r.code} ${r.rule}` : r.code)).join(', ');
          out(
            `#${c.seq} ${c.decisionId} ${c.tool}: ${paint('red', c.before.outcome)} → ${paint('green', c.after.outcome)}`,
          );
          out(paint('dim', `    before: ${codes(c.before.reasons)}`));
          out(paint('dim', `    after:  ${codes(c.after.reasons)}`));
        }
        for (const n of report.notReplayable)
          out(
            `#${n.seq} ${n.decisionId}: not replayable — the policy reads redacted ${n.paths.join(', ')}`,
          );
        out(
          `${report.decisions} decisions: ${report.unchanged} unchanged, ${report.changed.length} changed, ${report.notReplayable.length} not replayable, ${report.invalid} invalid requests`,
        );
        if (report.startsAt !== undefined)
          out(
            paint(
              'yellow',
              `the log starts at entry ${report.startsAt}: the sessions, budgets, claims and rate limits earlier entries built are missing, so a change can come from that rather than from the policy (replay a whole export for an exact comparison)`,
            ),
          );
      }
      if (report.changed.length > 0) throw new CliExit(EXIT.FAILED);
    });

  program
    .command('explain')
    .description('show a recorded decision with the exact policy rules that made it')
    .argument('<decision-id>', 'the decision id')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--json', 'print JSON')
    .action((id: string, opts: { store: string; json?: boolean }) =>
      readStore(opts.store, async (store) => {
        const entry = await store.findDecision(id);
        if (!entry?.decision) throw new CliExit(EXIT.FAILED, `no decision ${id} in ${opts.store}`);
        const d = entry.decision;
        const sources = (await store.getPolicy(d.policyHash)) ?? [];
        const rules = [...(d.shadow?.reasons ?? []), ...d.reasons]
          .flatMap((r) => (r.rule ? [r.rule] : []))
          .map((rule) => ({ rule, source: locateRule(sources, rule) }));
        if (opts.json) return out(JSON.stringify({ entry, rules }, null, 2));
        out(
          `${paint('bold', d.id)} ${d.outcome}${d.shadow ? ` (shadow: would ${d.shadow.outcome})` : ''} at ${entry.at} — log entry #${entry.seq}`,
        );
        out(
          `policy ${d.policyHash}${sources.length === 0 ? ' (its text is not in this store)' : ` (${sources.map((s) => s.path).join(', ')})`}`,
        );
        out(`action ${JSON.stringify(d.action)}`);
        if (d.redacted.length > 0) out(paint('dim', `redacted ${d.redacted.join(', ')}`));
        for (const r of d.shadow?.reasons ?? d.reasons) {
          out(
            `  ${r.code}${r.rule ? ` ${r.rule}` : ''}${r.key ? ` (${r.key})` : ''} — ${r.message}`,
          );
          const found = rules.find((x) => x.rule === r.rule)?.source;
          if (found) {
            out(paint('dim', `    ${found.file}:${found.line}`));
            for (const line of found.text.split('\n')) out(paint('cyan', `      ${line}`));
          }
        }
      }),
    );
}

/** `--anchor 23:708d…`: an entry's seq and its hash, as `writ log verify` prints its head. */
function parseAnchor(value: string): LogHead {
  const match = /^#?([1-9][0-9]{0,15}):([0-9a-f]{64})$/.exec(value);
  if (!match)
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `--anchor must be <seq>:<hash>, an entry's number and its 64 hex digits, not ${JSON.stringify(value)}`,
    );
  return { seq: Number(match[1]), hash: match[2]! };
}
