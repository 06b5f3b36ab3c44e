import { z } from 'zod';
import { parseAction, parseRfc3339 } from '../core/action.js';
import type { ReasonCode } from '../core/codes.js';
import { REASONS } from '../core/codes.js';
import type { SourceIssue } from '../core/errors.js';
import { isJsonObject, issuesText, type JsonObject } from '../core/json.js';
import type { CompiledPolicy } from './compile.js';
import { buildContext, evaluateScope, labelsAfter, type ScopeVerdict } from './evaluate.js';
import { verdictWithPlan } from './plan.js';
import { YamlSourceFile } from './source.js';

/**
 * Policy unit tests in the spirit of `opa test`: a YAML file of cases, each an action (or a
 * sequence of steps in one session) with the expected outcome and, optionally, reason codes
 * and rules that must appear. Steps share their session: after a step that is allowed, the
 * policy's label rules apply, as they would when the call settles.
 */

const reasonCode = z.enum(Object.keys(REASONS) as [ReasonCode, ...ReasonCode[]], {
  error: 'expected a reason code',
});
const outcome = z.enum(['allow', 'deny', 'approval_required'], {
  error: 'expected allow, deny or approval_required',
});
const expectation = z.union(
  [
    outcome,
    z.strictObject({
      outcome,
      reasons: z.array(reasonCode).optional().describe('Codes that must all appear.'),
      rules: z
        .array(z.string())
        .optional()
        .describe('Rules that must all appear among the reasons.'),
    }),
  ],
  { error: 'expected allow, deny, approval_required or { outcome, reasons?, rules? }' },
);
const actionPart = z.record(z.string(), z.unknown(), { error: 'expected an action object' });
const approved = z
  .boolean()
  .optional()
  .describe('A person approved this exact call (as after an approval round trip).');
const step = z.strictObject({
  name: z.string().optional(),
  action: actionPart,
  approved,
  expect: expectation,
});
const testCase = z.strictObject({
  name: z.string({ error: 'every case needs a name' }),
  now: z.string().optional(),
  action: actionPart.optional(),
  approved,
  expect: expectation.optional(),
  steps: z.array(step).optional(),
});
const CasesSchema = z.strictObject({
  now: z.string().optional().describe('Evaluation time, RFC 3339 (default 2026-01-01T00:00:00Z).'),
  defaults: actionPart.optional().describe('Merged under every action: principal, session, …'),
  cases: z.array(testCase),
});

type Expectation = z.infer<typeof expectation>;

/** The result of one case. */
export interface CaseResult {
  name: string;
  /** Where the case is, `file:line:col`. */
  at: string;
  passed: boolean;
  /** For a failure: expected and actual, one line each per failing step. */
  failures: { step: string; expected: string; actual: string }[];
}

/** Runs a cases file against a policy; throws nothing, reports problems as issues. */
export function runPolicyTests(
  policy: CompiledPolicy,
  path: string,
  text: string,
): { ok: true; results: CaseResult[] } | { ok: false; issues: SourceIssue[] } {
  const parsed = YamlSourceFile.parse(path, text, CasesSchema, 'test cases');
  if (!parsed.ok) return parsed;
  const { file, document } = parsed;
  const issues: SourceIssue[] = [];
  const results: CaseResult[] = [];

  document.cases.forEach((c, i) => {
    const issue = (message: string) =>
      issues.push(file.issueAt(['cases', i], `${c.name}: ${message}`));
    const steps =
      c.steps ??
      (c.action && c.expect
        ? [
            {
              action: c.action,
              expect: c.expect,
              ...(c.approved !== undefined && { approved: c.approved }),
            },
          ]
        : undefined);
    if (!steps || (c.steps && (c.action || c.expect))) {
      issue('a case has either action and expect, or steps');
      return;
    }
    const nowText = c.now ?? document.now ?? '2026-01-01T00:00:00Z';
    const now = parseRfc3339(nowText);
    if (now === undefined) {
      issue(`now: ${nowText} is not an RFC 3339 time`);
      return;
    }
    const labels = new Set<string>();
    const failures: CaseResult['failures'] = [];
    for (const [j, s] of steps.entries()) {
      const input = mergeDefaults(document.defaults ?? {}, s.action);
      const parsedAction = parseAction(input);
      if (!parsedAction.ok) {
        issue(`step ${j + 1}: ${issuesText(parsedAction.issues)}`);
        return;
      }
      const action = parsedAction.action;
      const session = {
        attrs: action.session.attrs,
        labels: [...new Set([...action.session.labels, ...labels])].sort(),
      };
      const ctx = buildContext(action, now, session);
      const verdict = verdictWithPlan(
        policy,
        action,
        ctx,
        now,
        evaluateScope(policy, ctx, s.approved ?? false),
      );
      const mismatch = compare(s.expect, verdict);
      if (mismatch) {
        failures.push({
          step: steps.length > 1 ? `step ${j + 1} (${action.tool})` : action.tool,
          ...mismatch,
        });
      }
      if (verdict.outcome === 'allow')
        for (const label of labelsAfter(policy, ctx)) labels.add(label);
    }
    const { line, col } = file.issueAt(['cases', i], '');
    results.push({
      name: c.name,
      at: `${path}:${line}:${col}`,
      passed: failures.length === 0,
      failures,
    });
  });
  return issues.length > 0 ? { ok: false, issues } : { ok: true, results };
}

function mergeDefaults(
  defaults: Record<string, unknown>,
  action: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, value] of Object.entries(action)) {
    const base = out[key];
    out[key] =
      isJsonObject(base) && isJsonObject(value)
        ? { ...(base as JsonObject), ...(value as JsonObject) }
        : value;
  }
  return out;
}

function describe(outcome: string, codes: readonly string[], rules: readonly string[]): string {
  const parts = [...codes];
  if (rules.length > 0) parts.push(`rules: ${rules.join(', ')}`);
  return parts.length > 0 ? `${outcome} [${parts.join('; ')}]` : outcome;
}

function compare(
  expect: Expectation,
  verdict: ScopeVerdict,
): { expected: string; actual: string } | undefined {
  const wanted = typeof expect === 'string' ? { outcome: expect } : expect;
  const codes = verdict.reasons.map((r) => r.code);
  const rules = verdict.reasons.flatMap((r) => (r.rule ? [r.rule] : []));
  const ok =
    wanted.outcome === verdict.outcome &&
    (wanted.reasons ?? []).every((code) => codes.includes(code)) &&
    (wanted.rules ?? []).every((rule) => rules.includes(rule));
  if (ok) return undefined;
  return {
    expected: describe(wanted.outcome, wanted.reasons ?? [], wanted.rules ?? []),
    actual: describe(
      verdict.outcome,
      verdict.reasons.map((r) => (r.rule ? `${r.code} ${r.rule}` : r.code)),
      [],
    ),
  };
}
