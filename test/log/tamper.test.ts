import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import { createWrit } from '../../src/engine/writ.js';
import { chainEntry, entryHash, type LogEntry } from '../../src/log/entry.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';

const POLICY = `
version: 1
tools:
  send_money:
    - allow: 'args.amount < 100.0'
budgets:
  spend: { match: 'true', limit: 1000, window: lifetime, cost: 'args.amount' }
`;
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'writ.js');

/** A real SQLite store with 30 log entries: decisions and settlements. */
async function recorded(): Promise<string> {
  const path = join(mkdtempSync(join(tmpdir(), 'writ-tamper-')), 'writ.db');
  const writ = createWrit({
    policy: POLICY,
    store: sqliteStore({ path }),
    clock: manualClock('2026-11-23T10:00:00Z'),
    ids: sequentialIds(),
  });
  for (let i = 0; i < 15; i++) {
    const d = await writ.authorize({
      tool: 'send_money',
      args: { amount: i * 10 },
      principal: { id: 'a' },
      session: { id: 's' },
    });
    if (d.writ) await writ.settle(d.writ, { status: 'succeeded' });
    else
      await writ.authorize({
        tool: 'send_money',
        args: { amount: 1 },
        principal: { id: 'a' },
        session: { id: 's' },
      });
  }
  await writ.close();
  return path;
}

async function verify(path: string) {
  const store = sqliteStore({ path });
  try {
    return await store.verifyLog();
  } finally {
    await store.close();
  }
}

function tamper(path: string, edit: (db: Database.Database) => void) {
  const db = new Database(path);
  edit(db);
  db.close();
}

const entryAt = (db: Database.Database, seq: number) =>
  JSON.parse(
    (db.prepare('SELECT entry FROM log WHERE seq = ?').get(seq) as { entry: string }).entry,
  ) as LogEntry;

describe('tampering with a real SQLite log', () => {
  let path: string;
  beforeEach(async () => {
    path = await recorded();
  });

  it('verifies an untouched log', async () => {
    expect(await verify(path)).toMatchObject({ ok: true, entries: 30 });
  });

  it('finds an edited entry', async () => {
    tamper(path, (db) =>
      db
        .prepare(
          `UPDATE log SET entry = replace(entry, '"amount":50', '"amount":5') WHERE seq = 11`,
        )
        .run(),
    );
    expect(await verify(path)).toMatchObject({ ok: false, seq: 11, problem: 'edited' });
  });

  it('finds an edit that reads back the same through JSON.parse', async () => {
    const outcomes = (db: Database.Database) => [
      db.prepare("SELECT entry ->> '$.decision.outcome' FROM log WHERE seq = 11").pluck().get(),
      entryAt(db, 11).decision!.outcome,
    ];
    for (const [edit, read] of [
      // SQLite reads the first of two equal keys, JSON.parse the last.
      [
        `replace(entry, '"outcome":"allow"', '"outcome":"deny","outcome":"allow"')`,
        ['deny', 'allow'],
      ],
      [`replace(entry, '{', '{ ')`, ['allow', 'allow']],
    ] as const) {
      const copy = await recorded();
      tamper(copy, (db) => {
        db.prepare(`UPDATE log SET entry = ${edit} WHERE seq = 11`).run();
        expect(outcomes(db)).toEqual(read);
      });
      expect(await verify(copy)).toMatchObject({ ok: false, seq: 11, problem: 'edited' });
    }
  });

  it('reads an entry rewritten as a BLOB as the text its bytes are', async () => {
    tamper(path, (db) =>
      db.prepare('UPDATE log SET entry = CAST(entry AS BLOB) WHERE seq IN (11, 12)').run(),
    );
    expect(await verify(path)).toMatchObject({ ok: true, entries: 30 });
    tamper(path, (db) =>
      db
        .prepare(`UPDATE log SET entry = CAST(replace(entry, '{', '{ ') AS BLOB) WHERE seq = 12`)
        .run(),
    );
    expect(await verify(path)).toMatchObject({ ok: false, seq: 12, problem: 'edited' });
  });

  it('finds an entry edited and rehashed, at that entry', async () => {
    tamper(path, (db) => {
      const entry = entryAt(db, 11);
      entry.decision!.action.args = { amount: 5 };
      const { hash: _old, ...content } = entry;
      db.prepare('UPDATE log SET entry = ? WHERE seq = 11').run(
        JSON.stringify({ ...content, hash: entryHash(content) }),
      );
    });
    expect(await verify(path)).toMatchObject({ ok: false, seq: 11, problem: 'edited' });
  });

  it('finds a deleted entry', async () => {
    tamper(path, (db) => db.prepare('DELETE FROM log WHERE seq = 7').run());
    expect(await verify(path)).toMatchObject({ ok: false, seq: 7, problem: 'deleted' });
  });

  it('finds swapped entries', async () => {
    tamper(path, (db) => {
      const [a, b] = [entryAt(db, 4), entryAt(db, 5)];
      db.prepare('UPDATE log SET entry = ? WHERE seq = 4').run(JSON.stringify(b));
      db.prepare('UPDATE log SET entry = ? WHERE seq = 5').run(JSON.stringify(a));
    });
    expect(await verify(path)).toMatchObject({ ok: false, seq: 4, problem: 'reordered' });
  });

  it('finds a truncated tail', async () => {
    tamper(path, (db) => db.prepare('DELETE FROM log WHERE seq > 20').run());
    expect(await verify(path)).toMatchObject({ ok: false, seq: 21, problem: 'truncated' });
  });

  it('finds a truncated tail whose head record was deleted with it', async () => {
    tamper(path, (db) => {
      db.prepare('DELETE FROM log WHERE seq > 20').run();
      db.prepare("DELETE FROM shared WHERE kind = 'log-head'").run();
    });
    expect(await verify(path)).toMatchObject({ ok: false, seq: 21, problem: 'truncated' });
  });

  it('refuses to append after the head record was deleted or set back', async () => {
    const edits: [(db: Database.Database) => void, string][] = [
      [(db) => db.prepare("DELETE FROM shared WHERE kind = 'log-head'").run(), 'missing'],
      [
        (db) =>
          db
            .prepare("UPDATE shared SET value = ? WHERE kind = 'log-head'")
            .run(JSON.stringify({ seq: 20, hash: entryAt(db, 20).hash })),
        'behind its log',
      ],
    ];
    for (const [edit, state] of edits) {
      const copy = await recorded();
      tamper(copy, edit);
      const store = sqliteStore({ path: copy });
      try {
        await expect(
          store.putSession('s2', {}, Date.parse('2026-11-23T10:00:00Z')),
        ).rejects.toMatchObject({
          code: 'STORE_FAILURE',
          message: expect.stringContaining(`the store's log head is ${state}: log entry `),
        });
      } finally {
        await store.close();
      }
      // Nothing was written: the log still ends where it did.
      tamper(copy, (db) => expect(db.prepare('SELECT max(seq) FROM log').pluck().get()).toBe(30));
    }
  });

  it('writ log verify exits 1 naming the first bad entry', () => {
    tamper(path, (db) => db.prepare('DELETE FROM log WHERE seq = 9').run());
    const run = spawnSync(process.execPath, [BIN, 'log', 'verify', '--store', path], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('entry 9: deleted');
    const ok = spawnSync(
      process.execPath,
      [BIN, 'log', 'verify', '--store', path.replace('writ.db', 'none.db')],
      { encoding: 'utf8' },
    );
    expect(ok.status).toBe(2);
  });
});

describe('a long log', () => {
  it('verifies 200,000 entries streaming, in bounded memory', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'writ-long-')), 'writ.db');
    await sqliteStore({ path }).close();
    const db = new Database(path);
    const insert = db.prepare('INSERT INTO log (seq, entry) VALUES (?, ?)');
    let head: LogEntry | undefined;
    db.transaction(() => {
      for (let i = 1; i <= 200_000; i++) {
        head = chainEntry(head, {
          at: '2026-11-23T10:00:00.000Z',
          kind: 'session',
          session: { id: `s${i}`, attrs: { i }, version: 1 },
        });
        insert.run(head.seq, JSON.stringify(head));
      }
      db.prepare(`INSERT INTO shared (kind, key, value) VALUES ('log-head', 'head', ?)`).run(
        JSON.stringify({ seq: head!.seq, hash: head!.hash }),
      );
    })();
    db.close();
    global.gc?.();
    const before = process.memoryUsage().heapUsed;
    const report = await verify(path);
    const grown = process.memoryUsage().heapUsed - before;
    expect(report).toMatchObject({ ok: true, entries: 200_000 });
    // Holding the log would take well over 100 MB of heap; streaming keeps it to garbage.
    expect(grown).toBeLessThan(64 * 1024 * 1024);
  });
});
