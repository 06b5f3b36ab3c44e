import { describe, expect, it } from 'vitest';
import { randomIds } from './system.js';

describe('randomIds', () => {
  it('makes ids of the kind, 32 hex digits, none repeated', () => {
    const ids = Array.from({ length: 5_000 }, () => randomIds.next('wr'));
    for (const id of ids) expect(id).toMatch(/^wr_[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // 80 random bits: ids made in the same millisecond still differ in their random part.
    expect(new Set(ids.map((id) => id.slice(15))).size).toBe(ids.length);
  });

  it('starts with the time, so an id made later sorts after one made earlier', async () => {
    const before = Date.now();
    const first = randomIds.next('dec');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = randomIds.next('dec');
    expect(first < second).toBe(true);
    expect(Number.parseInt(first.slice(4, 16), 16)).toBeGreaterThanOrEqual(before);
  });
});
