import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/core/clock.js';
import { createWrit } from '../src/engine/writ.js';
import { chainEntryText, type LogEntry } from '../src/log/entry.js';
import { sqliteStore } from '../src/store/sqlite/index.js';
import type { ApprovalRecord, BudgetState, OpenWrit, SessionRecord } from '../src/store/types.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'writ.js');
const DEMO_POLICY = join(ROOT, 'examples', 'demo', 'policy.yaml');

function writ(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
}

function logEntries(store: string): LogEntry[] {
  const run = writ('log', 'export', '--store', store);
  expect(run.status, run.stderr).toBe(0);
  return run.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as LogEntry);
}

function json<T>(...args: string[]): T {
  const run = writ(...args, '--json');
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

describe('the CLI over the SQLite store the demo leaves', () => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-cli-'));
  const store = join(dir, 'writ.db');

  beforeAll(() => {
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'run npm run build first').toBe(true);
    const demo = writ('demo', '--store', store);
    expect(demo.status, demo.stderr).toBe(0);
    for (const outcome of ['allow', 'deny', 'approval_required', 'replay'])
      expect(demo.stdout).toContain(outcome);
    for (const code of [
      'BUDGET_EXHAUSTED',
      'RATE_LIMITED',
      'CONCURRENCY_LIMIT',
      'IDEMPOTENT_REPLAY',
      'APPROVAL_GRANTED',
    ]) {
      expect(demo.stdout).toContain(code);
    }
  });

  it('writ budgets shows what the demo spent', () => {
    const budgets = json<BudgetState[]>('budgets', '--store', store);
    expect(budgets).toHaveLength(1);
    expect(budgets[0]).toMatchObject({ limit: 2000, spent: 1100, held: 0, remaining: 900 });
    expect(writ('budgets', '--store', store).stdout).toMatch(
      /daily-spend:rent-\S+ +2000 +1100 +0 +900/,
    );
  });

  it('writ sessions shows trusted attributes and the labels calls added', () => {
    const sessions = json<SessionRecord[]>('sessions', '--store', store);
    expect(sessions.map((s) => s.labels)).toEqual([['untrusted-content'], ['untrusted-content']]);
  });

  it('writ approvals list / approve / deny, and the approver cannot be the requester', () => {
    const pending = json<ApprovalRecord[]>(
      'approvals',
      'list',
      '--status',
      'pending',
      '--store',
      store,
    );
    expect(pending.length).toBeGreaterThanOrEqual(2);
    const [first, second] = pending as [ApprovalRecord, ApprovalRecord];
    const self = writ(
      'approvals',
      'approve',
      first.id,
      '--approver',
      first.requestedBy,
      '--store',
      store,
    );
    expect(self.status).toBe(1);
    expect(self.stderr).toContain('cannot decide it');
    const nobody = writ('approvals', 'approve', first.id, '--approver', '', '--store', store);
    expect(nobody.status).toBe(2);
    expect(nobody.stderr).toContain(
      'the approver must be a string of at most 256 characters that shows something',
    );
    expect(
      json<ApprovalRecord>(
        'approvals',
        'approve',
        first.id,
        '--approver',
        'alice',
        '--store',
        store,
      ).status,
    ).toBe('approved');
    expect(
      json<ApprovalRecord>(
        'approvals',
        'deny',
        second.id,
        '--approver',
        'alice',
        '--note',
        'no',
        '--store',
        store,
      ).status,
    ).toBe('denied');
    expect(
      writ('approvals', 'approve', second.id, '--approver', 'alice', '--store', store).status,
    ).toBe(1);
    expect(writ('approvals', 'list', '--status', 'maybe', '--store', store).status).toBe(2);
  });

  it('writ sweep removes expired records and leaves budgets and the log as they were', () => {
    const budgets = json<BudgetState[]>('budgets', '--store', store);
    const report = json<{ examined: number; removed: Record<string, number>; done: boolean }>(
      'sweep',
      '--store',
      store,
    );
    expect(report.examined).toBeGreaterThan(0);
    expect(report.done).toBe(true);
    for (const kind of Object.keys(report.removed))
      expect(['idem', 'nonce', 'rate', 'writ']).toContain(kind);
    expect(json<BudgetState[]>('budgets', '--store', store)).toEqual(budgets);
    expect(writ('log', 'verify', '--store', store).stdout).toMatch(/^ok: \d+ entries/);
    expect(writ('sweep', '--store', store).stdout).toMatch(/^removed \d+ of \d+ records/);
  });

  it('writ log verify, export and replay agree with the demo policy', () => {
    expect(writ('log', 'verify', '--store', store).stdout).toMatch(/^ok: \d+ entries/);
    const file = join(dir, 'export.jsonl');
    expect(writ('log', 'export', '--store', store, '-o', file).status).toBe(0);
    const entries = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LogEntry);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    expect(entries.filter((e) => e.approval).map((e) => e.approval!.status)).toEqual([
      'approved',
      'approved',
      'denied',
    ]);

    const same = writ('replay', '--log', file, '--policy', DEMO_POLICY);
    expect(same.status, same.stdout).toBe(0);
    expect(same.stdout).toMatch(/\d+ decisions: \d+ unchanged, 0 changed/);

    const stricter = join(dir, 'stricter.yaml');
    writeFileSync(stricter, readFileSync(DEMO_POLICY, 'utf8').replace('limit: 2000', 'limit: 500'));
    const changed = writ('replay', '--log', file, '--policy', stricter);
    expect(changed.status).toBe(1);
    expect(changed.stdout).toMatch(/send_money: .*allow.* → .*deny/);
    expect(changed.stdout).toContain('BUDGET_EXHAUSTED');

    const none = writ('log', 'export', '--store', store, '--since', '2999-01-01T00:00:00Z');
    expect(none.stdout).toBe('');
    expect(writ('log', 'export', '--store', store, '--since', 'yesterday').status).toBe(2);
  });

  it('writ replay --log - reads the log piped to it, naming its lines <stdin>', () => {
    const replay = (input: string) =>
      spawnSync(process.execPath, [BIN, 'replay', '--log', '-', '--policy', DEMO_POLICY], {
        encoding: 'utf8',
        cwd: ROOT,
        input,
      });
    const exported = writ('log', 'export', '--store', store).stdout;
    const piped = replay(exported);
    expect(piped.status, piped.stderr).toBe(0);
    expect(piped.stdout).toMatch(/\d+ decisions: \d+ unchanged, 0 changed/);
    const bad = replay(`${exported.split('\n')[0]}\n{"a":1}\n`);
    expect([bad.status, bad.stderr]).toEqual([
      2,
      '<stdin>:2: not a log entry: seq: Invalid input: expected number, received undefined\n',
    ]);
  });

  it('writ explain shows the decision and the rule text behind it', () => {
    const tail = writ('log', 'tail', '-n', '100', '--json', '--store', store)
      .stdout.trim()
      .split('\n');
    const denial = tail
      .map((l) => JSON.parse(l) as LogEntry)
      .find((e) => e.decision?.action.tool === 'update_password')!;
    const run = writ('explain', denial.decision!.id, '--store', store);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('DENIED_BY_RULE tools.update_password[0]');
    expect(run.stdout).toContain('forbid: true');
    expect(writ('explain', 'dec_nope', '--store', store).status).toBe(1);
  });

  it('writ explain shows exactly the lines of a rule, not the first line of what follows', () => {
    // In the demo policy the send_money allow rule is followed at once by `update_password:`.
    const allowed = logEntries(store).find(
      (e) => e.decision?.outcome === 'allow' && e.decision.action.tool === 'send_money',
    )!;
    const run = writ('explain', allowed.decision!.id, '--store', store);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /ALLOWED_BY_RULE tools\.send_money\[2\] — an allow rule matched\n +\S+policy\.yaml:\d+\n +- allow: 'args\.recipient in session\.attrs\.payees'\n$/,
    );
  });

  it('stops quietly, exit 141, when the reader of its output has gone (| head)', async () => {
    const decision = logEntries(store).find((e) => e.decision)!.decision!;
    for (const args of [
      ['log', 'export'],
      ['log', 'tail', '-n', '60'],
      ['log', 'tail', '-n', '5', '--follow'],
      ['approvals', 'list'],
      ['explain', decision.id],
    ]) {
      const child = spawn(process.execPath, [BIN, ...args, '--store', store], { cwd: ROOT });
      // Closed before the command writes its first line, as `head` closes after its last.
      child.stdout.destroy();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const code = await new Promise((resolve) => child.on('close', resolve));
      expect({ args, code, stderr }).toEqual({ args, code: 141, stderr: '' });
    }
  });

  it('writ log export -o names a path it cannot write, in one line', () => {
    for (const [path, code] of [
      [join(dir, 'no-such-dir', 'export.jsonl'), 'ENOENT'],
      [dir, 'EISDIR'],
    ]) {
      const run = writ('log', 'export', '--store', store, '-o', path!);
      expect(run.status).toBe(2);
      expect(run.stderr).toBe(`${path}: cannot write: ${code}\n`);
    }
  });

  it('writ log export takes --since and --until as RFC 3339 with an offset only', () => {
    const all = writ('log', 'export', '--store', store).stdout;
    const inOtherZone = writ(
      'log',
      'export',
      '--store',
      store,
      '--since',
      '2000-01-01T01:00:00+01:00',
      '--until',
      '2999-01-01T00:00:00.000-05:00',
    );
    expect(inOtherZone.stdout).toBe(all);
    for (const [flag, value] of [
      ['--since', '2026-11-24'],
      ['--since', '1'],
      ['--until', '2026-11-24T00:00:00'],
      ['--until', '2026-02-30T00:00:00Z'],
    ]) {
      const run = writ('log', 'export', '--store', store, flag!, value!);
      expect(run.status).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(
        `${flag}: ${value} is not an RFC 3339 time with an offset, such as 2026-11-23T10:00:00Z\n`,
      );
    }
  });

  it('writ log export leaves out no entry whose time is not a time, and filters none by it', () => {
    const odd = join(dir, 'odd-time.db');
    expect(writ('demo', '--store', odd).status).toBe(0);
    const db = new Database(odd);
    db.prepare(`UPDATE log SET entry = replace(entry, '"at":"2', '"at":"x2') WHERE seq = 5`).run();
    db.close();
    const all = writ('log', 'export', '--store', odd);
    expect(all.status, all.stderr).toBe(0);
    const seqs = all.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as LogEntry).seq);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs).toContain(5);
    // Past every entry, each is placed against the flag, and the one without a time is named.
    for (const flag of ['--since', '--until']) {
      const run = writ('log', 'export', '--store', odd, flag, '2999-01-01T00:00:00Z');
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toMatch(
        /^the store's log entry 5 has no time to filter by: its at is "x2\d{3}-/,
      );
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('writ log export --since and --until give a run of the log, with no holes where clocks differ', async () => {
    const file = join(dir, 'skewed.db');
    const clock = manualClock('2026-11-23T10:00:00.000Z');
    const engine = createWrit({
      policy: 'version: 1\ntools:\n  t:\n    - allow: true\n',
      store: sqliteStore({ path: file }),
      clock,
    });
    const call = () =>
      engine.authorize({ tool: 't', principal: { id: 'a' }, session: { id: 's' } });
    // Times as two processes a few milliseconds apart write them.
    for (const at of [
      '09:59:59.995',
      '10:00:00.000',
      '09:59:59.998',
      '10:00:00.004',
      '10:00:00.002',
      '10:00:00.010',
    ]) {
      clock.set(`2026-11-23T${at}Z`);
      await call();
    }
    await engine.close();
    const seqs = (...flags: string[]) =>
      writ('log', 'export', '--store', file, ...flags)
        .stdout.trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as LogEntry).seq);
    expect(seqs('--since', '2026-11-23T10:00:00Z')).toEqual([2, 3, 4, 5, 6]);
    expect(seqs('--until', '2026-11-23T10:00:00.004Z')).toEqual([1, 2, 3]);
    expect(seqs('--since', '2026-11-23T10:00:00Z', '--until', '2026-11-23T10:00:00.010Z')).toEqual([
      2, 3, 4, 5,
    ]);
  });

  it('writ replay names a line of valid JSON that is not a log entry', () => {
    const lines = writ('log', 'export', '--store', store).stdout.trim().split('\n');
    const session = lines.findIndex((l) => (JSON.parse(l) as LogEntry).kind === 'session');
    const cases: [string, string[], string][] = [
      ['not-an-entry', ['{"a":1}'], ':1: not a log entry: seq: '],
      [
        'empty-decision',
        ['{"seq":1,"at":"2026-11-23T10:00:00Z","kind":"decision","decision":{}}'],
        ':1: not a log entry: decision.id: ',
      ],
      [
        'kind-and-part-differ',
        [lines[0]!, lines[1]!, lines[session]!.replace('"kind":"session"', '"kind":"decision"')],
        ':3: not a log entry: decision: a decision entry carries exactly its decision, found session',
      ],
      [
        'session-id-refused',
        [lines[session]!.replace(/"session":\{"id":"[^"]+"/, '"session":{"id":""')],
        ':1: sessions.open: the session id must be ',
      ],
    ];
    for (const [name, content, message] of cases) {
      const file = join(dir, `${name}.jsonl`);
      writeFileSync(file, `${content.join('\n')}\n`);
      const run = writ('replay', '--log', file, '--policy', DEMO_POLICY);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr.startsWith(`${file}${message}`), run.stderr).toBe(true);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('reports a corrupt record in one line, exit 2, from any command', () => {
    const corrupt = join(dir, 'corrupt.db');
    expect(writ('demo', '--store', corrupt).status).toBe(0);
    const db = new Database(corrupt);
    // Two decisions after entry 3: the first cut short, the second looked up — which,
    // not yet indexed, indexes its way past the damaged one.
    const decisions = db
      .prepare<[], { seq: number; entry: string }>(
        `SELECT seq, entry FROM log WHERE seq > 3 AND entry LIKE '%"kind":"decision"%' LIMIT 2`,
      )
      .all();
    const [cut, later] = [decisions[0]!, decisions[1]!];
    db.prepare('UPDATE log SET entry = substr(entry, 1, 100) WHERE seq = ?').run(cut.seq);
    db.prepare("UPDATE log SET entry = '{not json' WHERE seq = 3").run();
    db.prepare("UPDATE shared SET value = '{bad' WHERE kind = 'budget'").run();
    // Not yet indexed: a look-up indexes its way past the damaged entry.
    db.prepare('DELETE FROM decision').run();
    db.close();
    for (const [args, what] of [
      [['log', 'export'], 'log entry 3'],
      [['log', 'tail', '-n', '100'], 'log entry 3'],
      [['budgets'], 'budget record'],
      [['explain', JSON.parse(later.entry).decision.id], `log entry ${cut.seq}`],
    ] as const) {
      const run = writ(...args, '--store', corrupt);
      expect(run.status, run.stderr).toBe(2);
      expect(run.stderr).toContain(`the store's ${what}`);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    // A damaged chain head: verify cannot tell what the log should end with.
    const headless = new Database(corrupt);
    headless.prepare("UPDATE shared SET value = '{bad' WHERE kind = 'log-head'").run();
    headless.close();
    const verify = writ('log', 'verify', '--store', corrupt);
    expect(verify.status, verify.stderr).toBe(2);
    expect(verify.stderr).toContain("the store's log head is not JSON");
    expect(verify.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('reports a record of the wrong shape in one line, exit 2, naming it', () => {
    const misshapen = join(dir, 'misshapen.db');
    expect(writ('demo', '--store', misshapen).status).toBe(0);
    const db = new Database(misshapen);
    const key = db
      .prepare<[], string>("SELECT key FROM shared WHERE kind = 'budget'")
      .pluck()
      .get()!;
    db.prepare("UPDATE shared SET value = '[1]' WHERE kind = 'budget'").run();
    db.close();
    const run = writ('budgets', '--store', misshapen);
    expect([run.status, run.stderr]).toEqual([
      2,
      `the store's budget record ${key} is damaged: it is [1], not an object\n`,
    ]);
  });

  it('reports a file damaged on disk in one line, exit 2, from any command', () => {
    const garbled = join(dir, 'garbled.db');
    expect(writ('demo', '--store', garbled).status).toBe(0);
    const decision = logEntries(garbled).find((e) => e.decision)!.decision!.id;
    const open = json<OpenWrit[]>('writs', '--store', garbled)[0]!.writ.id;
    const pending = json<ApprovalRecord[]>('approvals', 'list', '--store', garbled)[0]!.id;
    // Every page but the first, which holds the schema: the file still opens.
    const bytes = readFileSync(garbled);
    for (let i = 4096; i < bytes.length; i++) bytes[i] = bytes[i]! ^ 0x5a;
    writeFileSync(garbled, bytes);
    for (const args of [
      ['log', 'verify'],
      ['log', 'export'],
      ['log', 'tail'],
      ['explain', decision],
      ['settle', open, '--status', 'failed'],
      ['approvals', 'approve', pending, '--approver', 'bob'],
      ['approvals', 'list'],
      ['budgets'],
      ['sessions'],
      ['writs'],
      ['sweep'],
      ['demo'],
    ]) {
      const run = writ(...args, '--store', garbled);
      expect([args, run.status, run.stderr]).toEqual([
        args,
        2,
        `the SQLite store ${garbled} failed: database disk image is malformed\n`,
      ]);
    }
  });

  it.skipIf(process.getuid?.() !== 0)(
    'asks for --approver or WRIT_APPROVER when the user has no name (runs as root: it switches to a uid with no passwd entry)',
    () => {
      for (const env of [{}, { WRIT_APPROVER: '' }]) {
        const { WRIT_APPROVER: _, ...inherited } = process.env;
        const run = spawnSync(
          process.execPath,
          [BIN, 'approvals', 'approve', 'apr_any', '--store', store],
          { encoding: 'utf8', cwd: ROOT, uid: 54321, gid: 54321, env: { ...inherited, ...env } },
        );
        expect([run.status, run.stderr]).toEqual([
          2,
          'no approver: your user has no name on this system; pass --approver <name> or set WRIT_APPROVER\n',
        ]);
      }
    },
  );

  it('names a log row that is no entry, or another entry: verify exit 1, readers exit 2', () => {
    for (const [seq, edit, detail, failure] of [
      [
        9,
        "UPDATE log SET entry = 'null' WHERE seq = 9",
        'edited — the entry is not a JSON object',
        'is not a log entry: null',
      ],
      [
        4,
        'UPDATE log SET entry = (SELECT entry FROM log WHERE seq = 5) WHERE seq = 4',
        'reordered — the entry stored at 4 is entry 5',
        'holds entry 5',
      ],
    ] as const) {
      const damaged = join(dir, `no-entry-${seq}.db`);
      expect(writ('demo', '--store', damaged).status).toBe(0);
      const db = new Database(damaged);
      db.prepare(edit).run();
      db.close();
      const verify = writ('log', 'verify', '--store', damaged);
      expect(verify.status, verify.stderr).toBe(1);
      expect(verify.stderr).toBe(`entry ${seq}: ${detail}\n`);
      for (const args of [
        ['log', 'export'],
        ['log', 'tail', '-n', '100'],
      ]) {
        const run = writ(...args, '--store', damaged);
        expect(run.status, run.stderr).toBe(2);
        expect(run.stderr).toBe(`the store's log entry ${seq} ${failure}\n`);
      }
    }
    const early = join(dir, 'seq-zero.db');
    expect(writ('demo', '--store', early).status).toBe(0);
    const db = new Database(early);
    db.prepare(`INSERT INTO log (seq, entry) VALUES (0, '{"seq":0}')`).run();
    db.close();
    expect(writ('log', 'verify', '--store', early).stderr).toBe(
      'entry 0: edited — a row is stored at 0, before the first entry (1)\n',
    );
  });

  it('writ explain refuses a decision index edited to point at another decision', () => {
    const edited = join(dir, 'index-edited.db');
    expect(writ('demo', '--store', edited).status).toBe(0);
    const [first, second] = logEntries(edited).filter((e) => e.decision);
    // Indexed first, as any look-up does; then pointed at the second decision.
    expect(writ('explain', first!.decision!.id, '--store', edited).status).toBe(0);
    const db = new Database(edited);
    db.prepare('UPDATE decision SET seq = ? WHERE id = ?').run(second!.seq, first!.decision!.id);
    db.close();
    const run = writ('explain', first!.decision!.id, '--store', edited);
    expect(run.status, run.stderr).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe(
      `the store's decision index is wrong: it finds ${first!.decision!.id} at log entry ${second!.seq}, which is decision ${second!.decision!.id}\n`,
    );
  });

  it('refuses to write, in one line, exit 2, to a store whose log head was deleted', () => {
    const headless = join(dir, 'headless.db');
    expect(writ('demo', '--store', headless).status).toBe(0);
    const db = new Database(headless);
    db.prepare("DELETE FROM shared WHERE kind = 'log-head'").run();
    db.close();
    const verify = writ('log', 'verify', '--store', headless);
    expect(verify.status).toBe(1);
    expect(verify.stderr).toMatch(
      /^entry \d+: truncated — the log ends at \d+ and has no head record/,
    );
    const demo = writ('demo', '--store', headless);
    expect(demo.status, demo.stderr).toBe(2);
    expect(demo.stderr).toMatch(/^the store's log head is missing: log entry 1 is already there/);
    expect(demo.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('writ log tail --follow prints entries as they are written', async () => {
    const child = spawn(
      process.execPath,
      [BIN, 'log', 'tail', '-n', '0', '--follow', '--store', store],
      { cwd: ROOT },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const before = out;
    expect(writ('demo', '--store', store).status).toBe(0);
    const deadline = Date.now() + 5_000;
    while (!out.includes('CONCURRENCY_LIMIT') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill();
    expect(before).toBe('');
    expect(out).toMatch(/session pay-bill-\S+ opened/);
    expect(out).toContain('update_password DENIED_BY_RULE');
    expect(out).toContain('CONCURRENCY_LIMIT');
  });

  it('writ log tail -n counts disagreements too, 0 as none, and takes decimal digits only', async () => {
    const file = join(dir, 'shadow.db');
    const store = sqliteStore({ path: file });
    const engine = createWrit({
      policy:
        'version: 1\nmode: shadow\ntools:\n  wipe:\n    - forbid: true\n  read:\n    - allow: true\n',
      store,
    });
    const ids: string[] = [];
    for (const tool of ['wipe', 'read', 'wipe', 'wipe', 'read']) {
      const decision = await engine.authorize({
        tool,
        principal: { id: 'a' },
        session: { id: 's' },
      });
      if (tool === 'wipe') ids.push(decision.id);
    }
    await store.close();
    const tail = (...flags: string[]) =>
      writ('log', 'tail', '--disagreements', ...flags, '--store', file);
    expect([tail('-n', '0').status, tail('-n', '0').stdout]).toEqual([0, '']);
    const two = tail('-n', '2').stdout.trim().split('\n');
    expect(two.map((line) => line.split(' ')[2])).toEqual(ids.slice(1));
    expect(tail().stdout.trim().split('\n')).toHaveLength(3);
    for (const n of ['', '0x10', '1e1', ' 5', '-1', '2.0']) {
      const run = writ('log', 'tail', '-n', n, '--store', file);
      expect([run.status, run.stderr]).toEqual([
        2,
        `--lines: ${JSON.stringify(n)} is not a whole number in decimal, such as 20\n`,
      ]);
    }
  });

  it('writ writs lists the writs the demo left holding their lease; writ settle settles each once', () => {
    // One per demo run on this store (another test runs the demo again).
    const open = json<OpenWrit[]>('writs', '--store', store);
    expect(open.length).toBeGreaterThanOrEqual(1);
    for (const o of open)
      expect([o.writ.tool, o.claims]).toEqual(['update_scheduled_transaction', []]);
    const id = open[0]!.writ.id;
    expect(writ('writs', '--store', store).stdout).toContain(`${id}  update_scheduled_transaction`);
    for (const [flags, error] of [
      [['--status', 'done'], '--status must be one of succeeded, failed, cancelled, not "done"'],
      [['--status', 'failed', '--cost', '-1'], '--cost must be a number from 0 to'],
      [['--status', 'failed', '--cost', ''], '--cost must be a number from 0 to'],
      [['--status', 'succeeded', '--result', '{x'], '--result is not JSON'],
      [['--status', 'failed', '--cost', '0x10'], '--cost must be a number from 0 to'],
      [
        ['--status', 'succeeded', '--result', '1e400'],
        '--result: result: Infinity is not a JSON number',
      ],
      [['--status', 'failed', '--result', '{}'], '--result goes with --status succeeded only'],
    ] as const) {
      const run = writ('settle', id, ...flags, '--store', store);
      expect([run.status, run.stderr]).toEqual([2, expect.stringContaining(error)]);
    }
    expect(writ('settle', 'wr_nope', '--status', 'failed', '--store', store)).toMatchObject({
      status: 1,
      stderr: 'unknown writ wr_nope\n',
    });
    const settled = writ('settle', id, '--status', 'cancelled', '--store', store);
    expect([settled.status, settled.stdout]).toEqual([0, `${id} settled cancelled\n`]);
    expect(writ('settle', id, '--status', 'cancelled', '--store', store).status).toBe(1);
    for (const { writ: other } of open.slice(1))
      expect(writ('settle', other.id, '--status', 'failed', '--store', store).status).toBe(0);
    expect(writ('writs', '--store', store).stdout).toBe('no open writs\n');
    expect(logEntries(store).map((e) => e.settlement)).toContainEqual(
      expect.objectContaining({ writId: id, status: 'cancelled' }),
    );
  });

  it('writ settle says when a final capture at expiry leaves its cost uncounted', async () => {
    const file = join(dir, 'late.db');
    const policy = `version: 1
tools:
  pay:
    - allow: true
budgets:
  spend:
    match: 'tool == "pay"'
    per: '"all"'
    limit: 100
    window: lifetime
    cost: '10'
    hold_ttl: 1m
    on_expiry: capture
`;
    // Authorized two days ago, never settled: its hold was captured at expiry a day later.
    const store = sqliteStore({ path: file });
    const engine = createWrit({ policy, store, clock: manualClock(Date.now() - 2 * 86_400_000) });
    const decided = await engine.authorize({
      tool: 'pay',
      principal: { id: 'agent' },
      session: { id: 's' },
    });
    await store.close();
    const id = decided.writ!.id;
    const run = writ('settle', id, '--status', 'succeeded', '--cost', '3', '--store', file);
    expect([run.status, run.stdout]).toEqual([
      0,
      `${id} settled succeeded; not counted on spend:all (the hold was captured at its expiry, and that capture is final)\n`,
    ]);
    expect(json<BudgetState[]>('budgets', '--store', file)[0]).toMatchObject({ spent: 10 });
    expect(logEntries(file).at(-1)?.settlement).toMatchObject({
      cost: 3,
      uncounted: ['spend:all'],
    });
  });

  it('writ log verify --anchor shows a log rewritten and hashed again since an earlier verify', async () => {
    const file = join(dir, 'anchored.db');
    const engine = createWrit({
      policy: 'version: 1\ntools:\n  pay:\n    - allow: true\n',
      store: sqliteStore({ path: file }),
    });
    for (let i = 0; i < 4; i++)
      await engine.authorize({
        tool: 'pay',
        args: { i },
        principal: { id: 'a' },
        session: { id: 's' },
      });
    await engine.close();
    const { head } = json<{ head: { seq: number; hash: string } }>(
      'log',
      'verify',
      '--store',
      file,
    );
    const anchor = `${head.seq}:${head.hash}`;
    expect(writ('log', 'verify', '--anchor', anchor, '--store', file).stdout).toBe(
      `ok: 4 entries, head ${anchor}; anchors held: 4\n`,
    );
    // Someone who can write the file rewrites entry 2 on, hashing every entry and the head again.
    const db = new Database(file);
    const rows = db.prepare('SELECT seq, entry FROM log ORDER BY seq').all() as {
      seq: number;
      entry: string;
    }[];
    let previous = JSON.parse(rows[0]!.entry) as LogEntry;
    for (const row of rows.slice(1)) {
      const {
        seq: _seq,
        prevHash: _prev,
        hash: _hash,
        ...draft
      } = JSON.parse(row.entry) as LogEntry;
      (draft.decision!.action.args as { i: number }).i += 100;
      const { entry, text } = chainEntryText(previous, draft);
      db.prepare('UPDATE log SET entry = ? WHERE seq = ?').run(text, row.seq);
      previous = entry;
    }
    db.prepare("UPDATE shared SET value = ? WHERE kind = 'log-head' AND key = 'head'").run(
      JSON.stringify({ seq: previous.seq, hash: previous.hash }),
    );
    db.close();
    // The chain holds together on its own; the anchor kept outside the store does not.
    expect(writ('log', 'verify', '--store', file).status).toBe(0);
    const run = writ('log', 'verify', '--anchor', anchor, '--store', file);
    expect([run.status, run.stderr]).toEqual([
      1,
      `entry 4: edited — entry 4 is not the one anchored (${head.hash}): the log was rewritten and hashed again from there or before\n`,
    ]);
    expect(writ('log', 'verify', '--anchor', '4', '--store', file)).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('--anchor must be <seq>:<hash>'),
    });
  });

  it('names a missing store instead of creating one', () => {
    const run = writ('budgets', '--store', join(dir, 'missing.db'));
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('no writ store here');
  });

  it('names a store it cannot open, and why, without a stack trace', () => {
    const notADatabase = join(dir, 'notes.txt');
    writeFileSync(notADatabase, 'meeting notes, not a database\n');
    for (const args of [
      ['budgets', '--store', notADatabase],
      ['demo', '--store', notADatabase],
    ]) {
      const run = writ(...args);
      expect(run.status).toBe(2);
      expect(run.stderr.trim()).toBe(
        `cannot open the SQLite store ${notADatabase}: file is not a database`,
      );
    }
  });

  it('makes no store out of an empty file', () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    for (const command of [
      ['budgets'],
      ['sessions'],
      ['approvals', 'list'],
      ['writs'],
      ['log', 'verify'],
    ]) {
      const run = writ(...command, '--store', empty);
      expect(run.status, command.join(' ')).toBe(2);
      expect(run.stderr.trim()).toBe(
        `${empty}: no writ store here (run writ demo, or pass --store <file>)`,
      );
    }
    expect(readFileSync(empty, 'utf8')).toBe('');
  });
});
