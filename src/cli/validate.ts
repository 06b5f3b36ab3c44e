import type { Command } from 'commander';
import { loadPolicyOrExit } from './io.js';

export function registerValidate(program: Command) {
  program
    .command('validate')
    .description('check a policy file; exit 0 when valid, 2 with file:line:col errors otherwise')
    .argument('<policy>', 'policy YAML file')
    .action((path: string) => {
      const policy = loadPolicyOrExit(path);
      process.stdout.write(`${path}: valid (${policy.name}, ${policy.hash})\n`);
    });
}
