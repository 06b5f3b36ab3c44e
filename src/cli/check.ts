import type { Command } from 'commander';
import { parseAction } from '../core/action.js';
import type { Decision } from '../core/decision.js';
import {
  decideParsedStateless,
  invalidRequest,
  type ScopeInputs,
  scopeDecision,
} from '../engine/decide.js';
import { checkEnvelope } from '../engine/envelope.js';
import type { CompiledPolicy } from '../policy/index.js';
import { randomIds, systemClock } from '../runtime/system.js';
import {
  CliExit,
  EXIT,
  loadPolicyOrExit,
  oneFromStdin,
  parseJsonOrExit,
  parseTimeFlag,
  readInput,
} from './io.js';

export function registerCheck(program: Command) {
  program
    .command('check')
    .summary('decide one request against a policy and print the decision as JSON')
    .description(
      [
        'Decide one request against a policy and print the decision as JSON.',
        "Applies the policy's rules and the stateless checks of its replay: section, in the engine's order: a nonce present when require_nonce is set, issuedAt within max_age of the decision time (--now), and the signature when replay.keys names the principal (hmac_secret_env secrets are read from the environment).",
        'check keeps no state: it cannot tell whether a nonce was used before, and applies no budgets, rate limits, concurrency limits, idempotency, approvals or session labels. The engine (authorize) does, on its store.',
      ].join('\n\n'),
    )
    .requiredOption('--policy <file>', 'policy YAML file')
    .requiredOption('--request <file>', 'request JSON file, or - for standard input')
    .option(
      '--now <time>',
      'evaluate at this RFC 3339 time instead of the current time (also the time issuedAt is checked against)',
    )
    .action((opts: { policy: string; request: string; now?: string }) => {
      oneFromStdin([
        ['--policy', opts.policy],
        ['--request', opts.request],
      ]);
      const policy = loadPolicyOrExit(opts.policy);
      const request = parseJsonOrExit(opts.request, readInput(opts.request));
      const now = opts.now === undefined ? systemClock.now() : parseTimeFlag('--now', opts.now);
      const decision = decideStateless(policy, request, { now, id: randomIds.next('dec') });
      process.stdout.write(`${JSON.stringify(decision, null, 2)}\n`);
      if (decision.reasons.some((r) => r.code === 'INVALID_REQUEST'))
        throw new CliExit(EXIT.INVALID_INPUT);
      if (decision.outcome !== 'allow') throw new CliExit(EXIT.NOT_ALLOWED);
    });
}

/**
 * What the engine decides before it touches the store: the replay envelope first, in the
 * engine's order (a request it refuses there never reaches the rules), then the scope.
 * Signature secrets named by `hmac_secret_env` come from the environment, as the engine's
 * default does.
 */
function decideStateless(policy: CompiledPolicy, request: unknown, inputs: ScopeInputs): Decision {
  const parsed = parseAction(request);
  if (!parsed.ok) return invalidRequest(policy, parsed.issues, inputs);
  const refusal = checkEnvelope(
    policy.replay,
    parsed.action,
    inputs.now,
    (name) => process.env[name],
  );
  return refusal
    ? scopeDecision(policy, parsed.action, { outcome: 'deny', reasons: [refusal] }, inputs)
    : decideParsedStateless(policy, parsed.action, inputs);
}
