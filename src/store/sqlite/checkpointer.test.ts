import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpointer } from './checkpointer.js';

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
