import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { messageOf, WritError } from '../core/errors.js';
import { issuesText, type Json, toJson } from '../core/json.js';
import { isAmount, MAX_AMOUNT } from '../core/plan.js';
import { systemClock } from '../runtime/system.js';
import { cannotWrite, namesDirectory, sqliteStore } from '../store/sqlite/index.js';
import type { SettleResult, Store, SweepReport } from '../store/types.js';
import { CliExit, EXIT, out, paint } from './io.js';

/** The SQLite file the CLI and the server use unless told otherwise. */
export const DEFAULT_STORE = '.writ/writ.db';

/**
 * The SQLite store at `path`. One that cannot be opened throws a `WritError`
 * (`STORE_FAILURE`, or `USAGE` for a path that is no file path), which `main` reports in
 * one line with exit 2, as it does when the store fails later in any command.
 */
export function openStore(path: string): Store {
  refuseDirectory(path);
  return sqliteStore({ path });
}

/** Refuses a `--store` that names a directory (`newdir/`), saying what to give instead. */
function refuseDirectory(path: string): void {
  if (!namesDirectory(path)) return;
  const bare = path.replace(/[\\/]+$/, '');
  // `st/w.db/` where st/w.db is a file: that file is what was meant.
  const file =
    bare !== path && bare !== '' && existsSync(bare) && statSync(bare).isFile()
      ? bare
      : /[\\/]$/.test(path)
        ? `${path}writ.db`
        : join(path, 'writ.db');
  throw new CliExit(
    EXIT.INVALID_INPUT,
    `--store ${path}: names a directory; give the store's file, such as ${file}`,
  );
}

/**
 * The store at `path`, which must already be one: commands that read or decide on a store
 * never make one, not even out of an empty file (SQLite would take it for a new database).
 * To `read`, a store this user cannot write (a read-only file, directory or mount) is opened
 * read-only; one that can be written is opened as always, which migrates an older store and
 * keeps the decision index that `explain` looks in.
 */
function openExisting(path: string, access: 'read' | 'write'): Store {
  refuseDirectory(path);
  if (!existsSync(path) || (statSync(path).isFile() && statSync(path).size === 0)) {
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${path}: no writ store here (run writ demo, or pass --store <file>)`,
    );
  }
  try {
    return openStore(path);
  } catch (error) {
    if (!cannotWrite(error)) throw error;
    if (access === 'read') return sqliteStore({ path, readonly: true });
    if (!readable(path)) throw error;
    throw new WritError(
      'STORE_FAILURE',
      `${messageOf(error)} — it cannot be written here (commands that only read it, such as writ log verify, still work)`,
      { path },
      { cause: error },
    );
  }
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the existing store at `path` for one command, and closes it. A command that only
 * reads passes `read`: it then works on a store it can only read.
 */
export async function withStore(
  path: string,
  fn: (store: Store) => Promise<void>,
  access: 'read' | 'write' = 'write',
): Promise<void> {
  const store = openExisting(path, access);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** {@link withStore} for a command that only reads the store. */
export const readStore = (path: string, fn: (store: Store) => Promise<void>) =>
  withStore(path, fn, 'read');

const json = (value: unknown) => out(JSON.stringify(value, null, 2));
const time = (ms: number | null) =>
  ms === null ? 'never' : new Date(ms).toISOString().replace('.000Z', 'Z');

/** Prints rows as aligned columns under a dimmed header. */
function table(header: string[], rows: string[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  out(paint('dim', line(header)));
  for (const row of rows) out(line(row));
}

/** How `writ sweep` names the kinds of records it removes. */
const SWEPT_NAMES: Record<string, string> = {
  idem: 'idempotency claims',
  nonce: 'nonces',
  rate: 'rate buckets',
  writ: 'writs',
};

const SETTLE_STATUSES = ['succeeded', 'failed', 'cancelled'] as const;

function parseCost(text: string): number {
  // Decimal only: Number() would also read 0x10 as 16 and ' 5 ' as 5.
  const cost = /^\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!isAmount(cost))
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `--cost must be a number from 0 to ${MAX_AMOUNT}, not ${JSON.stringify(text)}`,
    );
  return cost;
}

/**
 * Who decides an approval: `--approver`, else `$WRIT_APPROVER` (empty counts as unset), else
 * the name of the user running writ. A user with no name on this system (a container's uid
 * with no passwd entry) must be told what to pass, not shown Node's error.
 */
function approverOf(given: string | undefined): string {
  if (given !== undefined) return given;
  if (process.env.WRIT_APPROVER) return process.env.WRIT_APPROVER;
  let name: string | undefined;
  try {
    name = userInfo().username;
  } catch {
    name = undefined;
  }
  if (!name)
    throw new CliExit(
      EXIT.INVALID_INPUT,
      'no approver: your user has no name on this system; pass --approver <name> or set WRIT_APPROVER',
    );
  return name;
}

/** `--result` as the JSON a replay will return, held to the limits the library holds it to. */
function parseResult(text: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new CliExit(EXIT.INVALID_INPUT, `--result is not JSON: ${messageOf(error)}`);
  }
  const json = toJson(value, 'result');
  if (!json.ok) throw new CliExit(EXIT.INVALID_INPUT, `--result: ${issuesText(json.issues)}`);
  return json.value;
}

export function registerStoreCommands(program: Command) {
  program
    .command('budgets')
    .description('list budget keys with what is spent, held and left')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--json', 'print JSON')
    .action((opts: { store: string; json?: boolean }) =>
      readStore(opts.store, async (store) => {
        const budgets = await store.listBudgets(systemClock.now());
        if (opts.json) return json(budgets);
        if (budgets.length === 0) return out('no budgets yet');
        table(
          ['KEY', 'LIMIT', 'SPENT', 'HELD', 'REMAINING', 'RESETS'],
          budgets.map((b) => [
            b.key,
            String(b.limit),
            String(b.spent),
            String(b.held),
            String(b.remaining),
            time(b.windowEnd),
          ]),
        );
      }),
    );

  program
    .command('sessions')
    .description('list sessions with their trusted attributes and labels')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--json', 'print JSON')
    .action((opts: { store: string; json?: boolean }) =>
      readStore(opts.store, async (store) => {
        const sessions = await store.listSessions(systemClock.now());
        if (opts.json) return json(sessions);
        if (sessions.length === 0) return out('no sessions yet');
        table(
          ['ID', 'VERSION', 'LABELS', 'ATTRS'],
          sessions.map((s) => [
            s.id,
            String(s.version),
            s.labels.join(',') || '-',
            JSON.stringify(s.attrs),
          ]),
        );
      }),
    );

  const approvals = program
    .command('approvals')
    .description('list, approve and deny approval requests');
  approvals
    .command('list')
    .description('list approval requests')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--status <status>', 'only pending, approved, denied, consumed or expired')
    .option('--json', 'print JSON')
    .action((opts: { store: string; status?: string; json?: boolean }) =>
      readStore(opts.store, async (store) => {
        const statuses = ['pending', 'approved', 'denied', 'consumed', 'expired'] as const;
        const status = opts.status as (typeof statuses)[number] | undefined;
        if (status !== undefined && !statuses.includes(status)) {
          throw new CliExit(EXIT.INVALID_INPUT, `--status must be one of ${statuses.join(', ')}`);
        }
        const list = await store.listApprovals(systemClock.now(), status);
        if (opts.json) return json(list);
        if (list.length === 0) return out('no approval requests');
        table(
          ['ID', 'STATUS', 'REQUESTED BY', 'EXPIRES', 'CALL'],
          list.map((a) => [
            a.id,
            a.status,
            a.requestedBy,
            time(a.expiresAt),
            `${a.action.tool} ${JSON.stringify(a.action.args)}`,
          ]),
        );
      }),
    );
  for (const verb of ['approve', 'deny'] as const) {
    approvals
      .command(verb)
      .description(`${verb} a pending approval request`)
      .argument('<id>', 'approval id')
      .option('--store <file>', 'SQLite store', DEFAULT_STORE)
      .option(
        '--approver <name>',
        'who decides (default: $WRIT_APPROVER unless empty, then your user name)',
      )
      .option('--note <text>', 'a note kept with the decision')
      .option('--json', 'print JSON')
      .action(
        (id: string, opts: { store: string; approver?: string; note?: string; json?: boolean }) => {
          const approver = approverOf(opts.approver);
          return withStore(opts.store, async (store) => {
            let record: Awaited<ReturnType<Store['decideApproval']>>;
            try {
              record = await store.decideApproval(
                id,
                {
                  approve: verb === 'approve',
                  approver,
                  ...(opts.note !== undefined && { note: opts.note }),
                },
                systemClock.now(),
              );
            } catch (error) {
              // Unknown, no longer pending, or asked by this approver: the answer is no (1).
              // Misuse and a failing store go on to main, which makes them exit 2.
              if (error instanceof WritError && error.code === 'APPROVAL_INVALID')
                throw new CliExit(EXIT.FAILED, error.message);
              throw error;
            }
            if (opts.json) return json(record);
            out(`${record.id} ${record.status} by ${approver}`);
          });
        },
      );
  }

  program
    .command('writs')
    .description(
      'list unsettled writs: after a crash, the calls that may have run, and the idempotency keys they hold',
    )
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--json', 'print JSON')
    .action((opts: { store: string; json?: boolean }) =>
      readStore(opts.store, async (store) => {
        const open = await store.listOpenWrits(systemClock.now());
        if (opts.json) return json(open);
        if (open.length === 0) return out('no open writs');
        table(
          ['ID', 'TOOL', 'SESSION', 'ISSUED', 'EXPIRES', 'IDEMPOTENCY'],
          open.map(({ writ, expired, claims }) => [
            writ.id,
            writ.tool,
            writ.sessionId,
            time(writ.issuedAt),
            `${time(writ.expiresAt)}${expired ? ' (expired)' : ''}`,
            claims.map((c) => `${c.key} ${c.status}`).join(', ') || '-',
          ]),
        );
      }),
    );

  program
    .command('settle')
    .description(
      'settle a writ by id, as its caller would have: resolves the idempotency keys a crashed call left in doubt',
    )
    .argument('<writ-id>', 'the writ, as `writ writs` lists it')
    .requiredOption('--status <status>', `how the call ended: ${SETTLE_STATUSES.join(', ')}`)
    .option('--cost <amount>', 'what it really cost (default: the amount held if it succeeded)')
    .option('--result <json>', 'the result retries replay (with --status succeeded)')
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--json', 'print JSON')
    .action(
      (
        id: string,
        opts: { status: string; cost?: string; result?: string; store: string; json?: boolean },
      ) => {
        const status = opts.status as (typeof SETTLE_STATUSES)[number];
        if (!SETTLE_STATUSES.includes(status))
          throw new CliExit(
            EXIT.INVALID_INPUT,
            `--status must be one of ${SETTLE_STATUSES.join(', ')}, not ${JSON.stringify(opts.status)}`,
          );
        const cost = opts.cost === undefined ? undefined : parseCost(opts.cost);
        // Only a success stores a result for retries to replay: one given with another
        // status would be kept nowhere.
        if (opts.result !== undefined && status !== 'succeeded')
          throw new CliExit(EXIT.INVALID_INPUT, '--result goes with --status succeeded only');
        const result = opts.result === undefined ? undefined : parseResult(opts.result);
        return withStore(opts.store, async (store) => {
          let settled: SettleResult;
          try {
            settled = await store.settle({
              now: systemClock.now(),
              writId: id,
              status,
              ...(cost !== undefined && { cost }),
              ...(result !== undefined && { result }),
            });
          } catch (error) {
            // Unknown or already settled: the answer is no (1), as for an approval.
            if (error instanceof WritError && error.code === 'WRIT_INVALID')
              throw new CliExit(EXIT.FAILED, error.message);
            throw error;
          }
          if (opts.json) return json(settled);
          const overage = Object.entries(settled.overage).map(([key, n]) => `${key} +${n}`);
          out(
            [
              `${id} settled ${status}`,
              ...(overage.length > 0 ? [`overage ${overage.join(', ')}`] : []),
              ...(settled.labelsAdded.length > 0
                ? [`labels added ${settled.labelsAdded.join(', ')}`]
                : []),
              // Said, not left for the reader of the budget to find: the cost given here
              // changed nothing on these budgets.
              ...(settled.uncounted
                ? [
                    `not counted on ${settled.uncounted.join(', ')} (the hold was captured at its expiry, and that capture is final)`,
                  ]
                : []),
            ].join('; '),
          );
        });
      },
    );

  program
    .command('sweep')
    .description(
      'remove records whose lifetime is over: idempotency claims past their TTL, nonces past their window, refilled rate buckets, settled writs past their expiry, unsettled ones a late settle can no longer change',
    )
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .option('--json', 'print JSON')
    .action((opts: { store: string; json?: boolean }) =>
      withStore(opts.store, async (store) => {
        const now = systemClock.now();
        const total: SweepReport = { examined: 0, removed: {}, done: true };
        // A store opened here starts its sweep at the beginning: one pass to the end.
        for (let done = false; !done; ) {
          const report = await store.sweep(now, 1_000);
          total.examined += report.examined;
          for (const [kind, n] of Object.entries(report.removed))
            total.removed[kind] = (total.removed[kind] ?? 0) + n;
          done = report.done;
        }
        if (opts.json) return json(total);
        const removed = Object.entries(total.removed);
        const count = removed.reduce((sum, [, n]) => sum + n, 0);
        const detail = removed.map(([kind, n]) => `${SWEPT_NAMES[kind] ?? kind} ${n}`).join(', ');
        out(`removed ${count} of ${total.examined} records${detail && ` (${detail})`}`);
      }),
    );
}
