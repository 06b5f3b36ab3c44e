/**
 * The README's library example runs as written, under the README's own policy: a reader who
 * copies it gets what it says, not a refusal for a nonce or a key the example forgot.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced blocks of `lang` in the README section headed `heading`. */
function blocks(heading: string, lang: string): string[] {
  const start = README.indexOf(`\n## ${heading}\n`);
  expect(start, `README section "${heading}"`).toBeGreaterThan(-1);
  const end = README.indexOf('\n## ', start + 1);
  const section = README.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, 'g'))].map(
    (m) => m[1]!,
  );
}

it("runs the README's guard and execute examples under the README's policy", () => {
  const [policy] = blocks('A policy', 'yaml');
  const [guarded, executed] = blocks('Guarding a tool', 'ts');
  expect([policy, guarded, executed].every(Boolean)).toBe(true);
  const dir = mkdtempSync(join(tmpdir(), 'writ-readme-'));
  writeFileSync(join(dir, 'policy.yaml'), policy!);
  // `writ` resolves to this package, as it would installed.
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'writ'), 'dir');
  const imports = guarded!.split('\n').filter((line) => line.startsWith('import '));
  const program = [
    ...imports,
    // What the examples leave to the reader: a bank, and the arguments of the second call.
    'const bank = { transfer: (args) => ({ ...args, amountCharged: args.amount }) };',
    "const args = { recipient: 'GB29NWBK60161331926819', amount: 50 };",
    guarded!
      .split('\n')
      .filter((line) => !line.startsWith('import '))
      .join('\n'),
    'console.log(JSON.stringify({ guarded: r.outcome, codes: r.decision.reasons.map((x) => x.code) }));',
    '{',
    executed,
    'console.log(JSON.stringify({ executed: r.outcome, result: r.result }));',
    '}',
    'await writ.close();',
  ].join('\n');
  writeFileSync(join(dir, 'example.mjs'), program);
  const run = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  const lines = run.stdout.trim().split('\n');
  // 120 is over the policy's approval threshold; the 50 sent with execute goes through.
  expect(JSON.parse(lines.at(-2)!)).toEqual({
    guarded: 'approval_required',
    codes: ['APPROVAL_REQUIRED', 'ALLOWED_BY_RULE'],
  });
  expect(JSON.parse(lines.at(-1)!)).toEqual({
    executed: 'allow',
    result: { recipient: 'GB29NWBK60161331926819', amount: 50, amountCharged: 50 },
  });
});

it("passes the README's policy tests against the README's policy", () => {
  const [policy] = blocks('A policy', 'yaml');
  const [cases] = blocks('Command line', 'yaml');
  expect(policy && cases).toBeTruthy();
  const dir = mkdtempSync(join(tmpdir(), 'writ-readme-'));
  writeFileSync(join(dir, 'policy.yaml'), policy!);
  writeFileSync(join(dir, 'cases.yaml'), cases!);
  const run = spawnSync(
    process.execPath,
    [join(ROOT, 'bin', 'writ.js'), 'test', 'policy.yaml', 'cases.yaml'],
    { cwd: dir, encoding: 'utf8' },
  );
  expect([run.status, run.stdout.trim().split('\n').at(-1)], run.stdout).toEqual([
    0,
    '2 passed, 0 failed',
  ]);
});
