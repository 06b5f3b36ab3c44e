/**
 * The differential conformance check of the two CEL libraries over the corpus.
 */
import { parseAction } from '../../src/core/action.js';
import { CONTEXTS, EXPRESSIONS, KNOWN_DIVERGENCES, type KnownDivergence } from './corpus.js';
import { bufCel, celJs, type Result } from './engines.js';

/** One expression over one context, as each library answered. */
export interface CaseResult {
  group: string;
  expression: string;
  context: string;
  celJs: Result;
  bufCel: Result;
  agree: boolean;
  /** The known divergence that explains a disagreement (or that expected one). */
  known?: KnownDivergence;
}

/** Both results say the same: the same value, or both an error (messages differ). */
export function same(a: Result, b: Result): boolean {
  if (a.kind === 'value' && b.kind === 'value') return a.value === b.value;
  return a.kind !== 'value' && b.kind !== 'value' && a.kind === b.kind;
}

function knownFor(expression: string, context: string): KnownDivergence | undefined {
  return KNOWN_DIVERGENCES.find(
    (d) =>
      d.expression === expression && (d.contexts === undefined || d.contexts.includes(context)),
  );
}

/** Evaluates every expression of the corpus over every context with both libraries. */
export function runConformance(): CaseResult[] {
  const contexts = Object.entries(CONTEXTS).map(([name, request]) => {
    const parsed = parseAction(request);
    if (!parsed.ok) throw new Error(`context ${name} is invalid: ${JSON.stringify(parsed.issues)}`);
    return [name, parsed.action] as const;
  });
  const results: CaseResult[] = [];
  for (const [group, expression] of EXPRESSIONS) {
    const a = celJs(expression);
    const b = bufCel(expression);
    for (const [context, action] of contexts) {
      const ra = a(action);
      const rb = b(action);
      const known = knownFor(expression, context);
      results.push({
        group,
        expression,
        context,
        celJs: ra,
        bufCel: rb,
        agree: same(ra, rb),
        ...(known && { known }),
      });
    }
  }
  return results;
}
