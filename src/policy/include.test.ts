import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatIssue, PolicyError } from '../core/errors.js';
import { decideScope } from '../engine/decide.js';
import { loadPolicy } from '../runtime/load-policy.js';
import { compilePolicy } from './compile.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'writ-include-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes files under a fresh sub-directory and returns its path. */
function files(entries: Record<string, string>): string {
  const root = mkdtempSync(join(dir, 'case-'));
  for (const [name, text] of Object.entries(entries)) {
    mkdirSync(dirname(join(root, name)), { recursive: true });
    writeFileSync(join(root, name), text);
  }
  return root;
}

function errorsOf(path: string): string[] {
  try {
    loadPolicy(path);
  } catch (error) {
    if (error instanceof PolicyError) return error.issues.map(formatIssue);
    throw error;
  }
  throw new Error('the policy loaded, but errors were expected');
}

const request = (tool: string) => ({ tool, principal: { id: 'p' }, session: { id: 's' } });
const decide = (policy: ReturnType<typeof loadPolicy>, tool: string) =>
  decideScope(policy, request(tool), { now: 0, id: 'd' });

describe('include', () => {
  it('merges tools, flow and invariants from included files', () => {
    const root = files({
      'policy.yaml': 'version: 1\ninclude: [shared.yaml]\ntools:\n  a:\n    - allow: true\n',
      'shared.yaml':
        'version: 1\ntools:\n  a:\n    - forbid: \'tool == "a"\'\n  b:\n    - allow: true\nflow:\n  - forbid: \'tool == "c"\'\n',
    });
    const policy = loadPolicy(join(root, 'policy.yaml'));
    const a = decide(policy, 'a');
    expect(a.outcome).toBe('deny');
    expect(a.reasons.map((r) => r.rule)).toEqual(['shared.yaml#tools.a[0]', 'tools.a[0]']);
    expect(decide(policy, 'b').outcome).toBe('allow');
    expect(policy.sources.map((s) => s.path)).toEqual([
      join(root, 'policy.yaml'),
      join(root, 'shared.yaml'),
    ]);
  });

  it('reports a cycle between two files, at the include that closes it', () => {
    const root = files({
      'a.yaml': 'version: 1\ninclude: [b.yaml]\n',
      'b.yaml': 'version: 1\ninclude:\n  - a.yaml\n',
    });
    const a = join(root, 'a.yaml');
    const b = join(root, 'b.yaml');
    expect(errorsOf(a)).toEqual([`${b}:3:5: include cycle: ${a} → ${b} → ${a}`]);
  });

  it('reports a file that includes itself', () => {
    const root = files({ 'self.yaml': 'version: 1\ninclude: [./self.yaml]\n' });
    const self = join(root, 'self.yaml');
    expect(errorsOf(self)).toEqual([`${self}:2:11: include cycle: ${self} → ${self}`]);
  });

  it('sees a cycle back to the root even when the root path was spelt with ./', () => {
    const root = files({
      'a.yaml': 'version: 1\nmode: shadow\ninclude: [b.yaml]\n',
      'b.yaml': 'version: 1\ninclude: [a.yaml]\n',
    });
    // Relative paths as the CLI passes them, read from the temporary folder.
    const reader = {
      resolve: (from: string, ref: string) => join(dirname(from), ref),
      read: (path: string) => readFileSync(join(root, path), 'utf8'),
    };
    try {
      compilePolicy({ path: './a.yaml', text: reader.read('a.yaml') }, reader);
      expect.unreachable();
    } catch (error) {
      expect((error as PolicyError).issues.map(formatIssue)).toEqual([
        'b.yaml:2:11: include cycle: ./a.yaml → b.yaml → a.yaml',
      ]);
    }
  });

  it('loads a file included twice (a diamond) once, without calling it a cycle', () => {
    const root = files({
      'top.yaml': 'version: 1\ninclude: [left.yaml, right.yaml]\n',
      'left.yaml': 'version: 1\ninclude: [base.yaml]\n',
      'right.yaml': 'version: 1\ninclude: [./base.yaml]\n',
      'base.yaml': 'version: 1\ntools:\n  x:\n    - allow: true\n',
    });
    const policy = loadPolicy(join(root, 'top.yaml'));
    expect(policy.sources).toHaveLength(4);
    expect(decide(policy, 'x').reasons.map((r) => r.rule)).toEqual(['base.yaml#tools.x[0]']);
  });

  it('reports a missing file at its include entry', () => {
    const root = files({
      'p.yaml': 'version: 1\ninclude:\n  - ok.yaml\n  - nope.yaml\n',
      'ok.yaml': 'version: 1\n',
    });
    const errors = errorsOf(join(root, 'p.yaml'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      new RegExp(
        `^${escapeRegExp(join(root, 'p.yaml'))}:4:5: cannot read ${escapeRegExp(join(root, 'nope.yaml'))}: ENOENT`,
      ),
    );
  });

  it('reports a root policy file that cannot be read as a PolicyError naming it', () => {
    const missing = join(dir, 'no-such-policy.yaml');
    expect(errorsOf(missing)).toEqual([
      expect.stringMatching(
        new RegExp(`^${escapeRegExp(missing)}:1:1: cannot read the policy file: ENOENT`),
      ),
    ]);
    expect(errorsOf(dir)).toEqual([expect.stringMatching(/: cannot read the policy file: EISDIR/)]);
  });

  it('reports problems of an included file in that file, with its lines', () => {
    const root = files({
      'p.yaml': 'version: 1\ninclude: [sub/rules.yaml]\n',
      'sub/rules.yaml': '# rules\nversion: 1\ntools:\n  a:\n    - allow: \'sesion.id == "x"\'\n',
    });
    expect(errorsOf(join(root, 'p.yaml'))).toEqual([
      `${join(root, 'sub/rules.yaml')}:5:15: invalid CEL: Unknown variable: sesion`,
    ]);
  });

  it('rejects an invariant or label defined in two files', () => {
    const root = files({
      'p.yaml':
        'version: 1\ninclude: [q.yaml]\nbudgets:\n  spend:\n    limit: 5\n    window: 1d\nlabels:\n  tainted:\n    when: true\n',
      'q.yaml':
        'version: 1\nbudgets:\n  spend:\n    limit: 9\n    window: 1d\nlabels:\n  tainted:\n    when: false\n',
    });
    const p = join(root, 'p.yaml');
    const q = join(root, 'q.yaml');
    expect(errorsOf(p)).toEqual([
      `${q}:3:3: budgets.spend is already defined in ${p}`,
      `${q}:7:3: labels.tainted is already defined in ${p}`,
    ]);
  });

  it('rejects mode, default and replay in an included file', () => {
    const root = files({
      'p.yaml': 'version: 1\ninclude: [q.yaml]\n',
      'q.yaml':
        'version: 1\nmode: shadow\ndefault: require_approval\nreplay:\n  max_age: 5m\nredact_key_env: K\n',
    });
    const q = join(root, 'q.yaml');
    expect(errorsOf(join(root, 'p.yaml'))).toEqual([
      `${q}:2:1: mode may only be set in the root policy, not in an included file`,
      `${q}:3:1: default may only be set in the root policy, not in an included file`,
      `${q}:4:1: replay may only be set in the root policy`,
      `${q}:6:1: redact_key_env may only be set in the root policy`,
    ]);
  });

  it('names rules of same-named files in different folders apart', () => {
    const root = files({
      'p.yaml': 'version: 1\ninclude: [teams/a/policy.yaml, teams/b/policy.yaml]\n',
      'teams/a/policy.yaml': 'version: 1\ntools:\n  x:\n    - allow: true\n',
      'teams/b/policy.yaml': "version: 1\ntools:\n  x:\n    - forbid: 'args.n > 1.0'\n",
    });
    const policy = loadPolicy(join(root, 'p.yaml'));
    const decision = decideScope(policy, { ...request('x'), args: { n: 2 } }, { now: 0, id: 'd' });
    expect(decision.outcome).toBe('deny');
    expect(decision.reasons.map((r) => r.rule)).toEqual([
      'teams/b/policy.yaml#tools.x[0]',
      'teams/a/policy.yaml#tools.x[0]',
    ]);
  });

  it('resolves an include relative to the file that includes it', () => {
    const root = files({
      'p.yaml': 'version: 1\ninclude: [a/one.yaml]\n',
      'a/one.yaml': 'version: 1\ninclude: [two.yaml]\n',
      'a/two.yaml': 'version: 1\ntools:\n  t:\n    - allow: true\n',
    });
    expect(decide(loadPolicy(join(root, 'p.yaml')), 't').outcome).toBe('allow');
  });

  it('stops after 64 files', () => {
    const entries: Record<string, string> = {};
    for (let i = 0; i < 70; i++) entries[`f${i}.yaml`] = `version: 1\ninclude: [f${i + 1}.yaml]\n`;
    entries['f70.yaml'] = 'version: 1\n';
    const root = files(entries);
    const errors = errorsOf(join(root, 'f0.yaml'));
    expect(errors).toEqual([`${join(root, 'f64.yaml')}:1:1: more than 64 policy files`]);
  });

  it('needs a file system: a policy compiled from text cannot include', () => {
    try {
      compilePolicy({ path: 'inline.yaml', text: 'version: 1\ninclude: [x.yaml]\n' });
      expect.unreachable();
    } catch (error) {
      expect((error as PolicyError).issues.map(formatIssue)).toEqual([
        'inline.yaml:2:11: include needs a file system: load the policy from a file',
      ]);
    }
  });

  it('keeps the hash independent of how the policy is split, unless rules are named apart', () => {
    const hashOf = (tree: Record<string, string>) => loadPolicy(join(files(tree), 'p.yaml')).hash;
    const budget = "budgets:\n  b: { limit: 5, window: 1d, cost: '1' }\n";
    const rules = 'tools:\n  a:\n    - allow: true\n';
    // A budget is named by its own name, wherever it is written.
    expect(
      hashOf({
        'p.yaml': `version: 1\ninclude: [q.yaml]\n${rules}`,
        'q.yaml': `version: 1\n${budget}`,
      }),
    ).toBe(hashOf({ 'p.yaml': `version: 1\n${rules}${budget}` }));
    // A rule of an included file is named after the file (q.yaml#tools.a[0]), and decisions
    // name their rules: the same document split so is another policy, with another hash.
    expect(
      hashOf({
        'p.yaml': `version: 1\ninclude: [q.yaml]\n${budget}`,
        'q.yaml': `version: 1\n${rules}`,
      }),
    ).not.toBe(hashOf({ 'p.yaml': `version: 1\n${rules}${budget}` }));
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
