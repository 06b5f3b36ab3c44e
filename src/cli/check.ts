import type { Command } from 'commander';
import { parseRfc3339 } from '../core/action.js';
import { decideScope } from '../engine/decide.js';
import { randomIds, systemClock } from '../runtime/system.js';
import { CliExit, EXIT, loadPolicyOrExit, parseJsonOrExit, readInput } from './io.js';

export function registerCheck(program: Command) {
  program
    .command('check')
    .description('decide one request against a policy and print the decision as JSON')
    .requiredOption('--policy <file>', 'policy YAML file')
    .requiredOption('--request <file>', 'request JSON file, or - for standard input')
    .option('--now <time>', 'evaluate at this RFC 3339 time instead of the current time')
    .action((opts: { policy: string; request: string; now?: string }) => {
      const policy = loadPolicyOrExit(opts.policy);
      const request = parseJsonOrExit(opts.request, readInput(opts.request));
      const now = opts.now === undefined ? systemClock.now() : parseRfc3339(opts.now);
      if (now === undefined)
        throw new CliExit(EXIT.INVALID_INPUT, `--now: ${opts.now} is not an RFC 3339 time`);
      const decision = decideScope(policy, request, { now, id: randomIds.next('dec') });
      process.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
      if (decision.reasons.some((r) => r.code === 'INVALID_REQUEST'))
        throw new CliExit(EXIT.INVALID_INPUT);
      if (decision.outcome !== 'allow') throw new CliExit(EXIT.NOT_ALLOWED);
    });
}
