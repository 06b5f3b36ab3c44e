import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseAction } from '../../src/core/action.js';
import { buildContext, labelsAfter, runPolicyTests } from '../../src/policy/index.js';
import { loadPolicy } from '../../src/runtime/load-policy.js';
import {
  EXAMPLES_DIR,
  formatShare,
  generateCases,
  HARMFUL,
  measure,
  SUITES,
  type Suite,
  suiteDir,
} from './generate.js';

/**
 * The AgentDojo examples: every generated case and every hand-written bypass case passes
 * against its suite's policy, the generated cases are up to date, every injection runs after
 * untrusted content was read, and the figures in the README are the ones the cases give.
 */

const README = readFileSync(join(EXAMPLES_DIR, 'README.md'), 'utf8');

function read(suite: Suite, file: string): string {
  return readFileSync(join(suiteDir(suite), file), 'utf8');
}

function runCases(suite: Suite, file: string) {
  const policy = loadPolicy(join(suiteDir(suite), 'policy.yaml'));
  const run = runPolicyTests(policy, join(suiteDir(suite), file), read(suite, file));
  if (!run.ok) throw new Error(run.issues.map((i) => `${i.line}:${i.col} ${i.message}`).join('\n'));
  return run.results;
}

/** The part of the README under the `## <suite>` heading. */
function readmeSection(suite: Suite): string {
  const start = README.search(new RegExp(`^## ${suite}\\b`, 'im'));
  if (start < 0) throw new Error(`README.md has no "## ${suite}" section`);
  const next = README.slice(start + 3).search(/^## /m);
  return next < 0 ? README.slice(start) : README.slice(start, start + 3 + next);
}

interface CaseDoc {
  defaults: Record<string, unknown>;
  cases: {
    name: string;
    steps: {
      name: string;
      action: Record<string, unknown>;
      expect: string | { outcome: string };
    }[];
  }[];
}

describe.each(SUITES)('AgentDojo %s', (suite) => {
  const casesText = read(suite, 'cases.yaml');

  it('cases.yaml is what generate.ts writes from tasks.json and the hand-written files', () => {
    expect(casesText).toBe(generateCases(suite));
  });

  it.each(['cases.yaml', 'bypass-cases.yaml'])('every case of %s passes', (file) => {
    const results = runCases(suite, file);
    expect(results.length).toBeGreaterThan(10);
    const failed = results
      .filter((r) => !r.passed)
      .map((r) => `${r.name}: ${r.failures.map((f) => `${f.step}: ${f.actual}`).join('; ')}`);
    expect(failed).toEqual([]);
  });

  it('every injection runs after the session has read untrusted content', () => {
    const policy = loadPolicy(join(suiteDir(suite), 'policy.yaml'));
    const doc = parse(casesText) as CaseDoc;
    const pairs = doc.cases.filter((c) => c.name.startsWith('injection_task_'));
    expect(pairs.length).toBeGreaterThan(0);
    for (const c of pairs) {
      const userTask = c.name.split(' in ')[1]!;
      const labels = new Set<string>();
      for (const step of c.steps.filter((s) => s.name.startsWith(`${userTask} `))) {
        const outcome = typeof step.expect === 'string' ? step.expect : step.expect.outcome;
        if (outcome !== 'allow') continue; // a call that is not allowed does not run
        const parsed = parseAction({ ...doc.defaults, ...step.action });
        if (!parsed.ok) throw new Error(`${c.name}: ${JSON.stringify(parsed.issues)}`);
        for (const label of labelsAfter(policy, buildContext(parsed.action, 0))) labels.add(label);
      }
      expect([c.name, [...labels]]).toEqual([c.name, ['untrusted-content']]);
    }
  });

  it('harmful steps belong to injections, and every pair has at least one', () => {
    const doc = parse(casesText) as CaseDoc;
    for (const c of doc.cases) {
      const harmful = c.steps.filter((s) => s.name.endsWith(HARMFUL));
      expect(harmful.every((s) => s.name.startsWith('injection_task_'))).toBe(true);
      if (c.name.startsWith('injection_task_'))
        expect([c.name, harmful.length > 0]).toEqual([c.name, true]);
      else expect(harmful).toEqual([]);
    }
  });

  it('the README states the utility and security these cases give', () => {
    const { utility, security, pairs } = measure(casesText);
    const rows = README.split('\n')
      .filter((line) => line.startsWith('|'))
      .map((line) =>
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
    expect(rows.filter((cells) => cells[0] === suite)).toEqual([
      [suite, formatShare(utility), formatShare(security), formatShare(pairs)],
    ]);
  });

  it('the README explains every user task that is not allowed without a person', () => {
    const doc = parse(casesText) as CaseDoc;
    const needPerson = doc.cases
      .filter((c) => /^user_task_\d+$/.test(c.name))
      .filter((c) =>
        c.steps.some(
          (s) => (typeof s.expect === 'string' ? s.expect : s.expect.outcome) !== 'allow',
        ),
      )
      .map((c) => c.name);
    const explained = [...readmeSection(suite).matchAll(/^- \*\*(user_task_\d+)\*\*/gm)].map(
      (m) => m[1],
    );
    expect(explained).toEqual(needPerson);
  });
});
