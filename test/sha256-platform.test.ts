import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { installSha256, sha256Hex } from '../src/core/digest.js';
import '../src/runtime/system.js';

describe('the native SHA-256 the Node runtime installs', () => {
  it('computes exactly what the portable implementation computes, on any text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 300 }), (text) => {
        expect(sha256Hex(text)).toBe(bytesToHex(sha256(utf8ToBytes(text))));
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a function that is not SHA-256', () => {
    expect(() => installSha256((text) => text)).toThrow(/not SHA-256/);
  });
});
