import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime } from './decision.js';

const MAX_TIME = 8.64e15;
const toIso = (ms: number) => new Date(ms).toISOString();
/** What `toISOString` does with `ms`: its text, or the error it throws. */
const outcome = (format: (ms: number) => string, ms: number) => {
  try {
    return format(ms);
  } catch (error) {
    return error instanceof RangeError ? 'RangeError' : `unexpected ${String(error)}`;
  }
};

describe('isoTime', () => {
  it('writes what toISOString writes for every whole ms a Date holds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TIME }), (ms) => {
        expect(isoTime(ms)).toBe(toIso(ms));
      }),
      { numRuns: 20_000 },
    );
    // Times a few days apart, as a run sees them: the cached day is reused and replaced.
    const start = 1_795_000_000_000;
    fc.assert(
      fc.property(fc.integer({ min: start, max: start + 3 * 86_400_000 }), (ms) => {
        expect(isoTime(ms)).toBe(toIso(ms));
      }),
      { numRuns: 20_000 },
    );
  });

  it('is exact around day, year and range boundaries, days apart and back again', () => {
    const times = [
      0,
      1,
      999,
      1000,
      59_999,
      60_000,
      3_599_999,
      3_600_000,
      86_399_999,
      86_400_000,
      951_782_400_000,
      951_868_799_999,
      253_402_300_799_999,
      253_402_300_800_000,
      MAX_TIME - 1,
      MAX_TIME,
      1_795_000_000_000,
      5,
      1_795_000_000_000,
    ];
    for (const ms of times) expect(isoTime(ms)).toBe(toIso(ms));
  });

  it('does what toISOString does with anything else: negative, fractional, out of range', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: -MAX_TIME - 1000, max: -1 }),
          fc.integer({ min: MAX_TIME + 1, max: Number.MAX_SAFE_INTEGER }),
          fc.double({ noNaN: false }),
          fc.constantFrom(-0, 0.5, -0.5, 86_399_999.9, MAX_TIME + 0.5, Number.NaN, Infinity),
        ),
        (ms) => {
          expect(outcome(isoTime, ms)).toBe(outcome(toIso, ms));
        },
      ),
      { numRuns: 5_000 },
    );
  });
});
