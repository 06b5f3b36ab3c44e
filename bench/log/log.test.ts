import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/log/entry.js';
import { srcRuntime as rt } from '../store/runtime.js';
import { verifyInChild } from './bench.js';
import { logWriter, templates } from './generate.js';

/** The log benchmark verifies a generated log: it must be a real chain of real-looking entries. */
const dir = mkdtempSync(join(tmpdir(), 'writ-bench-log-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the generated log', () => {
  it('starts from the entries the engine writes for one call', async () => {
    const { decision, settlement } = await templates(rt);
    expect(decision.kind).toBe('decision');
    expect(decision.decision!.outcome).toBe('allow');
    expect(settlement.kind).toBe('settlement');
    expect(settlement.settlement!.status).toBe('succeeded');
  });

  it('is a chain verifyLog accepts, in this process and in a child', async () => {
    const path = join(dir, 'writ.db');
    const writer = await logWriter(rt, path);
    writer.append(1_500);
    writer.append(500);
    writer.close();
    expect(writer.entries).toBe(2_000);

    const store = rt.sqliteStore({ path });
    expect(await store.verifyLog()).toMatchObject({ ok: true, entries: 2_000 });
    const [first, second] = await store.readLog(0, 2);
    expect(first!.decision!.id).toBe(second!.settlement!.decisionId);
    await store.close();

    const child = verifyInChild(path, 'src');
    expect(child.report).toMatchObject({ ok: true, entries: 2_000 });
    expect(child.maxRss).toBeGreaterThan(0);
  });

  it('is a chain whose edits are caught', async () => {
    const path = join(dir, 'edited.db');
    const writer = await logWriter(rt, path);
    writer.append(100);
    writer.close();
    const db = new Database(path);
    const row = db.prepare('SELECT entry FROM log WHERE seq = 41').get() as { entry: string };
    const entry = JSON.parse(row.entry) as LogEntry;
    entry.decision!.action.args = { to: 'attacker@example.com' };
    db.prepare('UPDATE log SET entry = ? WHERE seq = 41').run(JSON.stringify(entry));
    db.close();
    const store = rt.sqliteStore({ path });
    expect(await store.verifyLog()).toMatchObject({ ok: false, seq: 41, problem: 'edited' });
    await store.close();
  });
});
