import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../src/log/entry.js';
import type { ApprovalRecord, BudgetState, SessionRecord } from '../src/store/types.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'writ.js');
const DEMO_POLICY = join(ROOT, 'examples', 'demo', 'policy.yaml');

function writ(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
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
    expect(nobody.stderr).toContain('the approver must be a non-empty string');
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
});
