import type { Command } from 'commander';
import { formatIssue } from '../core/errors.js';
import { runPolicyTests } from '../policy/index.js';
import { CliExit, EXIT, loadPolicyOrExit, oneFromStdin, paint, readInput } from './io.js';

export function registerTest(program: Command) {
  program
    .command('test')
    .description('run policy unit tests: each case an action and its expected outcome')
    .argument('<policy>', 'policy YAML file')
    .argument('<cases...>', 'YAML files of test cases')
    .option('-v, --verbose', 'list passing cases too')
    .action((policyPath: string, casePaths: string[], opts: { verbose?: boolean }) => {
      oneFromStdin([
        ['the policy', policyPath],
        ...casePaths.map((path, i) => [`cases file ${i + 1}`, path] as const),
      ]);
      const policy = loadPolicyOrExit(policyPath);
      let passed = 0;
      let failed = 0;
      const problems: string[] = [];
      for (const path of casePaths) {
        const run = runPolicyTests(policy, path, readInput(path));
        if (!run.ok) {
          problems.push(...run.issues.map(formatIssue));
          continue;
        }
        for (const result of run.results) {
          if (result.passed) {
            passed++;
            if (opts.verbose) process.stdout.write(`${paint('green', 'PASS')} ${result.name}\n`);
            continue;
          }
          failed++;
          process.stdout.write(`${paint('red', 'FAIL')} ${result.name} (${result.at})\n`);
          for (const f of result.failures) {
            process.stdout.write(`  ${f.step}\n`);
            process.stdout.write(`    ${paint('green', `- expected: ${f.expected}`)}\n`);
            process.stdout.write(`    ${paint('red', `+ actual:   ${f.actual}`)}\n`);
          }
        }
      }
      if (problems.length > 0) throw new CliExit(EXIT.INVALID_INPUT, problems.join('\n'));
      process.stdout.write(`${passed} passed, ${failed} failed\n`);
      if (failed > 0) throw new CliExit(EXIT.FAILED);
    });
}
