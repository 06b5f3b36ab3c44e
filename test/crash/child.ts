/**
 * The process the crash test kills: it takes writs on a SQLite file and then hangs in the
 * middle of "executing" them, the way an agent host dies mid-call.
 */
import { manualClock, sequentialIds } from '../../src/core/clock.js';
import { createWrit } from '../../src/engine/writ.js';
import { sqliteStore } from '../../src/store/sqlite/index.js';

const [dbPath, policyPath, startTime] = process.argv.slice(2) as [string, string, string];
const writ = createWrit({
  policy: policyPath,
  store: sqliteStore({ path: dbPath }),
  clock: manualClock(startTime),
  ids: sequentialIds(),
});
const who = { principal: { id: 'agent' }, session: { id: 'run-1' } };

const paid = await writ.authorize({
  ...who,
  tool: 'send_money',
  args: { amount: 10 },
  idempotencyKey: 'pay-1',
});
await writ.settle(paid.writ!, { status: 'succeeded', result: { receipt: 'r-1' } });
const inFlight = await writ.authorize({
  ...who,
  tool: 'send_money',
  args: { amount: 30 },
  idempotencyKey: 'pay-2',
});
const deploy = await writ.authorize({ ...who, tool: 'deploy', args: { cluster: 'prod' } });
process.stdout.write(`${JSON.stringify({ paid, inFlight, deploy })}\n`);
setInterval(() => {}, 1_000);
