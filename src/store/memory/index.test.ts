import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sealedText } from '../../log/entry.js';
import { TextLog } from './index.js';

describe('TextLog', () => {
  it('gives back every text appended, across buffers and beyond a buffer’s size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ maxLength: 5000 })), {
          maxLength: 400,
        }),
        (texts) => {
          const log = new TextLog();
          // Long enough to fill several buffers, and one longer than any buffer.
          const all = [
            ...texts,
            'é'.repeat(600_000),
            ...texts,
            'x'.repeat(TextLog.CHUNK_BYTES + 1),
          ];
          for (const text of all) log.append(text);
          expect(log.length).toBe(all.length);
          expect(all.map((_, i) => log.text(i + 1))).toEqual(all);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('stores an entry given as its body and hash as the sealed text, among other texts', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.boolean(),
            fc.oneof(fc.string({ unit: 'grapheme' }), fc.string({ maxLength: 5000 })),
          ),
          { maxLength: 300 },
        ),
        (items) => {
          const log = new TextLog();
          const hash = 'ab'.repeat(32);
          const big = { x: 'é'.repeat(600_000) };
          const all = [...items, [true, JSON.stringify(big)] as const, ...items];
          const expected: string[] = [];
          for (const [sealed, text] of all) {
            if (sealed) {
              const body = JSON.stringify({ text });
              log.appendSealed(body, hash);
              expected.push(sealedText(body, hash));
            } else {
              log.append(text);
              expected.push(text);
            }
          }
          expect(expected.map((_, i) => log.text(i + 1))).toEqual(expected);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('keeps filling buffers of its full size however long it grows', () => {
    const log = new TextLog();
    const texts = Array.from({ length: 40_000 }, (_, i) => `${i}:${'é'.repeat(i % 700)}`);
    for (const text of texts) log.append(text);
    expect(texts.every((text, i) => log.text(i + 1) === text)).toBe(true);
  });
});
