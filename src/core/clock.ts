/**
 * Time and identity are injected so that the same inputs give byte-identical decisions.
 * Nothing in `src/core` or `src/policy` reads the real clock or randomness; the system
 * clock and random ids live in `src/runtime`.
 */

/** A source of the current time in milliseconds since the Unix epoch. */
export interface Clock {
  now(): number;
}

/** A clock that only moves when told to; for tests, replays and simulations. */
export interface ManualClock extends Clock {
  set(at: number | string): void;
  advance(ms: number): void;
}

/** A {@link ManualClock} starting at `start` (epoch ms or an RFC 3339 string). */
export function manualClock(start: number | string): ManualClock {
  let at = toEpochMs(start);
  return {
    now: () => at,
    set: (next) => {
      at = toEpochMs(next);
    },
    advance: (ms) => {
      at += ms;
    },
  };
}

function toEpochMs(at: number | string): number {
  const ms = typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(ms)) throw new RangeError(`not a time: ${String(at)}`);
  return ms;
}

/** A source of unique identifiers, one namespace per `kind` (`dec`, `wr`, `apr`, …). */
export interface IdSource {
  next(kind: string): string;
}

/**
 * Identifiers `kind_000001`, `kind_000002`, … — deterministic, for tests and replays. Two
 * engines counting from 1 on one store would give the same ids: one engine per store.
 */
export function sequentialIds(): IdSource {
  const counters = new Map<string, number>();
  return {
    next(kind) {
      const n = (counters.get(kind) ?? 0) + 1;
      counters.set(kind, n);
      return `${kind}_${String(n).padStart(6, '0')}`;
    },
  };
}
