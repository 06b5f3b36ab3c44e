import { expect } from 'vitest';
import { type ManualClock, manualClock, sequentialIds } from '../core/clock.js';
import type { Decision, Reason, Writ } from '../core/decision.js';
import { isoTime } from '../core/decision.js';
import { WritError } from '../core/errors.js';
import { createWrit, type WritEngine, type WritOptions } from '../engine/writ.js';
import type { Store } from '../store/types.js';

/** What a case needs to know about the suite run. */
export interface CaseContext {
  propertyRuns: number;
}

/** One case of the conformance suite: a name (what `skip` takes) and a body. */
export interface ConformanceCase {
  name: string;
  run(factory: () => Store | Promise<Store>, ctx: CaseContext): Promise<void>;
  timeoutMs?: number;
}

/** A fresh store, a manual clock at {@link T0}, and engines over them. */
export interface Harness {
  store: Store;
  clock: ManualClock;
  /**
   * An engine with `policy` (YAML text) over this store (unless `options.store` wraps it),
   * the shared clock and sequential ids.
   */
  writ(policy: string, options?: Omit<WritOptions, 'policy' | 'clock'>): WritEngine;
}

/** Where every case starts: a Monday morning, UTC. */
export const T0 = Date.parse('2026-11-23T10:00:00.000Z');
export const SECOND = 1_000;
export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 86_400_000;

export const iso = isoTime;

/** A case that runs `body` against one fresh store, closing it afterwards. */
export function example(name: string, body: (h: Harness) => Promise<void>): ConformanceCase {
  return {
    name,
    async run(factory) {
      const store = await factory();
      const clock = manualClock(T0);
      const h: Harness = {
        store,
        clock,
        writ: (policy, options = {}) =>
          createWrit({ ids: sequentialIds(), store, ...options, policy, clock }),
      };
      try {
        await body(h);
      } finally {
        await store.close();
      }
    },
  };
}

/** The principal most cases act as. */
export const AGENT = { id: 'agent-7', tenant: 'tenant-a' };

/** An action by {@link AGENT} in session `run-1`, with `extra` fields merged in. */
export function action(
  tool: string,
  args: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return { tool, args, principal: AGENT, session: { id: 'run-1' }, ...extra };
}

/** Asserts an `allow` and returns its writ. */
export function allowed(decision: Decision): Writ {
  expect(decision.outcome, JSON.stringify(decision.reasons)).toBe('allow');
  expect(decision.writ).toBeDefined();
  return decision.writ!;
}

/**
 * Asserts a `deny` whose first reason is exactly `expected`: the code, and `rule`, `key`,
 * `remaining` and `resetAt` as given — a field left out of `expected` must be absent.
 */
export function denied(
  decision: Decision,
  expected: Pick<Reason, 'code'> & Partial<Pick<Reason, 'rule' | 'key' | 'remaining' | 'resetAt'>>,
): void {
  expect(decision.outcome, JSON.stringify(decision.reasons)).toBe('deny');
  expect(decision.writ).toBeUndefined();
  const first = decision.reasons[0]!;
  const picked: Partial<Reason> = { code: first.code };
  for (const field of ['rule', 'key', 'remaining', 'resetAt'] as const) {
    if (field in expected || (field !== 'rule' && first[field] !== undefined))
      (picked as Record<string, unknown>)[field] = first[field];
  }
  expect(picked).toEqual(expected);
}

/** Asserts that `promise` rejects with a {@link WritError} carrying `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: WritError['code']) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a WritError ${code}`).toBeInstanceOf(WritError);
  expect((error as WritError).code).toBe(code);
}
