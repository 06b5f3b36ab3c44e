import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import type { Decision } from '../../src/core/decision.js';
import { createWrit } from '../../src/engine/writ.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';

/**
 * An hour before the test runs, on a whole minute. The engine's clock starts here; the
 * operator's CLI reads the real one: long after the writs expired (15 minutes), within the
 * payment claim's 24 hours. A fixed date made the claim expire by the calendar, a day later.
 */
const START = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000).toISOString();
const here = import.meta.dirname;

/** Runs the child until it has taken its writs, then kills it with SIGKILL. */
async function crashChild(
  dbPath: string,
): Promise<{ paid: Decision; inFlight: Decision; deploy: Decision }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(here, 'child.ts'), dbPath, join(here, 'policy.yaml'), START],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
  const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return JSON.parse(line);
}

describe('crash safety on SQLite (kill -9 mid-execution)', () => {
  it('loses nothing recorded, expires leases and holds on time, never executes twice', async () => {
    const dbPath = join(mkdtempSync(join(tmpdir(), 'writ-crash-')), 'writ.db');
    const before = await crashChild(dbPath);
    expect(before.inFlight.outcome).toBe('allow');
    expect(before.deploy.writ?.fencing).toEqual({ 'deploys:prod': 1 });

    const clock = manualClock(START);
    clock.advance(60_000);
    const writ = createWrit({
      policy: join(here, 'policy.yaml'),
      store: sqliteStore({ path: dbPath }),
      clock,
      ids: sequentialIds(),
    });
    const who = { principal: { id: 'agent' }, session: { id: 'run-1' } };
    try {
      // Nothing recorded is lost: the capture and the live hold are both there.
      expect(await writ.budgets()).toEqual([
        { key: 'spend', limit: 100, spent: 10, held: 30, remaining: 60, windowEnd: null },
      ]);
      // The settled call replays; the one that was running is still in flight.
      const replay = await writ.authorize({
        ...who,
        tool: 'send_money',
        args: { amount: 10 },
        idempotencyKey: 'pay-1',
      });
      expect(replay.outcome).toBe('replay');
      expect(replay.result).toEqual({ receipt: 'r-1' });
      const retry = await writ.authorize({
        ...who,
        tool: 'send_money',
        args: { amount: 30 },
        idempotencyKey: 'pay-2',
      });
      expect(retry.reasons[0]?.code).toBe('IDEMPOTENCY_IN_FLIGHT');
      // The dead process still holds the deploy lease until it expires.
      const blocked = await writ.authorize({ ...who, tool: 'deploy', args: { cluster: 'prod' } });
      expect(blocked.reasons[0]).toMatchObject({ code: 'CONCURRENCY_LIMIT', key: 'deploys:prod' });

      // After the 5-minute lease the slot is free again, with a larger fencing token.
      clock.set(Date.parse(START) + 5 * 60_000);
      const deploy = await writ.authorize({ ...who, tool: 'deploy', args: { cluster: 'prod' } });
      expect(deploy.outcome).toBe('allow');
      expect(deploy.writ?.fencing).toEqual({ 'deploys:prod': 2 });
      await writ.settle(deploy.writ!, { status: 'succeeded' });

      // After the 10-minute hold the money is released, and the unsettled payment is in doubt:
      // a retry is refused rather than risking a second payment.
      clock.set(Date.parse(START) + 10 * 60_000);
      expect((await writ.budgets())[0]).toMatchObject({ spent: 10, held: 0, remaining: 90 });
      const doubtful = await writ.authorize({
        ...who,
        tool: 'send_money',
        args: { amount: 30 },
        idempotencyKey: 'pay-2',
      });
      expect(doubtful.outcome).toBe('deny');
      expect(doubtful.reasons[0]?.code).toBe('IDEMPOTENCY_IN_DOUBT');
    } finally {
      await writ.close();
    }

    // An operator resolves what the dead process left, with the CLI (on the real clock, long
    // after these writs expired): it lists the two calls that may have run…
    const open = cli('writs', '--json', '--store', dbPath);
    expect(open.status, open.stderr).toBe(0);
    expect(JSON.parse(open.stdout)).toEqual([
      expect.objectContaining({
        writ: expect.objectContaining({ id: before.inFlight.writ!.id, tool: 'send_money' }),
        expired: true,
        claims: [{ key: 'payments:pay-2', status: 'in_doubt' }],
      }),
      expect.objectContaining({
        writ: expect.objectContaining({ id: before.deploy.writ!.id, tool: 'deploy' }),
        expired: true,
        claims: [],
      }),
    ]);
    // …finds that the payment went through, and settles it with its receipt; once only.
    const id = before.inFlight.writ!.id;
    const settle = ['settle', id, '--status', 'succeeded', '--result', '{"receipt":"r-2"}'];
    const settled = cli(...settle, '--store', dbPath);
    expect(settled.status, settled.stderr).toBe(0);
    expect(settled.stdout).toBe(`${id} settled succeeded\n`);
    const again = cli(...settle, '--store', dbPath);
    expect([again.status, again.stderr]).toEqual([
      1,
      `writ ${id} was already settled (succeeded)\n`,
    ]);
    expect(JSON.parse(cli('writs', '--json', '--store', dbPath).stdout)).toHaveLength(1);

    // The retry now replays the receipt instead of paying a second time.
    const after = createWrit({
      policy: join(here, 'policy.yaml'),
      store: sqliteStore({ path: dbPath }),
      clock,
    });
    try {
      const replayed = await after.authorize({
        ...who,
        tool: 'send_money',
        args: { amount: 30 },
        idempotencyKey: 'pay-2',
      });
      expect(replayed.outcome).toBe('replay');
      expect(replayed.result).toEqual({ receipt: 'r-2' });
      expect((await after.budgets())[0]).toMatchObject({ spent: 40, held: 0, remaining: 60 });
    } finally {
      await after.close();
    }
  });
});

/** The writ CLI, as an operator runs it (from `dist/`: the test command builds first). */
function cli(...args: string[]) {
  return spawnSync(process.execPath, [join(here, '..', '..', 'bin', 'writ.js'), ...args], {
    encoding: 'utf8',
  });
}
