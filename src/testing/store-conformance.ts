import { describe, it } from 'vitest';
import type { Store } from '../store/types.js';
import { CONFORMANCE_CASES } from './conformance-cases.js';
import type { ConformanceCase } from './harness.js';
import { MODEL_CASES } from './model-property.js';

/** Makes a fresh, empty store; called once per test (and once per property run). */
export type StoreFactory = () => Store | Promise<Store>;

/** Options of {@link describeStoreConformance}. */
export interface StoreConformanceOptions {
  /**
   * Cases this store does not run, by case name, each with the reason why. A skipped case
   * still shows up (as skipped, with its reason); a name that is no case fails the suite.
   */
  skip?: Record<string, string>;
  /** Runs of each property-based case (default 100). Raise it for a long soak. */
  propertyRuns?: number;
}

/** Every case of the suite, in the order it runs. */
function allCases(): ConformanceCase[] {
  return [...CONFORMANCE_CASES, ...MODEL_CASES];
}

/** The names of every case, as `options.skip` takes them. */
export function storeConformanceCaseNames(): string[] {
  return allCases().map((c) => c.name);
}

/**
 * Registers writ's store conformance suite with vitest: every semantic of the {@link Store}
 * interface — budgets, rate limits, concurrency leases, idempotency, nonces, writs,
 * sessions, approvals, shadow mode, failing closed, the decision log, sweeps — as exact cases, plus
 * property-based runs that check the store against an independent reference model on random
 * interleavings. Each case gets a fresh store from `factory` and closes it.
 *
 * @example
 * // test/my-store.test.ts
 * import { describeStoreConformance } from 'writ/testing';
 * describeStoreConformance('my-store', () => myStore({ url: process.env.MY_STORE_URL }), {
 *   skip: { 'rate limits: tokens refill over time': 'uses the server clock (issue #12)' },
 * });
 */
export function describeStoreConformance(
  name: string,
  factory: StoreFactory,
  options: StoreConformanceOptions = {},
): void {
  const cases = allCases();
  const skip = options.skip ?? {};
  const known = new Set(cases.map((c) => c.name));
  const runs = options.propertyRuns ?? 100;

  describe(`store conformance: ${name}`, () => {
    const unknown = Object.keys(skip).filter((k) => !known.has(k));
    if (unknown.length > 0) {
      it('skips only cases that exist', () => {
        throw new Error(`options.skip names no case: ${unknown.join(', ')}`);
      });
    }
    for (const c of cases) {
      const why = skip[c.name];
      if (why !== undefined) {
        it.skip(`${c.name} — skipped: ${why}`, () => {});
        continue;
      }
      it(c.name, () => c.run(factory, { propertyRuns: runs }), c.timeoutMs ?? 20_000);
    }
  });
}
