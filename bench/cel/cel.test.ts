import { describe, expect, it } from 'vitest';
import { runConformance } from './conformance.js';
import { KNOWN_DIVERGENCES } from './corpus.js';

/**
 * writ's CEL library (cel-js) against a second implementation (@bufbuild/cel) on the
 * corpus: every case agrees unless it is a known divergence, and every known divergence
 * still diverges, so the list stays true.
 */
describe('CEL conformance: cel-js vs @bufbuild/cel', () => {
  const results = runConformance();

  it('covers the corpus', () => {
    expect(results.length).toBeGreaterThan(200);
  });

  it('agrees wherever no divergence is known', () => {
    const unexplained = results
      .filter((r) => !r.agree && !r.known)
      .map((r) => ({ case: `${r.context} :: ${r.expression}`, celJs: r.celJs, bufCel: r.bufCel }));
    expect(unexplained).toEqual([]);
  });

  it.each(KNOWN_DIVERGENCES.map((d) => [d.expression, d] as const))(
    'still diverges on %s, for a stated reason',
    (_, divergence) => {
      expect(divergence.reason.length).toBeGreaterThan(20);
      const cases = results.filter((r) => r.known === divergence);
      expect(cases.length).toBeGreaterThan(0);
      for (const c of cases) expect(c.agree, `${c.context} :: ${c.expression}`).toBe(false);
    },
  );
});
