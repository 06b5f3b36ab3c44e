import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { parse } from 'yaml';
import { parseAction } from '../core/action.js';
import { sequentialIds } from '../core/clock.js';
import type { Decision } from '../core/decision.js';
import { decideScope } from '../engine/decide.js';
import { buildContext, labelsAfter } from '../policy/index.js';
import { systemClock } from '../runtime/system.js';
import { loadPolicyOrExit, paint, readInput } from './io.js';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'demo');

interface Script {
  title: string;
  principal: Record<string, unknown>;
  session: { id: string; attrs: Record<string, unknown> };
  steps: ({ say: string } | { call: { tool: string; args: Record<string, unknown> } })[];
}

const OUTCOME_STYLE = {
  allow: 'green',
  deny: 'red',
  approval_required: 'yellow',
  replay: 'cyan',
} as const;

export function registerDemo(program: Command) {
  program
    .command('demo')
    .description('replay a scripted agent session through writ and show every decision')
    .option('--policy <file>', 'policy YAML file', join(EXAMPLES, 'policy.yaml'))
    .option('--script <file>', 'session script YAML file', join(EXAMPLES, 'script.yaml'))
    .action((opts: { policy: string; script: string }) => {
      const policy = loadPolicyOrExit(opts.policy);
      const script = parse(readInput(opts.script)) as Script;
      const ids = sequentialIds();
      const out = (line = '') => process.stdout.write(`${line}\n`);
      out(paint('bold', `writ demo — ${script.title}`));
      out(paint('dim', `policy ${policy.name} ${policy.hash.slice(0, 19)}…`));
      const labels = new Set<string>();
      for (const step of script.steps) {
        if ('say' in step) {
          out();
          out(paint('italic', step.say));
          continue;
        }
        const request = {
          ...step.call,
          principal: script.principal,
          session: { ...script.session, labels: [...labels] },
        };
        const now = systemClock.now();
        const decision = decideScope(policy, request, { now, id: ids.next('dec') });
        out(formatCall(step.call, decision));
        const parsed = parseAction(request);
        if (decision.outcome === 'allow' && parsed.ok) {
          const added = labelsAfter(policy, buildContext(parsed.action, now)).filter(
            (l) => !labels.has(l),
          );
          for (const label of added) labels.add(label);
          if (added.length > 0) out(paint('dim', `      session labelled: ${added.join(', ')}`));
        }
      }
    });
}

function formatCall(
  call: { tool: string; args: Record<string, unknown> },
  decision: Decision,
): string {
  const mark = { allow: '✔', deny: '✘', approval_required: '?', replay: '↺' }[decision.outcome];
  const head = paint(OUTCOME_STYLE[decision.outcome], `${mark} ${decision.outcome.padEnd(17)}`);
  const args = JSON.stringify(call.args);
  const lines = [
    `  ${head} ${paint('bold', call.tool)} ${args.length > 70 ? `${args.slice(0, 67)}…` : args}`,
  ];
  for (const r of decision.reasons) {
    lines.push(
      paint(
        'dim',
        `      ${r.code}${r.rule ? ` ${r.rule}` : ''}${r.message ? ` — ${r.message}` : ''}`,
      ),
    );
  }
  return lines.join('\n');
}
