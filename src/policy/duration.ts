const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+)(ms|s|m|h|d)$/;

/**
 * The longest duration a policy may give: 100 years. Longer is surely a slip, and times
 * computed from it (a window's end, an expiry) must stay within what a date can hold.
 */
export const MAX_DURATION_MS = 36_500 * UNIT_MS.d;

/**
 * Parses `500ms`, `30s`, `15m`, `24h`, `1d` into milliseconds; `undefined` if malformed,
 * zero or longer than {@link MAX_DURATION_MS}.
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  return ms > 0 && ms <= MAX_DURATION_MS ? ms : undefined;
}

/** Parses a rate such as `10/1m` or `5/s` into a count per period. */
export function parseRate(text: string): { count: number; periodMs: number } | undefined {
  const match = /^(\d+)\/(\d*)(ms|s|m|h|d)$/.exec(text);
  if (!match) return undefined;
  const count = Number(match[1]);
  const periodMs = parseDuration(`${match[2] || '1'}${match[3]}`);
  return count > 0 && periodMs !== undefined ? { count, periodMs } : undefined;
}
