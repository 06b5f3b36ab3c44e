import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../src/log/entry.js';
import { sqliteStore } from '../src/store/sqlite/index.js';
import type { ApprovalRecord, OpenWrit } from '../src/store/types.js';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'writ.js');

/**
 * Root reads and writes whatever the permissions say, so as root the auditor's commands run
 * as another user (nobody's uid, no passwd entry needed); anyone else is held to the
 * permissions already.
 */
const AUDITOR = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

/** Runs writ as the test's own user. */
function writ(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
}

/** Runs writ as the auditor, who may read the stores below and write none of them. */
function audit(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    ...AUDITOR,
  });
}

describe('the CLI on a store it can only read', () => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-cli-readonly-'));
  const live = join(dir, 'live', 'writ.db');
  const roDir = join(dir, 'ro');
  const copy = join(roDir, 'writ.db');
  let image: Buffer;

  beforeAll(() => {
    expect(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'run npm run build first').toBe(true);
    // mkdtemp makes the directory for its owner only: the auditor must be able to enter it.
    chmodSync(dir, 0o755);
    const demo = writ('demo', '--store', live);
    expect(demo.status, demo.stderr).toBe(0);
    // A read-only copy in a read-only directory, as an auditor is handed one.
    mkdirSync(roDir);
    copyFileSync(live, copy);
    chmodSync(copy, 0o444);
    chmodSync(roDir, 0o555);
    image = readFileSync(copy);
  });

  afterAll(() => {
    chmodSync(roDir, 0o755);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writ log verify, budgets and explain work, and say what they say on the store itself', () => {
    const verify = audit('log', 'verify', '--store', copy);
    expect([verify.status, verify.stderr]).toEqual([0, '']);
    expect(verify.stdout).toMatch(/^ok: \d+ entries, head \d+:[0-9a-f]{64}\n$/);
    expect(verify.stdout).toBe(writ('log', 'verify', '--store', live).stdout);

    const budgets = audit('budgets', '--store', copy);
    expect([budgets.status, budgets.stderr]).toEqual([0, '']);
    expect(budgets.stdout).toMatch(/daily-spend:rent-\S+ +2000 +1100 +0 +900/);
    expect(budgets.stdout).toBe(writ('budgets', '--store', live).stdout);

    // A decision the demo logged last: the store's decision index does not cover it yet, and
    // the auditor cannot bring it up to date.
    const entries = audit('log', 'export', '--store', copy);
    expect([entries.status, entries.stderr]).toEqual([0, '']);
    expect(entries.stdout).toBe(writ('log', 'export', '--store', live).stdout);
    const decisions = entries.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as LogEntry)
      .flatMap((e) => (e.decision ? [e.decision.id] : []));
    for (const id of [decisions[0]!, decisions[decisions.length - 1]!]) {
      const explain = audit('explain', id, '--store', copy);
      expect([explain.status, explain.stderr]).toEqual([0, '']);
      expect(explain.stdout).toContain(`${id} `);
      expect(explain.stdout).toBe(writ('explain', id, '--store', live).stdout);
    }
    const none = audit('explain', 'dec_none', '--store', copy);
    expect([none.status, none.stderr]).toEqual([1, `no decision dec_none in ${copy}\n`]);
  });

  it('writ sessions, approvals list, writs and log tail work as well', () => {
    for (const args of [
      ['sessions'],
      ['approvals', 'list'],
      ['writs', '--json'],
      ['log', 'tail', '-n', '5'],
    ]) {
      const run = audit(...args, '--store', copy);
      expect([args, run.status, run.stderr]).toEqual([args, 0, '']);
      expect(run.stdout).toBe(writ(...args, '--store', live).stdout);
    }
  });

  it('a command that writes fails in one line, exit 2, saying the store cannot be written here', () => {
    const open = JSON.parse(audit('writs', '--json', '--store', copy).stdout) as OpenWrit[];
    const pending = JSON.parse(
      audit('approvals', 'list', '--status', 'pending', '--json', '--store', copy).stdout,
    ) as ApprovalRecord[];
    expect(open.length).toBeGreaterThan(0);
    expect(pending.length).toBeGreaterThan(0);
    for (const args of [
      ['settle', open[0]!.writ.id, '--status', 'failed'],
      ['approvals', 'approve', pending[0]!.id, '--approver', 'bob'],
      ['sweep'],
    ]) {
      const run = audit(...args, '--store', copy);
      expect([args, run.status, run.stdout, run.stderr]).toEqual([
        args,
        2,
        '',
        `cannot open the SQLite store ${copy}: attempt to write a readonly database — it cannot be written here (commands that only read it, such as writ log verify, still work)\n`,
      ]);
    }
  });

  it('leaves the copy as it was, and makes no file beside it', () => {
    expect(readdirSync(roDir)).toEqual(['writ.db']);
    expect(readFileSync(copy).equals(image)).toBe(true);
  });

  it('reads what another process has committed to the WAL and not yet to the file', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    const path = join(shared, 'writ.db');
    copyFileSync(live, path);
    const writer = sqliteStore({ path });
    try {
      await writer.putSession('late', { team: 'audit' }, Date.now());
      expect(readFileSync(`${path}-wal`).length).toBeGreaterThan(0);
      chmodSync(shared, 0o555);
      const sessions = audit('sessions', '--json', '--store', path);
      expect([sessions.status, sessions.stderr]).toEqual([0, '']);
      expect(JSON.parse(sessions.stdout)).toContainEqual(
        expect.objectContaining({ id: 'late', attrs: { team: 'audit' } }),
      );

      // The WAL's shared memory out of reach: its commits cannot be read, and the file alone
      // would be an older store — refused, not shown.
      chmodSync(`${path}-shm`, 0o000);
      const refused = audit('sessions', '--store', path);
      expect([refused.status, refused.stdout, refused.stderr]).toEqual([
        2,
        '',
        `cannot open the SQLite store ${path}: its write-ahead log ${path}-wal holds commits that cannot be read here: SQLite reads them through ${path}-shm, which it can neither open nor create (read a copy of the store and its -wal file in a directory you can write)\n`,
      ]);
    } finally {
      chmodSync(shared, 0o755);
      if (existsSync(`${path}-shm`)) chmodSync(`${path}-shm`, 0o644);
      await writer.close();
    }
  });
});
