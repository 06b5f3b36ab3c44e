import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createWrit } from '../../engine/writ.js';
import { Checkpointer } from './checkpointer.js';
import { sqliteStore } from './index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A WAL database with one table, and a commit that writes about a page to it. */
function walDatabase() {
  const dir = mkdtempSync(join(tmpdir(), 'writ-checkpointer-'));
  dirs.push(dir);
  const path = join(dir, 'db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY, text TEXT)');
  const insert = db.prepare('INSERT INTO t (text) VALUES (?)');
  return { db, path, commit: () => insert.run('x'.repeat(3_000)) };
}

describe('Checkpointer', () => {
  it('starts no worker for a short-lived process', async () => {
    const { db, commit } = walDatabase();
    const checkpointer = new Checkpointer(db, db.name);
    for (let i = 0; i < 10; i++) {
      commit();
      checkpointer.committed();
    }
    // SQLite's own threshold is left as it is.
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1_000);
    await checkpointer.close();
    db.close();
  });

  it('has the worker checkpoint while the connection goes on committing', async () => {
    const { db, path, commit } = walDatabase();
    const checkpointer = new Checkpointer(db, path);
    const initial = statSync(path).size;
    // 500 commits of about a page: far below the 10,000 pages at which SQLite would
    // checkpoint by itself once the worker runs, so only the worker moves pages.
    for (let i = 0; i < 500; i++) {
      commit();
      checkpointer.committed();
    }
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(10_000);
    for (let waited = 0; statSync(path).size < initial + 2 ** 20 && waited < 10_000; waited += 50)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(statSync(path).size).toBeGreaterThanOrEqual(initial + 2 ** 20);
    await checkpointer.close();
    expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(500);
    db.close();
  });

  it('gives checkpointing back to SQLite when the worker cannot open the database', async () => {
    const { db, commit } = walDatabase();
    const checkpointer = new Checkpointer(db, join(db.name, 'not-a-directory', 'db'));
    for (let i = 0; i < 100; i++) {
      commit();
      checkpointer.committed();
    }
    for (
      let waited = 0;
      db.pragma('wal_autocheckpoint', { simple: true }) !== 1_000;
      waited += 50
    ) {
      if (waited > 10_000) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1_000);
    await checkpointer.close();
    db.close();
  });
});

describe('a checkpoint that fails', () => {
  it('does not report the step that committed before it as failed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'writ-checkpointer-'));
    dirs.push(dir);
    // Every checkpoint the store finishes itself fails, as with a disk error.
    const pragma = Database.prototype.pragma;
    let failed = 0;
    const spy = vi.spyOn(Database.prototype, 'pragma').mockImplementation(function (
      this: Database.Database,
      source: string,
      options?: Database.PragmaOptions,
    ) {
      if (source.startsWith('wal_checkpoint')) {
        failed++;
        throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      }
      return pragma.call(this, source, options);
    });
    const store = sqliteStore({ path: join(dir, 'writ.db') });
    const writ = createWrit({
      policy: 'version: 1\ntools:\n  t:\n    - allow: true\n',
      store,
      log: false,
    });
    try {
      const outcomes = new Set<string>();
      // Enough commits for the worker to start and be asked, and for the store to finish
      // its checkpoint at a later commit.
      for (let i = 0; i < 2_000 && failed === 0; i++) {
        const decided = await writ.authorize({
          tool: 't',
          principal: { id: 'p' },
          session: { id: 's' },
        });
        outcomes.add(decided.outcome);
        if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      expect(failed).toBeGreaterThan(0);
      expect([...outcomes]).toEqual(['allow']);
      const after = await writ.authorize({
        tool: 't',
        principal: { id: 'p' },
        session: { id: 's' },
      });
      expect(after.outcome).toBe('allow');
    } finally {
      spy.mockRestore();
      await store.close();
    }
  });
});
