import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import { createWrit } from '../../src/engine/writ.js';
import { memoryStore } from '../../src/store/memory/index.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';

/**
 * A recorded run: a fixed sequence of actions, a fixed clock and fixed ids. The decisions
 * must come out byte-identical to the recording, run after run and store after store.
 * Set UPDATE_GOLDEN=1 to re-record after an intended change, and review the diff.
 */
const GOLDEN = join(import.meta.dirname, 'decisions.jsonl');
const POLICY = join(import.meta.dirname, 'policy.yaml');

async function record(store: Store): Promise<string> {
  const clock = manualClock('2026-11-23T09:00:00Z');
  const writ = createWrit({ policy: POLICY, store, clock, ids: sequentialIds() });
  const lines: string[] = [];
  const log = (value: unknown) => lines.push(JSON.stringify(value));
  const principal = { id: 'banking-agent', tenant: 'acme' };
  await writ.sessions.open('s1', { files: ['bill.txt'], payees: ['GB29', 'DE89'], scheduled: [7] });
  const call = async (
    tool: string,
    args: Record<string, unknown>,
    settle?: 'succeeded' | 'failed',
  ) => {
    const decision = await writ.authorize({ tool, args, principal, session: { id: 's1' } });
    log(decision);
    if (decision.writ && settle)
      log(await writ.settle(decision.writ, { status: settle, result: { ok: tool } }));
    clock.advance(1_500);
    return decision;
  };
  await call('get_balance', {}, 'succeeded');
  await call('read_file', { file_path: 'bill.txt' }, 'succeeded');
  await call('read_file', { file_path: '/etc/passwd' });
  await call('send_money', { recipient: 'XX00', amount: 10 });
  const big = await call('send_money', { recipient: 'GB29', amount: 1500 });
  await writ.approvals.approve(big.approval!.id, { approver: 'owner' });
  await call('send_money', { recipient: 'GB29', amount: 1500 }, 'succeeded');
  await call('send_money', { recipient: 'GB29', amount: 1500 }, 'succeeded');
  await call('send_money', { recipient: 'DE89', amount: 600 }, 'succeeded');
  await call('send_money', { recipient: 'DE89', amount: -1 });
  for (let i = 0; i < 3; i++) await call('get_most_recent_transactions', { n: i }, 'succeeded');
  await call('update_scheduled_transaction', { id: 7, amount: 1 });
  await call('update_scheduled_transaction', { id: 7, amount: 2 });
  clock.advance(60_000);
  await call('update_scheduled_transaction', { id: 7, amount: 3 }, 'failed');
  await call('update_password', { password: 'x' });
  await call('send mоney', {});
  log(await writ.budgets());
  log(await writ.sessions.list());
  await writ.close();
  return `${lines.join('\n')}\n`;
}

describe('golden decision log', () => {
  it('reproduces the recorded decisions byte for byte', async () => {
    const run = await record(memoryStore());
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(GOLDEN)) {
      expect(process.env.CI, 'the golden file is missing in CI').not.toBe('true');
      writeFileSync(GOLDEN, run);
    }
    expect(run).toBe(readFileSync(GOLDEN, 'utf8'));
  });

  it('gives the same bytes on a second run and on SQLite', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'writ-golden-')), 'writ.db');
    const [memory, sqlite, sqliteFull] = [
      await record(memoryStore()),
      await record(sqliteStore({ path })),
      await record(sqliteStore({ path: `${path}-full`, synchronous: 'FULL' })),
    ];
    expect(memory).toBe(readFileSync(GOLDEN, 'utf8'));
    expect(sqlite).toBe(memory);
    expect(sqliteFull).toBe(memory);
  });
});
