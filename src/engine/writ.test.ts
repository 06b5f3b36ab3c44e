import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseAction } from '../core/action.js';
import { manualClock, sequentialIds } from '../core/clock.js';
import { actionDigest, digestJson, signingPayload } from '../core/digest.js';
import { WritError } from '../core/errors.js';
import { DEFAULT_JSON_LIMITS } from '../core/json.js';
import { MAX_AMOUNT } from '../core/plan.js';
import { replayLog } from '../log/replay.js';
import { derivedKeyDigest } from '../policy/index.js';
import { loadPolicy } from '../runtime/load-policy.js';
import { memoryStore } from '../store/memory/index.js';
import { createWrit, type WritOptions } from './writ.js';

const POLICY = 'version: 1\ntools:\n  t:\n    - allow: true\n';

function usageError(options: unknown): string {
  try {
    createWrit(options as WritOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(WritError);
    expect((error as WritError).code).toBe('USAGE');
    return (error as Error).message;
  }
  throw new Error(`createWrit accepted ${JSON.stringify(options)}`);
}

describe('createWrit options', () => {
  it('refuses, when created, what would fail or quietly change every decision', () => {
    // Every method a real store has, except authorize.
    const storeWithoutAuthorize: Record<string, () => void> = {};
    for (let proto = Object.getPrototypeOf(memoryStore()); proto !== Object.prototype; ) {
      for (const name of Object.getOwnPropertyNames(proto))
        if (name !== 'constructor' && name !== 'authorize') storeWithoutAuthorize[name] = () => {};
      proto = Object.getPrototypeOf(proto);
    }
    const cases: [unknown, RegExp][] = [
      [undefined, /expects an options object/],
      [{}, /policy must be a policy file path/],
      [{ policy: 42 }, /policy must be a policy file path/],
      [{ policy: POLICY, candidate: {} }, /candidate must be/],
      [{ policy: POLICY, store: {} }, /store must be a Store .* lacks authorize, settle/],
      [{ policy: POLICY, store: storeWithoutAuthorize }, /lacks authorize$/],
      [{ policy: POLICY, clock: { now: 1_000 } }, /clock must have a now\(\)/],
      [{ policy: POLICY, ids: {} }, /ids must have a next\(kind\)/],
      [{ policy: POLICY, writTtlMs: -5 }, /writTtlMs must be .* above 0, not -5/],
      // Text shows as text: "not 60000" would hide that the value was a string.
      [{ policy: POLICY, writTtlMs: '60000' }, /writTtlMs must be .* not "60000"$/],
      [{ policy: POLICY, writTtlMs: Number.POSITIVE_INFINITY }, /writTtlMs/],
      [{ policy: POLICY, log: 'no' }, /log must be true or false, not "no"/],
      [{ policy: POLICY, secrets: { KEY: 'x' } }, /secrets must be a function/],
      [{ policy: POLICY, limits: { maxDepth: -1 } }, /limits.maxDepth must be .* not -1/],
      [{ policy: POLICY, limits: { depth: 3 } }, /limits has no depth; it takes maxDepth/],
      [{ policy: POLICY, limits: 5 }, /limits must be an object/],
      [{ policy: '' }, /loadPolicy expects a policy file path or YAML text/],
      // A misspelt option would leave its default in place without a word.
      [
        { policy: POLICY, writTTLMs: 1 },
        /there is no option writTTLMs; the options are policy, store, clock, ids, writTtlMs,/,
      ],
      [{ policy: POLICY, stroe: {} }, /there is no option stroe/],
    ];
    for (const [options, message] of cases) expect(usageError(options)).toMatch(message);
  });

  it('refuses, at the call, a clock or an id source that fails or gives no time or id', async () => {
    const call = { tool: 't', principal: { id: 'p' }, session: { id: 's' } };
    const clocks: [() => unknown, RegExp][] = [
      [() => Number.NaN, /the clock gave NaN; a clock gives milliseconds since the Unix epoch/],
      [() => 1e17, /the clock gave 100000000000000000;/],
      [() => '2026-11-23', /the clock gave "2026-11-23";/],
      [
        () => {
          throw null;
        },
        /the clock failed: null/,
      ],
    ];
    for (const [now, message] of clocks) {
      const store = memoryStore();
      const writ = createWrit({ policy: POLICY, store, clock: { now } as never });
      // Every call that reads the time rejects with the same USAGE error; none throws
      // synchronously from a method that returns a promise, none reserves anything.
      for (const attempt of [
        () => writ.authorize(call),
        () => writ.budgets(),
        () => writ.openWrits(),
        () => writ.sessions.get('s'),
        () => writ.approvals.get('apr_1'),
      ]) {
        const result = attempt();
        expect(result).toBeInstanceOf(Promise);
        await expect(result).rejects.toMatchObject({
          code: 'USAGE',
          message: expect.stringMatching(message),
        });
      }
      expect(await store.readLog(0, 10)).toEqual([]);
    }
    const badIds: [() => unknown, RegExp][] = [
      [() => '', /the id source gave "" for a dec id; an id is a string of 1 to 256 characters/],
      [() => 7, /the id source gave 7 for a dec id/],
      [
        () => {
          throw new Error('pool empty');
        },
        /the id source failed: pool empty/,
      ],
    ];
    for (const [next, message] of badIds) {
      const writ = createWrit({ policy: POLICY, ids: { next } as never });
      await expect(writ.authorize(call)).rejects.toMatchObject({
        code: 'USAGE',
        message: expect.stringMatching(message),
      });
    }
    // An id drawn later in the decision (a writ's, an approval's) fails the same way, not as
    // a store that failed.
    for (const [policy, kind] of [
      [POLICY, 'wr'],
      ['version: 1\ntools:\n  t:\n    - require_approval: true\n', 'apr'],
    ] as const) {
      const ids = sequentialIds();
      const next = (k: string) => (k === kind ? 42 : ids.next(k));
      const writ = createWrit({ policy, ids: { next } as never });
      await expect(writ.authorize(call)).rejects.toMatchObject({
        code: 'USAGE',
        message: `the id source gave 42 for a ${kind} id; an id is a string of 1 to 256 characters`,
      });
    }
  });

  it('keeps the default of every limit not given', async () => {
    const writ = createWrit({ policy: POLICY, limits: { maxDepth: 2 } });
    const call = (args: unknown) =>
      writ.authorize({ tool: 't', args, principal: { id: 'p' }, session: { id: 's' } });
    expect((await call({ a: { b: 1 } })).outcome).toBe('allow');
    expect((await call({ a: { b: { c: 1 } } })).reasons[0]?.message).toMatch(/deeper than 2/);
    // The other limits are the defaults, not missing (which would have meant none).
    const long = 'x'.repeat(DEFAULT_JSON_LIMITS.maxStringLength + 1);
    expect((await call({ a: long })).reasons[0]?.code).toBe('INVALID_REQUEST');
  });

  it('takes a policy as a path, as YAML text, or compiled, and a store with every method', async () => {
    const writ = createWrit({ policy: POLICY, store: memoryStore(), writTtlMs: 1, log: false });
    const decided = await writ.authorize({
      tool: 't',
      principal: { id: 'p' },
      session: { id: 's' },
    });
    expect(decided.outcome).toBe('allow');
    expect(createWrit({ policy: writ.policy }).policy.hash).toBe(writ.policy.hash);
  });
});

describe('the engine refuses misuse before anything is reserved', () => {
  const POLICY_WITH_BUDGET = `${POLICY}budgets:\n  spend:\n    limit: 10\n    window: lifetime\n    cost: 1\n`;
  const action = { tool: 't', principal: { id: 'p' }, session: { id: 's' } };

  async function usage(promise: Promise<unknown>): Promise<string> {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WritError);
    expect((error as WritError).code).toBe('USAGE');
    return (error as Error).message;
  }

  it('in settle, execute, guard, sessions, approvals and sweep', async () => {
    const writ = createWrit({ policy: POLICY_WITH_BUDGET });
    const no = undefined as never;
    expect(await usage(writ.settle(no, { status: 'succeeded' }))).toMatch(
      /settle expects the writ/,
    );
    expect(await usage(writ.settle({} as never, { status: 'succeeded' }))).toMatch(/the writ/);
    expect(await usage(writ.settle('wr_x', no))).toMatch(/settle expects an outcome/);
    expect(await usage(writ.execute(action, 5 as never))).toMatch(/tool as a function/);
    expect(
      await usage(writ.execute(action, () => 1, { waitForApproval: { timeoutMs: -1 } })),
    ).toMatch(/timeoutMs must be milliseconds ≥ 0, not -1/);
    expect(
      await usage(writ.execute(action, () => 1, { waitForApproval: { timeoutMs: 10, pollMs: 0 } })),
    ).toMatch(/pollMs must be milliseconds above 0/);
    expect(await usage(writ.execute(action, () => 1, { cost: 3 as never }))).toMatch(/cost must/);
    // Misspelt options, which would otherwise be ignored.
    const misspelt: [unknown, RegExp][] = [
      [
        { throwOnDenied: true },
        /options have no throwOnDenied; they are throwOnDeny, cost, waitForApproval/,
      ],
      [{ waitForAproval: { timeoutMs: 10 } }, /options have no waitForAproval/],
      [{ waitForApproval: { timeout: 10 } }, /waitForApproval has no timeout; it takes timeoutMs/],
      [{ waitForApproval: 1000 }, /waitForApproval must be an object .*, not 1000/],
    ];
    for (const [options, message] of misspelt)
      expect(await usage(writ.execute(action, () => 1, options as never))).toMatch(message);
    const defaults = { principal: { id: 'p' }, session: 's' };
    expect(() => writ.guard('bad tool!', () => 1, defaults)).toThrow(/is not a tool name/);
    expect(() => writ.guard('t', 5 as never, defaults)).toThrow(/tool as a function/);
    expect(() => writ.guard('t', () => 1, {} as never)).toThrow(/defaults.principal.id/);
    expect(() => writ.guard('t', () => 1, { principal: { id: 'p' } } as never)).toThrow(
      /defaults.session/,
    );
    expect(() => writ.guard('t', () => 1, defaults, { throwOnDenied: true } as never)).toThrow(
      /options have no throwOnDenied/,
    );
    // A misspelling, or what the guard sets itself.
    for (const key of ['idempotencykey', 'tool', 'args'])
      expect(() => writ.guard('t', () => 1, { ...defaults, [key]: 'x' })).toThrow(
        new RegExp(`defaults has no ${key}; it takes principal, session, idempotencyKey`),
      );
    // A nonce, time or signature belongs to one call, and is said to.
    expect(() => writ.guard('t', () => 1, { ...defaults, nonce: 'n' } as never)).toThrow(
      /defaults has no nonce; .* \(nonce belongs to one call: pass it with the call, as guarded\(args, \{ nonce \}\)\)/,
    );
    const guarded = writ.guard('t', () => 1, defaults);
    expect(await usage(guarded({}, { idempotency: 'k' } as never))).toMatch(
      /a call has no idempotency; it takes principal, session, idempotencyKey, estimate, meta, nonce, issuedAt, signature$/,
    );
    expect(await usage(guarded({}, 'k' as never))).toMatch(/adds to the defaults with an object/);
    expect(await usage(writ.sessions.open('', {}))).toMatch(/the session id must be/);
    expect(await usage(writ.sessions.open('s', 'x' as never))).toMatch(/attrs must be an object/);
    expect(await usage(writ.sessions.open('s', [] as never))).toMatch(/attrs must be an object/);
    expect(await usage(writ.approvals.list('bogus' as never))).toMatch(/status must be one of/);
    expect(await usage(writ.sweep({ limit: 0 }))).toMatch(/limit must be a whole number ≥ 1/);
    expect(await usage(writ.sweep({ limit: 1.5 }))).toMatch(/not 1.5/);
    // Nothing was authorized, held or opened on the way.
    expect(await writ.budgets()).toEqual([]);
    expect(await writ.sessions.list()).toEqual([]);
    expect((await writ.store.verifyLog()).entries).toBe(0);
  });

  it('shows a bad value with its type, and never fails to show it', async () => {
    const writ = createWrit({ policy: POLICY_WITH_BUDGET });
    // A value is shown with its type, and one that cannot be turned into text (a symbol)
    // still gets a USAGE error rather than a TypeError from the message.
    const held = await writ.authorize(action);
    const shownWithType: [unknown, RegExp][] = [
      [{ status: 'succeeded', cost: Symbol('x') }, /settle cost must be .*, not Symbol\(x\)$/],
      [{ status: 'succeeded', cost: '5' }, /settle cost must be .*, not "5"$/],
      [{ status: 'succeeded', cost: 5n }, /settle cost must be .*, not 5n$/],
      [{ status: 'success' }, /settle status must be .*, not "success"$/],
      [{ status: Symbol('ok') }, /settle status must be .*, not Symbol\(ok\)$/],
      // A misspelt key would settle at what was held, not at the cost meant.
      [
        { status: 'succeeded', costs: 50 },
        /an outcome has no costs; it takes status, cost, result$/,
      ],
    ];
    for (const [outcome, message] of shownWithType)
      expect(await usage(writ.settle(held.writ!, outcome as never))).toMatch(message);
    await writ.settle(held.writ!, { status: 'cancelled' });
    expect(
      await usage(writ.execute(action, () => 1, { waitForApproval: { timeoutMs: '10' as never } })),
    ).toMatch(/timeoutMs must be milliseconds ≥ 0, not "10"$/);
    expect(await usage(writ.execute(action, () => 1, { throwOnDeny: 1n as never }))).toMatch(
      /throwOnDeny must be true or false, not 1n$/,
    );
    expect(await usage(writ.sweep({ limit: '5' as never }))).toMatch(/not "5"$/);
  });
});

describe('execute settles a call that ran, whatever its cost function does', () => {
  const POLICY_WITH_BUDGET = `${POLICY}budgets:\n  spend:\n    limit: 100\n    window: lifetime\n    cost: 4\n`;
  const action = { tool: 't', principal: { id: 'p' }, session: { id: 's' } };

  it('settles at the held amount, then reports the cost function', async () => {
    const writ = createWrit({ policy: POLICY_WITH_BUDGET });
    const costs: [() => number, RegExp][] = [
      [() => Number.NaN, /cost\(result\) must return a number from 0 to 1000000000000000, not NaN/],
      [() => -1, /not -1/],
      [
        () => {
          throw new Error('no price');
        },
        /cost\(result\) threw: no price/,
      ],
      // What is thrown need not be an Error: reporting it must not throw in turn, before
      // the call is settled.
      [
        () => {
          throw null;
        },
        /cost\(result\) threw: null/,
      ],
      [
        () => {
          throw undefined;
        },
        /cost\(result\) threw: undefined/,
      ],
      [
        () => {
          throw 'no price today';
        },
        /cost\(result\) threw: no price today;/,
      ],
      [
        () => {
          throw Object.create(null);
        },
        /cost\(result\) threw: unreadable error/,
      ],
      [() => Object.create(null), /not an object/],
      [() => '5' as never, /not "5"/],
    ];
    let ran = 0;
    for (const [cost, message] of costs) {
      const run = writ.execute(action, () => ({ ran: ++ran }), { cost });
      await expect(run).rejects.toThrow(message);
      // The error says the call succeeded and carries its result and decision, which a
      // caller would otherwise have lost.
      await expect(run).rejects.toMatchObject({
        code: 'USAGE',
        message: expect.stringMatching(/its result and decision are in this error's data/),
        data: { outcome: 'allow', result: { ran }, decision: { outcome: 'allow' } },
      });
    }
    expect(ran).toBe(costs.length);
    // Nothing is left held: each call was captured at the 4 it held.
    expect(await writ.budgets()).toMatchObject([{ spent: 4 * costs.length, held: 0 }]);
    expect(await writ.openWrits()).toEqual([]);
  });

  it('settles a call whose result throws a non-Error when serialised, and keeps null for replays', async () => {
    const policy = `${POLICY_WITH_BUDGET}idempotency:\n  once:\n    key: 'request.idempotencyKey'\n`;
    const writ = createWrit({ policy });
    const keyed = { ...action, idempotencyKey: 'k1' };
    const run = writ.execute(keyed, () => ({
      toJSON() {
        throw undefined;
      },
    }));
    await expect(run).rejects.toThrow(/the result is not JSON: undefined; the call succeeded/);
    // The error says the call ran, and carries what it returned.
    const error = (await run.catch((e: unknown) => e)) as WritError;
    expect(error.data).toMatchObject({ outcome: 'allow', decision: { outcome: 'allow' } });
    expect(error.data.result).toHaveProperty('toJSON');
    expect(await writ.openWrits()).toEqual([]);
    expect(await writ.budgets()).toMatchObject([{ spent: 4, held: 0 }]);
    // Settled, so a retry replays rather than finding the key in flight (or in doubt later).
    const retry = await writ.execute(keyed, () => 'ran again');
    expect(retry).toMatchObject({ outcome: 'replay', result: null });
  });

  it('takes waitForApproval: null as no wait, and Infinity as no time limit', async () => {
    const writ = createWrit({ policy: POLICY });
    for (const waitForApproval of [null, { timeoutMs: Number.POSITIVE_INFINITY }]) {
      const done = await writ.execute(action, () => 'ok', { waitForApproval } as never);
      expect(done).toMatchObject({ outcome: 'allow', result: 'ok' });
    }
    await expect(writ.execute(action, () => 1, null as never)).rejects.toThrow(
      /options must be an object/,
    );
    await expect(writ.execute(action, () => 1, { throwOnDeny: 'no' as never })).rejects.toThrow(
      /throwOnDeny must be true or false, not "no"/,
    );
  });
});

describe('execute settles the writ it authorized', () => {
  it('whatever the tool does to the writ and decision it is given', async () => {
    const writ = createWrit({ policy: POLICY });
    const action = { tool: 't', principal: { id: 'p' }, session: { id: 's' } };
    const other = await writ.authorize(action);
    const done = await writ.execute(action, (ctx) => {
      ctx.writ.id = other.writ!.id;
      ctx.decision.writ!.id = other.writ!.id;
      ctx.decision.reasons.length = 0;
      return 'ok';
    });
    // The other call's writ is still open for its owner; this call's is settled.
    expect((await writ.openWrits()).map((open) => open.writ.id)).toEqual([other.writ!.id]);
    expect(done.decision.writ!.id).not.toBe(other.writ!.id);
    expect(done.decision.reasons).toMatchObject([{ code: 'ALLOWED_BY_RULE' }]);
    await writ.settle(other.writ!, { status: 'cancelled' });
  });
});

describe('when execute cannot settle a call that ran', () => {
  const action = { tool: 't', principal: { id: 'p' }, session: { id: 's' } };
  const settleError = async (run: Promise<unknown>) => {
    const error = await run.then(
      () => expect.fail('execute resolved'),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(WritError);
    return error as WritError;
  };

  it("the settle failure is thrown with the tool's result in its data", async () => {
    const writ = createWrit({ policy: POLICY });
    // An operator (here the tool itself) settled the writ while the tool ran.
    const error = await settleError(
      writ.execute(action, async (ctx) => {
        await writ.settle(ctx.writ.id, { status: 'failed' });
        return { transferred: true };
      }),
    );
    expect(error).toMatchObject({
      code: 'WRIT_INVALID',
      message: expect.stringMatching(/already settled .*; the call had succeeded/),
      data: { outcome: 'allow', result: { transferred: true }, decision: { outcome: 'allow' } },
    });
    expect(error.cause).toMatchObject({ code: 'WRIT_INVALID' });
  });

  it("the settle failure is thrown with the tool's error as its cause", async () => {
    const writ = createWrit({ policy: POLICY });
    const failed = new Error('bank timeout');
    const settled = await settleError(
      writ.execute(action, async (ctx) => {
        await writ.settle(ctx.writ.id, { status: 'cancelled' });
        throw failed;
      }),
    );
    expect(settled).toMatchObject({
      code: 'WRIT_INVALID',
      message: expect.stringMatching(/the tool had failed/),
    });
    expect(settled.cause).toBe(failed);
    // A store closed meanwhile throws no WritError of its own: the failure is the store's.
    const closed = await settleError(
      writ.execute(action, async () => {
        await writ.close();
        throw failed;
      }),
    );
    expect(closed).toMatchObject({
      code: 'STORE_FAILURE',
      message: expect.stringMatching(/closed/),
    });
    expect(closed.cause).toBe(failed);
  });
});

describe('a store that rejects with something other than an Error', () => {
  it('still gets a denial, STORE_UNAVAILABLE, not an exception from authorize', async () => {
    const inner = memoryStore();
    const store = new Proxy(inner, {
      get(target, name) {
        if (name === 'authorize') return () => Promise.reject('disk full');
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const writ = createWrit({ policy: POLICY, store });
    const decided = await writ.authorize({
      tool: 't',
      principal: { id: 'p' },
      session: { id: 's' },
    });
    expect(decided).toMatchObject({ outcome: 'deny' });
    expect(decided.reasons).toEqual([
      { code: 'STORE_UNAVAILABLE', message: expect.any(String), error: 'disk full' },
    ]);
  });
});

describe('approvals through the engine', () => {
  it('stops waiting for an approval after its timeout even when the clock stands still', async () => {
    const writ = createWrit({
      policy: 'version: 1\ntools:\n  t:\n    - require_approval: true\n',
      clock: manualClock(Date.parse('2026-11-23T10:00:00Z')),
    });
    let ran = false;
    const waited = await writ.execute(
      { tool: 't', principal: { id: 'p' }, session: { id: 's' } },
      () => {
        ran = true;
      },
      { waitForApproval: { timeoutMs: 60, pollMs: 20 } },
    );
    expect(waited.outcome).toBe('approval_required');
    expect(ran).toBe(false);
  });

  it('decides again only once the person has decided, not on every poll', async () => {
    const store = memoryStore();
    const writ = createWrit({
      policy: 'version: 1\ntools:\n  t:\n    - require_approval: true\n',
      store,
    });
    let approvalId: string | undefined;
    const waiting = writ.execute(
      { tool: 't', principal: { id: 'p' }, session: { id: 's' } },
      () => 'done',
      { waitForApproval: { timeoutMs: 10_000, pollMs: 5 } },
    );
    // Several polls pass while the request is pending…
    for (let tries = 0; approvalId === undefined && tries < 100; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      approvalId = (await writ.approvals.list('pending'))[0]?.id;
    }
    await new Promise((resolve) => setTimeout(resolve, 60));
    await writ.approvals.approve(approvalId!, { approver: 'alice' });
    expect(await waiting).toMatchObject({ outcome: 'allow', result: 'done' });
    // …and the log holds one decision asking and one allowing, not one per poll.
    const decisions = (await store.readLog(0, 1_000)).flatMap((e) =>
      e.decision ? [e.decision.outcome] : [],
    );
    expect(decisions).toEqual(['approval_required', 'allow']);
  });

  it('an approval that comes after the request grew too old waits for a new request of the same call', async () => {
    const policy = `version: 1
tools:
  t:
    - require_approval: true
replay:
  require_nonce: true
  max_age: 1m
`;
    const clock = manualClock('2026-11-23T10:00:00Z');
    const writ = createWrit({ policy, clock });
    const call = (nonce: string) => ({
      tool: 't',
      principal: { id: 'p' },
      session: { id: 's' },
      nonce,
      issuedAt: new Date(clock.now()).toISOString(),
    });
    let runs = 0;
    const waiting = writ.execute(call('n-1'), () => ++runs, {
      waitForApproval: { timeoutMs: 10_000, pollMs: 5 },
    });
    let pending: string | undefined;
    while (pending === undefined) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      pending = (await writ.approvals.list('pending'))[0]?.id;
    }
    // The person takes longer than the request's max_age: the signed time cannot be sent
    // again, so the wait ends with REQUEST_EXPIRED and the tool does not run…
    clock.advance(2 * 60_000);
    await writ.approvals.approve(pending, { approver: 'alice' });
    const expired = await waiting;
    expect([expired.outcome, expired.decision.reasons[0]?.code]).toEqual([
      'deny',
      'REQUEST_EXPIRED',
    ]);
    expect(runs).toBe(0);
    // …and the approval is not used up: the same call, sent anew, runs on it.
    expect(await writ.execute(call('n-2'), () => ++runs)).toMatchObject({
      outcome: 'allow',
      result: 1,
    });
    expect((await writ.approvals.get(pending))?.status).toBe('consumed');
  });

  it('waits no longer than its timeout when the poll interval is longer', async () => {
    const policy = 'version: 1\ntools:\n  t:\n    - require_approval: true\n';
    const action = { tool: 't', principal: { id: 'p' }, session: { id: 's' } };
    // With the system clock, and with one that stands still.
    for (const writ of [
      createWrit({ policy }),
      createWrit({ policy, clock: manualClock(Date.parse('2026-11-23T10:00:00Z')) }),
    ]) {
      const started = performance.now();
      const waited = await writ.execute(action, () => 1, {
        waitForApproval: { timeoutMs: 100, pollMs: 3_000 },
      });
      expect(waited.outcome).toBe('approval_required');
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });

  it('checks the approver before any store sees it', async () => {
    const inner = memoryStore();
    const decided: unknown[] = [];
    // A store that would take any approver: the engine must not rely on the store to refuse.
    const store = new Proxy(inner, {
      get(target, name) {
        if (name === 'decideApproval')
          return (...args: unknown[]) => {
            decided.push(args);
            return Promise.reject(new Error('not expected'));
          };
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const writ = createWrit({ policy: POLICY, store });
    for (const by of [{ approver: '' }, undefined, { approver: 'alice', note: 42 }]) {
      await expect(writ.approvals.approve('apr_x', by as never)).rejects.toMatchObject({
        code: 'USAGE',
      });
      await expect(writ.approvals.deny('apr_x', by as never)).rejects.toMatchObject({
        code: 'USAGE',
      });
    }
    expect(decided).toEqual([]);
  });
});

describe('amounts stay finite', () => {
  it('refuses a cost so large that the budget would overflow to Infinity', async () => {
    // An infinite spent is written to JSON as null: on SQLite the budget would read back
    // as empty. Every amount is bounded instead.
    const policy = `${POLICY}budgets:\n  spend:\n    limit: 1000\n    window: lifetime\n    cost: 'double(args.amount)'\n`;
    const writ = createWrit({ policy });
    const call = (amount: number) =>
      writ.authorize({ tool: 't', args: { amount }, principal: { id: 'p' }, session: { id: 's' } });
    const ok = await call(400);
    await expect(writ.settle(ok.writ!, { status: 'succeeded', cost: 1.8e299 })).rejects.toThrow(
      /settle cost must be a number from 0 to 1000000000000000, not 1.8e\+299/,
    );
    expect((await call(1e300)).reasons[0]).toMatchObject({
      code: 'CONDITION_ERROR',
      rule: 'budgets.spend.cost',
      error: 'a cost must be a number from 0 to 1000000000000000',
    });
    await writ.settle(ok.writ!, { status: 'succeeded', cost: MAX_AMOUNT });
    expect(await writ.budgets()).toMatchObject([{ spent: MAX_AMOUNT, held: 0 }]);
    expect((await call(1)).reasons[0]?.code).toBe('BUDGET_EXHAUSTED');
  });
});

describe('guard', () => {
  it('runs the tool with the arguments it authorized, whatever the caller changes meanwhile', async () => {
    const policy = `version: 1\ntools:\n  pay:\n    - allow: 'args.amount <= 100'\n`;
    const writ = createWrit({ policy });
    const ran: unknown[] = [];
    const pay = writ.guard('pay', (args: { to: string; amount: number }) => ran.push(args), {
      principal: { id: 'p' },
      session: 's',
    });
    const args = { to: 'bob', amount: 50 };
    const pending = pay(args);
    // While authorize awaits the store, the caller's object changes.
    Object.assign(args, { to: 'mallory', amount: 100_000 });
    expect((await pending).outcome).toBe('allow');
    expect(ran).toEqual([{ to: 'bob', amount: 50 }]);
    expect(Object.getPrototypeOf(ran[0])).toBe(Object.prototype);
  });

  it('takes each call its own nonce and time, as a policy with replay protection asks', async () => {
    const policy = `version: 1
tools:
  pay:
    - allow: true
replay:
  require_nonce: true
  max_age: 5m
`;
    const clock = manualClock('2026-11-23T10:00:00Z');
    const writ = createWrit({ policy, clock });
    let runs = 0;
    const pay = writ.guard('pay', () => ++runs, { principal: { id: 'p' }, session: 's' });
    expect((await pay({})).decision.reasons[0]?.code).toBe('NONCE_REQUIRED');
    const call = { nonce: 'n-1', issuedAt: '2026-11-23T10:00:00Z' };
    expect(await pay({}, call)).toMatchObject({ outcome: 'allow', result: 1 });
    // The same nonce again is a replayed request, refused; the tool ran once.
    expect((await pay({}, call)).decision.reasons[0]?.code).toBe('NONCE_REPLAYED');
    expect(runs).toBe(1);
  });
});

describe('what the log keeps of redacted values', () => {
  const REDACTING = [
    'version: 1',
    'tools:',
    '  login:',
    '    - forbid: \'has(args.pw) && (url.host(args.pw) == "x" || args[args.pw] == 1)\'',
    '    - forbid: \'has(args.probe) && url.host(session.attrs.token) == "x"\'',
    '    - allow: true',
    'rate_limits:',
    "  per-card: { match: 'has(args.card)', per: 'args.card', rate: 1/1h, burst: 1 }",
    'budgets:',
    "  card-spend: { match: 'has(args.card)', per: 'args.card', limit: 1000, window: lifetime, cost: 10 }",
    'redact: [args.pw, args.card, session.attrs.token]',
    '',
  ].join('\n');

  it('logs no digest over the whole call that would check guesses at a hidden argument', async () => {
    const policy = loadPolicy(
      "version: 1\ntools:\n  charge:\n    - allow: true\nidempotency:\n  charges: { match: 'true', ttl: 1h }\nredact: [args.pin]\n",
    );
    const store = memoryStore();
    const writ = createWrit({ policy, store });
    const call = {
      tool: 'charge',
      args: { pin: '4821', amount: 10 },
      principal: { id: 'a' },
      session: { id: 's' },
    };
    const decided = await writ.authorize(call);
    const parsed = parseAction(call);
    if (!parsed.ok) throw new Error('the call is valid');
    const text = JSON.stringify(await store.readLog(0, 10));
    // The decision the caller gets carries the action digest; the log carries neither it nor
    // the idempotency key derived from the arguments, each a test of a guessed pin.
    const derived = derivedKeyDigest(parsed.action);
    expect(decided.actionDigest).toBe(actionDigest(parsed.action));
    expect(text).not.toContain(decided.actionDigest.slice(7));
    expect(text).not.toContain(derived);
    expect(text).toContain('"charges:[redacted]"');
    // A call with nothing hidden in its arguments logs both as they are.
    const plain = await writ.authorize({ ...call, args: { amount: 10 } });
    expect(JSON.stringify(await store.readLog(0, 10))).toContain(plain.actionDigest);
    // Replayed under the same policy, nothing changes: the hidden key is compared as logged.
    const replayed = await replayLog(await store.readLog(0, 10), policy);
    expect([replayed.decisions, replayed.unchanged, replayed.changed]).toEqual([2, 2, []]);
  });

  it('replays a signed call whose arguments were hidden as not replayable, not as changed', async () => {
    const policy = loadPolicy(
      "version: 1\ntools:\n  pay:\n    - allow: 'args.amount < 100.0'\nreplay:\n  keys:\n    p: { hmac_secret_env: WRIT_TEST_HMAC }\nredact: [args.card]\n",
    );
    const key = 'an hmac key for this test';
    const store = memoryStore();
    const writ = createWrit({ policy, store, secrets: () => key });
    const call: Record<string, unknown> = {
      tool: 'pay',
      args: { amount: 5, card: '4111111111111111' },
      principal: { id: 'p' },
      session: { id: 's' },
    };
    call.signature = `hmac-sha256:${createHmac('sha256', key)
      .update(signingPayload(call as never))
      .digest('base64')}`;
    expect((await writ.authorize(call)).outcome).toBe('allow');
    const replayed = await replayLog(await store.readLog(0, 10), policy);
    expect([replayed.changed, replayed.notReplayable.map((d) => d.paths)]).toEqual([
      [],
      [['signature']],
    ]);
  });

  it('keys the digests of redacted values with the secret redact_key_env names', async () => {
    const policy = loadPolicy(`${REDACTING}redact_key_env: WRIT_TEST_REDACT_KEY\n`);
    const key = 'k'.repeat(32);
    const secrets = (name: string) => (name === 'WRIT_TEST_REDACT_KEY' ? key : undefined);
    const store = memoryStore();
    const writ = createWrit({ policy, store, clock: manualClock(0), secrets });
    await writ.sessions.open('s1', { token: 'TOKSECRET' });
    await writ.authorize({
      tool: 'login',
      args: { pw: 'hunter2' },
      principal: { id: 'p' },
      session: { id: 's1' },
    });
    const keyed = (value: unknown) =>
      `hmac-sha256:${createHmac('sha256', key).update(JSON.stringify(value)).digest('hex')}`;
    const [opened, decided] = await store.readLog(0, 10);
    expect(opened?.session?.attrs).toEqual({ token: keyed('TOKSECRET') });
    expect(decided?.decision?.action.args).toEqual({ pw: keyed('hunter2') });
    // The key is needed from the start, and must be worth the name.
    for (const [given, message] of [
      [undefined, /redact_key_env names WRIT_TEST_REDACT_KEY, which is not set/],
      ['short', /which holds fewer than 16 characters/],
    ] as const)
      expect(() => createWrit({ policy, secrets: () => given })).toThrow(message);
    // Replaying the log keeps nothing, and needs no key.
    expect(process.env.WRIT_TEST_REDACT_KEY).toBeUndefined();
    const replayed = await replayLog(await store.readLog(0, 10), policy);
    // (The policy reads the password, so that decision is reported, not guessed.)
    expect([replayed.decisions, replayed.notReplayable.map((d) => d.paths)]).toEqual([
      1,
      [['args.pw', 'session.attrs.token']],
    ]);
  });

  it('no reason quotes a redacted argument, and no session entry a redacted attribute', async () => {
    const store = memoryStore();
    const writ = createWrit({ policy: loadPolicy(REDACTING), store, clock: manualClock(0) });
    await writ.sessions.open('s1', { token: 'TOKSECRET', team: 'ops' });
    const decision = await writ.authorize({
      tool: 'login',
      args: { pw: 'S3CRETxyz' },
      principal: { id: 'agent' },
      session: { id: 's1' },
    });
    // The caller, who sent it, still sees why; the log does not keep it.
    expect(decision.reasons[0]).toMatchObject({ code: 'CONDITION_ERROR' });
    expect(decision.reasons[0]!.error).toContain('S3CRETxyz');
    const log = await store.readLog(0, 10);
    const text = JSON.stringify(log);
    expect(text).not.toContain('S3CRET');
    expect(text).not.toContain('TOKSECRET');
    expect(log[0]!.session!.attrs).toEqual({ token: digestJson('TOKSECRET'), team: 'ops' });
    expect(log[1]!.decision!.reasons[0]!.error).toContain('[redacted]');
    // A hidden attribute of the opened session, quoted by a condition's error; a key built
    // from a hidden argument, in a reservation and in the reason that refuses the next call.
    const who = { principal: { id: 'agent' }, session: { id: 's1' } };
    const quoted = await writ.authorize({ ...who, tool: 'login', args: { probe: 1 } });
    expect(quoted.reasons[0]!.error).toContain('TOKSECRET');
    const card = { ...who, tool: 'login', args: { card: '4111111111111111' } };
    const paid = await writ.authorize(card);
    expect(paid.outcome).toBe('allow');
    // A settlement's overage names the budget's key: hidden in the log too.
    const settled = await writ.settle(paid.writ!, { status: 'succeeded', cost: 50 });
    expect(settled.overage).toEqual({ 'card-spend:4111111111111111': 40 });
    expect((await writ.authorize(card)).reasons[0]).toMatchObject({
      code: 'RATE_LIMITED',
      key: 'per-card:4111111111111111',
    });
    const all = JSON.stringify(await store.readLog(0, 10));
    for (const secret of ['S3CRET', 'TOKSECRET', '4111111111111111'])
      expect(all).not.toContain(secret);
    expect(all).toContain('"key":"per-card:[redacted]"');
    expect(all).toContain('"overage":{"card-spend:[redacted]":40}');
    // The store keeps the trusted attributes themselves: policies read them.
    expect((await writ.sessions.get('s1'))!.attrs).toEqual({ token: 'TOKSECRET', team: 'ops' });
    expect(await store.verifyLog()).toMatchObject({ ok: true, entries: 6 });
  });

  it('a call refused before anyone is asked shows no hidden key in the log', async () => {
    const store = memoryStore();
    const policy = [
      'version: 1',
      'tools:',
      "  pay: [{ require_approval: 'args.amount > 100.0' }, { allow: true }]",
      'idempotency:',
      "  once: { match: 'true', key: 'args.card', ttl: 1h }",
      'redact: [args.card]',
      '',
    ].join('\n');
    const writ = createWrit({ policy: loadPolicy(policy), store, clock: manualClock(0) });
    const pay = (amount: number) => ({
      tool: 'pay',
      args: { card: '4111111111111111', amount },
      principal: { id: 'agent' },
      session: { id: 's1' },
    });
    expect((await writ.authorize(pay(5))).outcome).toBe('allow');
    // The same key for another call that would need approval: refused in the step that
    // would ask. The caller sees the key; the log hides it, as it does for authorize.
    const refused = await writ.authorize(pay(500));
    expect(refused.outcome).toBe('deny');
    expect(refused.reasons[0]).toMatchObject({
      code: 'IDEMPOTENCY_MISMATCH',
      key: 'once:4111111111111111',
    });
    expect(await writ.approvals.list()).toEqual([]);
    const log = await store.readLog(0, 10);
    expect(log[1]!.decision).toMatchObject({ id: refused.id, outcome: 'deny' });
    expect(log[1]!.decision!.reasons[0]!.key).toBe('once:[redacted]');
    expect(JSON.stringify(log)).not.toContain('4111111111111111');
  });
});

describe('execute runs what was authorized', () => {
  it('hands the tool the authorized arguments, whatever the caller does to its object', async () => {
    const store = memoryStore();
    const writ = createWrit({
      policy: loadPolicy(
        [
          'version: 1',
          'tools:',
          "  pay: [{ allow: 'args.amount <= 100.0' }]",
          'budgets:',
          "  spend: { match: 'true', limit: 1000, window: lifetime, cost: 'args.amount' }",
          '',
        ].join('\n'),
      ),
      store,
      clock: manualClock(0),
    });
    const args = { amount: 10 };
    const action = { tool: 'pay', args, principal: { id: 'agent' }, session: { id: 's' } };
    let ran: unknown;
    const done = writ.execute(action, (ctx) => {
      ran = ctx.args;
      return 'paid';
    });
    // The caller changes its object after handing it over, before the tool runs.
    args.amount = 10_000;
    expect((await done).outcome).toBe('allow');
    expect(ran).toEqual({ amount: 10 });
    expect(await writ.budgets()).toMatchObject([{ spent: 10 }]);
    const logged = (await store.readLog(0, 10))[0]!.decision!.action.args;
    expect(logged).toEqual({ amount: 10 });
    // What authorize accepts, execute runs: a time whose offset crosses into year 10000
    // parses, though it could not be printed back as RFC 3339.
    const late = { ...action, args: { amount: 1 }, issuedAt: '9999-12-31T23:00:00-05:00' };
    expect((await writ.authorize(late)).outcome).toBe('allow');
    expect((await writ.execute(late, () => 'paid')).outcome).toBe('allow');
  });
});

describe('shadow mode', () => {
  const policy = `version: 1
mode: shadow
tools:
  read:
    - forbid: 'true'
  pay:
    - allow: true
budgets:
  spend: { match: 'tool == "pay"', limit: 10, window: lifetime, cost: '10' }
labels:
  tainted:
    when: 'tool == "read" && has(session.attrs.untrusted_source)'
flow:
  - forbid: '"tainted" in session.labels && tool == "pay"'
`;
  const call = (tool: string) => ({ tool, principal: { id: 'p' }, session: { id: 's1' } });

  it('labels a refused call that runs from the session as opened, not from the request', async () => {
    const writ = createWrit({ policy, clock: manualClock(0) });
    await writ.sessions.open('s1', { untrusted_source: true });
    const read = await writ.authorize(call('read'));
    expect([read.outcome, read.shadow?.outcome]).toEqual(['allow', 'deny']);
    await writ.settle(read.writ!, { status: 'succeeded' });
    expect((await writ.sessions.get('s1'))?.labels).toEqual(['tainted']);
    const pay = await writ.authorize(call('pay'));
    expect(pay.shadow?.reasons[0]).toMatchObject({ code: 'DENIED_BY_RULE', rule: 'flow[0]' });
  });

  it('replays a log of refusals by invariants unchanged (replay decides unlogged)', async () => {
    const store = memoryStore();
    const writ = createWrit({ policy, store, clock: manualClock(0) });
    for (let i = 0; i < 3; i++) {
      const paid = await writ.authorize(call('pay'));
      expect(paid.outcome).toBe('allow');
      await writ.settle(paid.writ!, { status: 'succeeded' });
    }
    const replayed = await replayLog(await store.readLog(0, 100), loadPolicy(policy));
    expect([replayed.decisions, replayed.changed]).toEqual([3, []]);
  });
});
