import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { WritError } from '../../core/errors.js';
import { createWrit } from '../../engine/writ.js';
import { sqliteStore } from './index.js';
import { MIGRATIONS } from './schema.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempPath(name = 'writ.db') {
  const dir = mkdtempSync(join(tmpdir(), 'writ-readonly-'));
  dirs.push(dir);
  return join(dir, name);
}

/** A store with a session and two decisions, closed; the ids of the decisions. */
async function filledStore(path: string): Promise<string[]> {
  const store = sqliteStore({ path });
  const writ = createWrit({
    policy: 'version: 1\ntools:\n  t:\n    - allow: true\n',
    store,
  });
  const ids: string[] = [];
  try {
    await store.putSession('s', { team: 'a' }, 1_000);
    for (let i = 0; i < 2; i++) {
      const decided = await writ.authorize({
        tool: 't',
        principal: { id: 'p' },
        session: { id: 's' },
      });
      ids.push(decided.id);
    }
  } finally {
    await store.close();
  }
  return ids;
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error,
  );

describe('sqliteStore({ readonly: true })', () => {
  it('reads the store, finds decisions without writing the index, and refuses every write', async () => {
    const path = tempPath();
    const ids = await filledStore(path);
    const before = readFileSync(path);
    const store = sqliteStore({ path, readonly: true });
    try {
      expect((await store.getSession('s', 2_000))?.attrs).toEqual({ team: 'a' });
      expect((await store.verifyLog()).ok).toBe(true);
      expect((await store.logHead())?.seq).toBeGreaterThanOrEqual(2);
      for (const id of ids) expect((await store.findDecision(id))?.decision?.id).toBe(id);
      expect(await store.findDecision('dec_none')).toBeUndefined();
      for (const write of [
        store.putSession('s2', {}, 2_000),
        store.settle({ now: 2_000, writId: 'wr_none', status: 'failed' }),
        store.sweep(2_000, 10),
      ]) {
        const error = await rejection(write);
        expect(error).toBeInstanceOf(WritError);
        expect(error).toMatchObject({
          code: 'STORE_FAILURE',
          message: `the SQLite store ${path} was opened read-only: it cannot be written`,
        });
      }
      // Reads still work after a refused write.
      expect((await store.listSessions(2_000)).map((s) => s.id)).toEqual(['s']);
    } finally {
      await store.close();
    }
    // Nothing was written: not the decision index, not a checkpoint.
    expect(readFileSync(path).equals(before)).toBe(true);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM decision').pluck().get()).toBe(0);
    db.close();
  });

  it('sees what another connection commits while it is open', async () => {
    const path = tempPath();
    await filledStore(path);
    const writer = sqliteStore({ path });
    const reader = sqliteStore({ path, readonly: true });
    try {
      expect((await reader.listSessions(2_000)).map((s) => s.id)).toEqual(['s']);
      await writer.putSession('late', {}, 2_000);
      expect((await reader.listSessions(2_000)).map((s) => s.id)).toEqual(['late', 's']);
    } finally {
      await reader.close();
      await writer.close();
    }
  });

  it('refuses a store of an older schema, which it cannot migrate, and leaves it as it was', () => {
    const path = tempPath();
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.exec(MIGRATIONS[0]!);
    db.pragma('user_version = 1');
    db.close();
    expect(() => sqliteStore({ path, readonly: true })).toThrow(
      `cannot open the SQLite store ${path}: it has schema version 1, older than this writ's ${MIGRATIONS.length}, and opened read-only it cannot be migrated (any writ command that can write it migrates it)`,
    );
    const after = new Database(path, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(1);
    after.close();
  });

  it('creates nothing: a missing file, or a database that is no writ store, is refused', () => {
    const missing = tempPath();
    expect(() => sqliteStore({ path: missing, readonly: true })).toThrow(
      expect.objectContaining({ code: 'STORE_FAILURE' }),
    );
    expect(existsSync(missing)).toBe(false);
    const empty = tempPath();
    new Database(empty).exec('PRAGMA user_version = 0; VACUUM').close();
    expect(() => sqliteStore({ path: empty, readonly: true })).toThrow(/is not a writ store/);
  });

  it('takes only true or false, and a file', () => {
    expect(() => sqliteStore({ path: ':memory:', readonly: true })).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
    expect(() => sqliteStore({ path: tempPath(), readonly: 'yes' as never })).toThrow(
      'sqliteStore: readonly must be true or false, not "yes"',
    );
  });
});
