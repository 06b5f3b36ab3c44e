import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { z } from 'zod';
import { ID_RULE, isId, parseAction, sameParty } from '../core/action.js';
import type { Decision } from '../core/decision.js';
import { formatIssue, type SourceIssue, WritError } from '../core/errors.js';
import { toJson } from '../core/json.js';
import { isAmount, MAX_AMOUNT } from '../core/plan.js';
import { createWrit, type WritEngine } from '../engine/writ.js';
import { YamlSourceFile } from '../policy/source.js';
import { systemClock } from '../runtime/system.js';
import { CliExit, EXIT, loadPolicyOrExit, oneFromStdin, out, paint, readInput } from './io.js';
import { DEFAULT_STORE, openStore } from './store.js';

const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'demo');

const record = z.record(z.string(), z.unknown());
// What settle would refuse is refused here, when the script is read: a step that failed
// only after its call was authorized would leave that writ unsettled, its hold in place.
const Step = z.union([
  z.strictObject({ title: z.string() }),
  z.strictObject({ say: z.string() }),
  z.strictObject({ session: z.strictObject({ id: z.string(), attrs: record }) }),
  z.strictObject({
    approve: z.strictObject({ approver: z.string().refine(isId, `must be ${ID_RULE}`) }),
  }),
  z.strictObject({
    call: z.strictObject({ tool: z.string(), args: record, idempotencyKey: z.string().optional() }),
    settle: z.enum(['succeeded', 'failed', 'open']).optional(),
    result: z
      .unknown()
      .refine((value) => toJson(value, 'result').ok, 'must be JSON (no .inf or .nan)')
      .optional(),
    cost: z.number().refine(isAmount, `must be a number from 0 to ${MAX_AMOUNT}`).optional(),
  }),
]);
const ScriptSchema = z
  .strictObject({ title: z.string(), principal: record, steps: z.array(Step) })
  .superRefine((script, ctx) => {
    script.steps.forEach((step, i) => {
      const asker = script.principal.id;
      if ('approve' in step && typeof asker === 'string' && sameParty(step.approve.approver, asker))
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'approve', 'approver'],
          message: `${step.approve.approver} is the principal who asks, and cannot approve its own calls`,
        });
    });
  });
type Script = z.infer<typeof ScriptSchema>;

export function registerDemo(program: Command) {
  program
    .command('demo')
    .description(
      'replay scripted agent sessions through writ on the SQLite store and show every decision',
    )
    .option('--policy <file>', 'policy YAML file', join(EXAMPLES, 'policy.yaml'))
    .option('--script <file>', 'session script YAML file', join(EXAMPLES, 'script.yaml'))
    .option('--store <file>', 'SQLite store', DEFAULT_STORE)
    .action(async (opts: { policy: string; script: string; store: string }) => {
      oneFromStdin([
        ['--policy', opts.policy],
        ['--script', opts.script],
      ]);
      const policy = loadPolicyOrExit(opts.policy);
      const parsed = YamlSourceFile.parse(
        opts.script,
        readInput(opts.script),
        ScriptSchema,
        'script',
      );
      if (!parsed.ok)
        throw new CliExit(EXIT.INVALID_INPUT, parsed.issues.map(formatIssue).join('\n'));
      // Sessions get a per-run suffix so that every run starts from fresh budgets and keys.
      const run = systemClock.now().toString(36);
      const issues = checkSteps(parsed.document, parsed.file, run);
      if (issues.length > 0)
        throw new CliExit(EXIT.INVALID_INPUT, issues.map(formatIssue).join('\n'));
      const writ = createWrit({ policy, store: openStore(opts.store) });
      try {
        await play(writ, parsed.document, run, opts.store, opts.script);
      } finally {
        await writ.close();
      }
    });
}

/** The session a script's `session` step opens in this run. */
const sessionOf = (id: string, run: string) => `${id}-${run}`;

/** The request a script's `call` step makes. */
const requestOf = (call: CallStep['call'], script: Script, session: string) => ({
  ...call,
  principal: script.principal,
  session: { id: session },
});

type CallStep = Extract<Script['steps'][number], { call: unknown }>;

/** A value issue's path (`args.to[0].iban`) as the keys and indexes that locate it. */
const segments = (path: string): (string | number)[] =>
  [...path.matchAll(/\[(\d+)\]|[^.[\]]+/g)].map((m) => (m[1] === undefined ? m[0] : Number(m[1])));

/**
 * What the engine would refuse of the script, found before any call: a step refused half
 * way through would leave the calls before it in the store, holding budgets and keys. Each
 * call's request is checked as authorize checks it (it would be denied INVALID_REQUEST),
 * each session as `sessions.open` does, and the order: a call runs in the session a step
 * before it opened, and an approve step approves a call before it. Whether that call asks
 * for approval depends on the state it meets, and is found when it runs.
 */
function checkSteps(script: Script, file: YamlSourceFile, run: string): SourceIssue[] {
  const issues: SourceIssue[] = [];
  const add = (found: SourceIssue) => {
    // The principal is the script's, checked with every call: said once.
    if (!issues.some((other) => formatIssue(other) === formatIssue(found))) issues.push(found);
  };
  let session: string | undefined;
  let toApprove = false;
  script.steps.forEach((step, i) => {
    const issue = (path: string, message: string) =>
      add(file.issueAt(['steps', i, ...segments(path)], `steps.${i}.${path}: ${message}`));
    if ('session' in step) {
      session = sessionOf(step.session.id, run);
      if (!isId(session)) issue('session.id', `with the run's suffix -${run}, must be ${ID_RULE}`);
      const attrs = toJson(step.session.attrs, 'attrs');
      if (!attrs.ok)
        for (const problem of attrs.issues) issue(`session.${problem.path}`, problem.message);
    } else if ('approve' in step) {
      if (!toApprove)
        issue(
          'approve',
          'no call before it to approve: an approve step follows the call it approves',
        );
      toApprove = false;
    } else if ('call' in step) {
      toApprove = true;
      if (session === undefined) {
        issue('call', 'no session before it: a call runs in the session a session step opened');
        return;
      }
      const parsed = parseAction(requestOf(step.call, script, session));
      if (parsed.ok) return;
      for (const problem of parsed.issues) {
        if (problem.path.startsWith('principal'))
          add(file.issueAt(segments(problem.path), `${problem.path}: ${problem.message}`));
        else issue(`call.${problem.path}`, problem.message);
      }
    }
  });
  return issues;
}

async function play(
  writ: WritEngine,
  script: Script,
  run: string,
  storePath: string,
  scriptPath: string,
) {
  let session = '';
  let pending: Decision | undefined;
  out(paint('bold', `writ demo — ${script.title}`));
  out(
    paint(
      'dim',
      `policy ${writ.policy.name} ${writ.policy.hash.slice(0, 19)}…  store ${storePath}`,
    ),
  );
  for (const [i, step] of script.steps.entries()) {
    const where = `${scriptPath}: step ${i + 1}`;
    try {
      await playStep(step, where);
    } catch (error) {
      // The engine refusing a step (USAGE, or an approval it cannot decide) is a mistake in
      // the script: name the step.
      if (
        error instanceof WritError &&
        (error.code === 'USAGE' || error.code === 'APPROVAL_INVALID')
      )
        throw new CliExit(EXIT.INVALID_INPUT, `${where}: ${error.message}`);
      throw error;
    }
  }
  out();
  out(
    paint('dim', `State is in ${storePath}: try writ budgets, writ approvals list, writ sessions.`),
  );

  async function playStep(step: Script['steps'][number], where: string) {
    if ('title' in step) {
      out();
      out(paint(['bold', 'underline'], step.title));
    } else if ('say' in step) {
      out();
      out(paint('italic', step.say));
    } else if ('session' in step) {
      session = sessionOf(step.session.id, run);
      await writ.sessions.open(session, step.session.attrs as never);
    } else if ('approve' in step) {
      if (!pending?.approval)
        throw new CliExit(
          EXIT.INVALID_INPUT,
          `${where}: approve: the previous call did not ask for approval`,
        );
      await writ.approvals.approve(pending.approval.id, step.approve);
      out(
        paint(
          'cyan',
          `  ✔ ${step.approve.approver} approves ${pending.approval.id} — exactly this call, once`,
        ),
      );
    } else {
      const decision = await writ.authorize(requestOf(step.call, script, session));
      out(formatCall(step.call, decision));
      pending = decision;
      if (decision.writ && step.settle !== 'open') {
        const settled = await writ.settle(decision.writ, {
          status: step.settle ?? 'succeeded',
          ...(step.result !== undefined && { result: step.result }),
          ...(step.cost !== undefined && { cost: step.cost }),
        });
        if (settled.labelsAdded.length > 0)
          out(paint('dim', `      session labelled: ${settled.labelsAdded.join(', ')}`));
      }
    }
  }
}

const OUTCOME_STYLE = {
  allow: 'green',
  deny: 'red',
  approval_required: 'yellow',
  replay: 'cyan',
} as const;

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
    const details = [
      r.key,
      r.remaining !== undefined ? `${r.remaining} left` : undefined,
      r.resetAt && `until ${r.resetAt}`,
    ]
      .filter(Boolean)
      .join(', ');
    lines.push(
      paint(
        'dim',
        `      ${r.code}${r.rule ? ` ${r.rule}` : ''}${details ? ` (${details})` : ''}${r.message ? ` — ${r.message}` : ''}`,
      ),
    );
  }
  if (decision.writ?.fencing)
    lines.push(paint('dim', `      fencing token ${JSON.stringify(decision.writ.fencing)}`));
  if (decision.approval)
    lines.push(
      paint(
        'dim',
        `      approval ${decision.approval.id} pending until ${decision.approval.expiresAt}`,
      ),
    );
  if (decision.outcome === 'replay')
    lines.push(
      paint('dim', `      stored result ${JSON.stringify(decision.result)}, not executed again`),
    );
  return lines.join('\n');
}
