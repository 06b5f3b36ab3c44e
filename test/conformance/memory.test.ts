import { describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/store/memory/index.js';
import { describeStoreConformance, storeConformanceCaseNames } from '../../src/testing/index.js';

describeStoreConformance('memory', () => memoryStore());

describe('the conformance suite itself', () => {
  it('names every case uniquely, so that a skip names exactly one', () => {
    const names = storeConformanceCaseNames();
    expect(names.length).toBeGreaterThan(50);
    expect(new Set(names).size).toBe(names.length);
  });
});
