/**
 * Generates the scope benchmark's workload from a seed: a policy of 50 tools and 200 rules,
 * the same rules in Cedar, the same rules as a hand-written JavaScript function (the floor),
 * and a mix of requests. All three come from one description of the rules, so they are
 * equivalent by construction; `differential()` in `subjects.ts` checks that they also
 * agree in fact.
 *
 * Run it directly to look at what it generates:
 *   node --import tsx bench/scope/generate.ts --out /tmp/writ-scope
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import type { Action } from '../../src/core/action.js';
import { globToRegExp } from '../../src/policy/glob.js';
import { Random } from './random.js';

/** What a rule does when its condition holds. */
export type Effect = 'forbid' | 'require_approval' | 'allow';
/** A scope outcome. */
export type Outcome = 'allow' | 'deny' | 'approval_required';

/**
 * One test inside a condition. Each kind has one meaning, written three times below: as
 * CEL (`celAtom`), as Cedar (`cedarAtom`) and as JavaScript (in `floorSource`).
 */
export type Atom =
  | { t: 'num'; arg: string; op: '<' | '<=' | '>' | '>='; k: number }
  | { t: 'oneOf'; arg: string; values: string[] }
  | { t: 'eq'; arg: string; value: string }
  | { t: 'prefix'; arg: string; prefix: string }
  | { t: 'within'; arg: string; root: string }
  | { t: 'flag'; arg: string }
  | { t: 'payee'; arg: string }
  | { t: 'label'; label: string }
  | { t: 'role'; role: string }
  | { t: 'toolIn'; tools: string[] }
  | { t: 'toolPrefix'; prefix: string }
  | { t: 'true' };

/** An atom, possibly negated. */
export interface Literal {
  atom: Atom;
  negated: boolean;
}

/**
 * A condition: literals joined by `&&` or `||` (one literal: just that literal).
 *
 * CEL's `&&`/`||` are commutative over errors (`error && false` is `false`); Cedar's are
 * left to right (`error && false` is an error). The two agree whenever only the *last*
 * literal can fail, so the generator puts every literal that can fail (a missing argument,
 * missing `session.attrs.payees`) last and never two of them in one condition.
 */
export interface Condition {
  op: 'and' | 'or';
  items: Literal[];
}

/** Where a rule applies. */
export type RuleScope =
  | { kind: 'tool'; tool: string }
  | { kind: 'glob'; pattern: string }
  | { kind: 'flow' };

/** One rule, with the id writ gives it (`tools.billing.refund[1]`, `flow[3]`). */
export interface RuleSpec {
  id: string;
  effect: Effect;
  scope: RuleScope;
  when: Condition;
}

/** A request as it arrives from outside: an untrusted JSON object. */
export interface RequestJson {
  tool: string;
  args: Record<string, unknown>;
  principal: { id: string; tenant: string; roles: string[] };
  session: { id: string; attrs: Record<string, unknown>; labels: string[] };
}

/** Everything the benchmark needs, generated from one seed. */
export interface Scenario {
  seed: number;
  /** Exact tool names the policy lists. */
  tools: string[];
  /** Glob patterns the policy lists under `tools:`. */
  globs: string[];
  /** Every rule in declaration order. */
  rules: RuleSpec[];
  /** Rule id → effect. */
  effects: Map<string, Effect>;
  /** The writ policy. */
  policyYaml: string;
  /** Cedar policies by id (the writ rule id). */
  cedarPolicies: Record<string, string>;
  /**
   * Arguments that hold file paths. Cedar has no path normalization, so the host passes
   * each of them normalized in `context.norm` (and that work is timed with Cedar).
   */
  pathArgs: string[];
  /** Source of the hand-written decision function; see {@link compileFloor}. */
  floorSource: string;
  /** The request mix. */
  requests: RequestJson[];
}

/** The benchmark's size, fixed by the requirement: 50 tools, 200 rules. */
export const TOOL_COUNT = 50;
export const RULE_COUNT = 200;

type ArgSpec =
  | { name: string; kind: 'int'; min: number; max: number; droppable?: true }
  | { name: string; kind: 'enum'; values: readonly string[] }
  | { name: string; kind: 'ref'; prefixes: readonly string[]; suffixes: readonly string[] }
  | { name: string; kind: 'path' }
  | { name: string; kind: 'flag' }
  | { name: string; kind: 'party' };

interface Domain {
  name: string;
  verbs: readonly string[];
  args: readonly ArgSpec[];
}

const ROOTS = ['/srv/agent', '/srv/data', '/home/alice', '/tmp'] as const;
const PATH_SUFFIXES = [
  '',
  '/notes.txt',
  '/reports/q3.csv',
  '/../../etc/passwd',
  '/./cache//x.bin',
  '/../agent/secrets.env',
];
/** Paths that look inside a root but are not, or are relative. */
const TRICKY_PATHS = ['/srv/database/dump.sql', 'notes.txt', '/etc/shadow', '//srv//agent/a.txt'];
const PARTIES = [
  'alice@example.com',
  'bob@example.com',
  'carol@example.org',
  'dave@corp.example',
  'mallory@evil.example',
  'DE89370400440532013000',
];
const ROLES = ['operator', 'admin', 'contractor', 'viewer'] as const;
const LABELS = ['untrusted-content', 'after-hours', 'read-only', 'quarantined'] as const;

/** Ten domains of five tools: 50 tools whose arguments look like real agent tools. */
const DOMAINS: readonly Domain[] = [
  {
    name: 'billing',
    verbs: ['send_payment', 'refund', 'create_invoice', 'issue_credit', 'update_plan'],
    args: [
      { name: 'amount', kind: 'int', min: 1, max: 20_000, droppable: true },
      { name: 'currency', kind: 'enum', values: ['USD', 'EUR', 'GBP', 'JPY', 'CHF'] },
      { name: 'recipient', kind: 'party' },
      {
        name: 'memo',
        kind: 'ref',
        prefixes: ['INV-', 'PO-', 'REF-', 'GIFT-'],
        suffixes: ['1001', '2026-11', 'x'],
      },
    ],
  },
  {
    name: 'files',
    verbs: ['read', 'write', 'delete', 'list', 'move'],
    args: [
      { name: 'path', kind: 'path' },
      { name: 'size', kind: 'int', min: 0, max: 50_000_000, droppable: true },
      { name: 'recursive', kind: 'flag' },
    ],
  },
  {
    name: 'mail',
    verbs: ['send', 'draft', 'forward', 'reply', 'schedule'],
    args: [
      { name: 'recipient', kind: 'party' },
      { name: 'attachments', kind: 'int', min: 0, max: 12, droppable: true },
      {
        name: 'subject',
        kind: 'ref',
        prefixes: ['Re: ', 'Fwd: ', 'Invoice ', 'Password reset', 'Hello'],
        suffixes: ['', ' team', ' #42'],
      },
      { name: 'external', kind: 'flag' },
    ],
  },
  {
    name: 'db',
    verbs: ['query', 'insert', 'update', 'delete', 'export'],
    args: [
      {
        name: 'table',
        kind: 'enum',
        values: ['users', 'orders', 'payments', 'audit_log', 'sessions'],
      },
      { name: 'rows', kind: 'int', min: 1, max: 100_000, droppable: true },
      {
        name: 'region',
        kind: 'enum',
        values: ['eu-west-1', 'us-east-1', 'ap-south-1', 'cn-north-1'],
      },
    ],
  },
  {
    name: 'k8s',
    verbs: ['scale', 'apply', 'delete', 'rollout', 'logs'],
    args: [
      { name: 'cluster', kind: 'enum', values: ['prod-eu', 'prod-us', 'staging', 'dev'] },
      {
        name: 'namespace',
        kind: 'ref',
        prefixes: ['kube-', 'team-', 'default'],
        suffixes: ['', 'system', 'payments'],
      },
      { name: 'replicas', kind: 'int', min: 0, max: 100, droppable: true },
    ],
  },
  {
    name: 'git',
    verbs: ['push', 'merge', 'tag', 'create_branch', 'delete_branch'],
    args: [
      {
        name: 'branch',
        kind: 'ref',
        prefixes: ['main', 'release/', 'feature/', 'hotfix/'],
        suffixes: ['', '2.0', 'login'],
      },
      { name: 'repo', kind: 'enum', values: ['api', 'web', 'infra', 'docs'] },
      { name: 'force', kind: 'flag' },
      { name: 'files_changed', kind: 'int', min: 1, max: 2_000, droppable: true },
    ],
  },
  {
    name: 'search',
    verbs: ['web', 'docs', 'code', 'tickets', 'people'],
    args: [
      {
        name: 'query',
        kind: 'ref',
        prefixes: ['site:internal ', 'how to ', 'password ', 'error ', 'salary '],
        suffixes: ['', 'deploy', 'alice'],
      },
      { name: 'results', kind: 'int', min: 1, max: 100, droppable: true },
    ],
  },
  {
    name: 'calendar',
    verbs: ['create_event', 'invite', 'cancel_event', 'update_event', 'share'],
    args: [
      { name: 'recipient', kind: 'party' },
      { name: 'attendees', kind: 'int', min: 1, max: 500, droppable: true },
      { name: 'visibility', kind: 'enum', values: ['public', 'private', 'team'] },
    ],
  },
  {
    name: 'tickets',
    verbs: ['create', 'close', 'assign', 'comment', 'escalate'],
    args: [
      { name: 'priority', kind: 'enum', values: ['p0', 'p1', 'p2', 'p3'] },
      {
        name: 'project',
        kind: 'ref',
        prefixes: ['OPS-', 'SEC-', 'WEB-', 'HR-'],
        suffixes: ['1', '77', '1204'],
      },
      { name: 'points', kind: 'int', min: 0, max: 40, droppable: true },
    ],
  },
  {
    name: 'shell',
    verbs: ['exec', 'script', 'upload', 'download', 'kill'],
    args: [
      {
        name: 'command',
        kind: 'ref',
        prefixes: ['ls ', 'cat ', 'rm -rf ', 'curl ', 'sudo ', 'git '],
        suffixes: ['', '-la', 'status'],
      },
      { name: 'cwd', kind: 'path' },
      { name: 'timeout', kind: 'int', min: 1, max: 3_600, droppable: true },
    ],
  },
];

/** Tools the policy does not name but a glob covers, and tools nothing covers. */
const GLOB_ONLY_TOOLS = ['search.images', 'files.stat', 'k8s.describe', 'crm.delete'];
const UNNAMED_TOOLS = ['payroll.run', 'admin.reset_password', 'crm.update'];

const lit = (atom: Atom, negated = false): Literal => ({ atom, negated });
const all = (...items: Literal[]): Condition => ({ op: 'and', items });

/** The glob rules (8): patterns over tool names, each with conditions every matched tool can answer. */
function globRules(): { pattern: string; effect: Effect; when: Condition }[] {
  return [
    { pattern: 'search.*', effect: 'allow', when: all(lit({ t: 'true' })) },
    {
      pattern: 'search.*',
      effect: 'forbid',
      when: all(lit({ t: 'prefix', arg: 'query', prefix: 'salary ' })),
    },
    {
      pattern: 'files.*',
      effect: 'forbid',
      when: all(lit({ t: 'within', arg: 'path', root: '/etc' })),
    },
    {
      pattern: 'files.*',
      effect: 'require_approval',
      when: all(
        lit({ t: 'flag', arg: 'recursive' }),
        lit({ t: 'num', arg: 'size', op: '>', k: 10_000_000 }),
      ),
    },
    { pattern: '*.delete', effect: 'require_approval', when: all(lit({ t: 'true' })) },
    { pattern: '*.delete', effect: 'forbid', when: all(lit({ t: 'label', label: 'read-only' })) },
    {
      pattern: 'k8s.*',
      effect: 'require_approval',
      when: all(
        lit({ t: 'role', role: 'contractor' }),
        lit({ t: 'prefix', arg: 'cluster', prefix: 'prod' }),
      ),
    },
    {
      pattern: 'k8s.*',
      effect: 'forbid',
      when: all(
        lit({ t: 'label', label: 'untrusted-content' }),
        lit({ t: 'prefix', arg: 'namespace', prefix: 'kube-' }),
      ),
    },
  ];
}

/** The flow rules (8): evaluated for every call, like DESIGN.md's prompt-injection rule. */
function flowRules(): { effect: Effect; when: Condition }[] {
  return [
    { effect: 'forbid', when: all(lit({ t: 'label', label: 'quarantined' })) },
    {
      effect: 'forbid',
      when: all(
        lit({ t: 'label', label: 'untrusted-content' }),
        lit({
          t: 'toolIn',
          tools: ['billing.send_payment', 'billing.refund', 'mail.send', 'mail.forward'],
        }),
        lit({ t: 'payee', arg: 'recipient' }, true),
      ),
    },
    {
      effect: 'forbid',
      when: all(lit({ t: 'flag', arg: 'force' }), lit({ t: 'label', label: 'untrusted-content' })),
    },
    {
      effect: 'forbid',
      when: all(
        lit({ t: 'label', label: 'read-only' }),
        lit({
          t: 'toolIn',
          tools: ['files.write', 'files.move', 'db.insert', 'db.update', 'git.push'],
        }),
      ),
    },
    {
      effect: 'require_approval',
      when: all(
        lit({ t: 'label', label: 'untrusted-content' }),
        lit({ t: 'toolPrefix', prefix: 'db.' }),
      ),
    },
    {
      effect: 'require_approval',
      when: all(lit({ t: 'role', role: 'contractor' }), lit({ t: 'toolPrefix', prefix: 'git.' })),
    },
    {
      effect: 'require_approval',
      when: all(
        lit({ t: 'label', label: 'after-hours' }),
        lit({ t: 'toolIn', tools: ['k8s.apply', 'k8s.rollout', 'billing.send_payment'] }),
      ),
    },
    {
      effect: 'allow',
      when: all(lit({ t: 'role', role: 'admin' }), lit({ t: 'toolPrefix', prefix: 'tickets.' })),
    },
  ];
}

/** True when a literal over `arg` can fail in some request of the mix. */
function fallible(atom: Atom, domain: Domain): boolean {
  if (atom.t === 'payee') return true;
  if (!('arg' in atom)) return false;
  const spec = domain.args.find((a) => a.name === atom.arg);
  return spec?.kind === 'int' && spec.droppable === true;
}

/** One literal over an argument, in the flavour of the effect (forbid the extreme, allow the usual). */
function argLiteral(rnd: Random, arg: ArgSpec, effect: Effect): Literal {
  switch (arg.kind) {
    case 'int': {
      const q =
        effect === 'forbid'
          ? rnd.pick([0.9, 0.95])
          : effect === 'require_approval'
            ? rnd.pick([0.5, 0.7, 0.8])
            : rnd.pick([0.4, 0.6, 0.9]);
      const k = Math.round(arg.min + q * (arg.max - arg.min));
      return lit({ t: 'num', arg: arg.name, op: effect === 'allow' ? '<=' : '>', k });
    }
    case 'enum': {
      if (effect !== 'allow' && rnd.chance(0.3))
        return lit({ t: 'eq', arg: arg.name, value: rnd.pick(arg.values) });
      const n = effect === 'allow' ? rnd.int(2, 3) : rnd.int(1, 2);
      return lit({ t: 'oneOf', arg: arg.name, values: rnd.sample(arg.values, n) });
    }
    case 'ref':
      return lit(
        { t: 'prefix', arg: arg.name, prefix: rnd.pick(arg.prefixes) },
        effect === 'allow' && rnd.chance(0.2),
      );
    case 'path':
      if (effect === 'forbid') {
        return rnd.chance(0.5)
          ? lit({ t: 'within', arg: arg.name, root: '/srv/agent/secrets' })
          : lit({ t: 'within', arg: arg.name, root: rnd.pick(ROOTS) }, true);
      }
      return lit({ t: 'within', arg: arg.name, root: rnd.pick(ROOTS) });
    case 'flag':
      return lit({ t: 'flag', arg: arg.name }, effect === 'allow');
    case 'party':
      return lit({ t: 'payee', arg: arg.name }, effect !== 'allow');
  }
}

function principalLiteral(rnd: Random, effect: Effect): Literal {
  if (rnd.chance(0.5)) {
    const role =
      effect === 'forbid'
        ? 'viewer'
        : effect === 'require_approval'
          ? 'contractor'
          : rnd.pick(['operator', 'admin']);
    return lit({ t: 'role', role });
  }
  const label = effect === 'allow' ? 'after-hours' : rnd.pick(['untrusted-content', 'after-hours']);
  return lit({ t: 'label', label }, effect === 'allow');
}

/** A condition for a rule of `domain`: one literal, or two or three joined, the fallible one last. */
function toolCondition(rnd: Random, domain: Domain, effect: Effect): Condition {
  const shape = rnd.weighted([
    ['single', 5],
    ['and2', 4],
    ['and3', 1],
    ['or2', 1],
    ['true', effect === 'allow' ? 1.5 : effect === 'require_approval' ? 0.3 : 0],
  ] as const);
  if (shape === 'true') return all(lit({ t: 'true' }));
  const candidates = () =>
    rnd.chance(0.25)
      ? principalLiteral(rnd, effect)
      : argLiteral(rnd, rnd.pick(domain.args), effect);
  if (shape === 'single') return all(candidates());
  const size = shape === 'and3' ? 3 : 2;
  const items: Literal[] = [];
  const usedArgs = new Set<string>();
  let fallibleTaken = false;
  for (let tries = 0; items.length < size && tries < 50; tries++) {
    const literal = candidates();
    const key = 'arg' in literal.atom ? literal.atom.arg : JSON.stringify(literal.atom);
    if (usedArgs.has(key)) continue;
    const canFail = fallible(literal.atom, domain);
    if (canFail && fallibleTaken) continue;
    usedArgs.add(key);
    fallibleTaken ||= canFail;
    items.push(literal);
  }
  // The literal that can fail goes last (see Condition).
  items.sort((a, b) => Number(fallible(a.atom, domain)) - Number(fallible(b.atom, domain)));
  return { op: shape === 'or2' ? 'or' : 'and', items };
}

/** Generates the scenario for `seed`; the same seed always gives the same scenario. */
export function generateScenario(options: { seed?: number; requests?: number } = {}): Scenario {
  const seed = options.seed ?? 20261123;
  const rnd = new Random(seed);
  const tools: string[] = [];
  const domainOf = new Map<string, Domain>();
  for (const domain of DOMAINS) {
    for (const verb of domain.verbs) {
      const tool = `${domain.name}.${verb}`;
      tools.push(tool);
      domainOf.set(tool, domain);
    }
  }
  if (tools.length !== TOOL_COUNT) throw new Error(`expected ${TOOL_COUNT} tools`);

  const globs = globRules();
  const flows = flowRules();
  // Every tool gets one allow rule; the rest is spread over tools with a mix of effects.
  const perTool = new Map<string, Effect[]>(tools.map((t) => [t, ['allow']]));
  const extra = RULE_COUNT - TOOL_COUNT - globs.length - flows.length;
  for (let i = 0; i < extra; i++) {
    const tool = rnd.pick(tools);
    const effect = rnd.weighted([
      ['forbid', 35],
      ['require_approval', 30],
      ['allow', 35],
    ] as const);
    perTool.get(tool)!.push(effect);
  }

  const rules: RuleSpec[] = [];
  const yamlTools: Record<string, unknown[]> = {};
  const addRule = (
    key: string,
    index: number,
    effect: Effect,
    scope: RuleScope,
    when: Condition,
  ) => {
    const id = scope.kind === 'flow' ? `flow[${index}]` : `tools.${key}[${index}]`;
    rules.push({ id, effect, scope, when });
    const rule: Record<string, unknown> = { [effect]: celCondition(when) };
    if (effect === 'require_approval' && index % 2 === 0) rule.expires = '30m';
    return rule;
  };
  for (const tool of tools) {
    const effects = rnd.shuffle(perTool.get(tool)!);
    const seen = new Set<string>();
    yamlTools[tool] = effects.map((effect, i) => {
      // No two rules of a tool with the same condition.
      let when = toolCondition(rnd, domainOf.get(tool)!, effect);
      for (let tries = 0; seen.has(JSON.stringify(when)) && tries < 50; tries++)
        when = toolCondition(rnd, domainOf.get(tool)!, effect);
      seen.add(JSON.stringify(when));
      return addRule(tool, i, effect, { kind: 'tool', tool }, when);
    });
  }
  const globIndex = new Map<string, number>();
  for (const g of globs) {
    const i = globIndex.get(g.pattern) ?? 0;
    globIndex.set(g.pattern, i + 1);
    const list = yamlTools[g.pattern] ?? [];
    list.push(addRule(g.pattern, i, g.effect, { kind: 'glob', pattern: g.pattern }, g.when));
    yamlTools[g.pattern] = list;
  }
  const yamlFlow = flows.map((f, i) => addRule('', i, f.effect, { kind: 'flow' }, f.when));
  if (rules.length !== RULE_COUNT) throw new Error(`expected ${RULE_COUNT} rules`);

  const policyYaml = stringify(
    {
      version: 1,
      name: 'bench-50-tools',
      description: `Generated by bench/scope/generate.ts (seed ${seed}): ${TOOL_COUNT} tools, ${RULE_COUNT} rules.`,
      default: 'deny',
      tools: yamlTools,
      flow: yamlFlow,
    },
    { lineWidth: 0 },
  );
  const globPatterns = [...globIndex.keys()];
  const pathArgs = [
    ...new Set(DOMAINS.flatMap((d) => d.args.filter((a) => a.kind === 'path').map((a) => a.name))),
  ];
  return {
    seed,
    tools,
    globs: globPatterns,
    rules,
    effects: new Map(rules.map((r) => [r.id, r.effect])),
    policyYaml,
    cedarPolicies: cedarPolicySet(rules, tools, globPatterns),
    pathArgs,
    floorSource: floorSource(rules, tools, globPatterns),
    requests: requestMix(rnd, options.requests ?? 1_000, tools, domainOf),
  };
}

// ---------------------------------------------------------------------------------------
// CEL (writ)

function celAtom(a: Atom): string {
  const q = JSON.stringify;
  switch (a.t) {
    case 'num':
      return `args.${a.arg} ${a.op} ${a.k}`;
    case 'oneOf':
      return `args.${a.arg} in [${a.values.map((v) => q(v)).join(', ')}]`;
    case 'eq':
      return `args.${a.arg} == ${q(a.value)}`;
    case 'prefix':
      return `args.${a.arg}.startsWith(${q(a.prefix)})`;
    case 'within':
      return `path.within(args.${a.arg}, ${q(a.root)})`;
    case 'flag':
      return `(has(args.${a.arg}) && args.${a.arg} == true)`;
    case 'payee':
      return `args.${a.arg} in session.attrs.payees`;
    case 'label':
      return `${q(a.label)} in session.labels`;
    case 'role':
      return `${q(a.role)} in principal.roles`;
    case 'toolIn':
      return `tool in [${a.tools.map((v) => q(v)).join(', ')}]`;
    case 'toolPrefix':
      return `tool.startsWith(${q(a.prefix)})`;
    case 'true':
      return 'true';
  }
}

/** The condition as CEL text, or `true` as a YAML boolean. */
export function celCondition(c: Condition): string | boolean {
  if (c.items.length === 1 && c.items[0]!.atom.t === 'true' && !c.items[0]!.negated) return true;
  const parts = c.items.map((l) => {
    const text = celAtom(l.atom);
    if (!l.negated) return text;
    return l.atom.t === 'flag' || l.atom.t === 'within' ? `!${text}` : `!(${text})`;
  });
  return parts.join(c.op === 'and' ? ' && ' : ' || ');
}

// ---------------------------------------------------------------------------------------
// Cedar

/** Escapes a literal for a Cedar `like` pattern, where `*` is the wildcard. */
function likeLiteral(s: string): string {
  return JSON.stringify(s).slice(1, -1).replace(/\*/g, '\\*');
}

function cedarAtom(a: Atom): string {
  const q = JSON.stringify;
  switch (a.t) {
    case 'num':
      return `context.args.${a.arg} ${a.op} ${a.k}`;
    case 'oneOf':
      return `[${a.values.map((v) => q(v)).join(', ')}].contains(context.args.${a.arg})`;
    case 'eq':
      return `context.args.${a.arg} == ${q(a.value)}`;
    case 'prefix':
      return `context.args.${a.arg} like "${likeLiteral(a.prefix)}*"`;
    case 'within':
      // path.within on the host-normalized path (Cedar cannot resolve `..` itself).
      return `(context.norm.${a.arg} == ${q(a.root)} || context.norm.${a.arg} like "${likeLiteral(a.root)}/*")`;
    case 'flag':
      return `(context.args has ${a.arg} && context.args.${a.arg} == true)`;
    case 'payee':
      return `context.session.attrs.payees.contains(context.args.${a.arg})`;
    case 'label':
      return `context.session.labels.contains(${q(a.label)})`;
    case 'role':
      return `context.principal.roles.contains(${q(a.role)})`;
    case 'toolIn':
      return `[${a.tools.map((v) => q(v)).join(', ')}].contains(context.tool)`;
    case 'toolPrefix':
      return `context.tool like "${likeLiteral(a.prefix)}*"`;
    case 'true':
      return 'true';
  }
}

function cedarCondition(c: Condition): string {
  const parts = c.items.map((l) =>
    l.negated ? `!(${cedarAtom(l.atom)})` : `(${cedarAtom(l.atom)})`,
  );
  return parts.join(c.op === 'and' ? ' && ' : ' || ');
}

/**
 * The rules as Cedar policies, one per rule under the same id. Cedar has two effects, so
 * `require_approval` becomes a `permit` annotated `@writ("require_approval")`; the adapter
 * reads the determining policies to tell approval from allow. Tool globs become `like` on
 * `context.tool` (writ's `*` stops at `/`, Cedar's does not: no tool name here has a `/`).
 * A flow rule that permits also checks that the policy names the tool, because writ
 * denies a tool it does not name whatever the flow rules say: after the rule's own
 * condition when that cannot fail (so the 50-name set is built only when needed), before
 * it otherwise (so an unnamed tool never makes it fail).
 */
function cedarPolicySet(
  rules: RuleSpec[],
  tools: string[],
  globs: string[],
): Record<string, string> {
  const named = [
    `[${tools.map((t) => JSON.stringify(t)).join(', ')}].contains(context.tool)`,
    ...globs.map((g) => `context.tool like "${JSON.stringify(g).slice(1, -1)}"`),
  ].join(' || ');
  const out: Record<string, string> = {};
  for (const rule of rules) {
    const effect = rule.effect === 'forbid' ? 'forbid' : 'permit';
    const resource =
      rule.scope.kind === 'tool'
        ? `resource == Tool::${JSON.stringify(rule.scope.tool)}`
        : 'resource';
    const conditions: string[] = [];
    if (rule.scope.kind === 'glob')
      conditions.push(`context.tool like "${JSON.stringify(rule.scope.pattern).slice(1, -1)}"`);
    const own = `(${cedarCondition(rule.when)})`;
    if (rule.scope.kind === 'flow' && effect === 'permit') {
      if (rule.when.items.every((l) => TOTAL_ATOMS.has(l.atom.t)))
        conditions.push(own, `(${named})`);
      else conditions.push(`(${named})`, own);
    } else conditions.push(own);
    out[rule.id] =
      `@id(${JSON.stringify(rule.id)})\n@writ(${JSON.stringify(rule.effect)})\n` +
      `${effect} (principal, action, ${resource})\nwhen { ${conditions.join(' && ')} };`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The hand-written floor

const TOTAL_ATOMS = new Set<Atom['t']>(['flag', 'label', 'role', 'toolIn', 'toolPrefix', 'true']);

/**
 * The rules as a plain JavaScript function, written the way a careful person would write
 * them by hand: a `switch` on the tool, the forbids first, then approvals, then allows,
 * returning at the first match. Each test yields `true`, `false` or `undefined` (CEL's
 * error: a missing or mistyped argument); a forbid or approval counts `undefined` as a
 * match (fail closed), an allow does not. Generated as source text so V8 compiles it like
 * any hand-written module code.
 */
function floorSource(rules: RuleSpec[], tools: string[], globs: string[]): string {
  const consts: string[] = [];
  const setNames = new Map<string, string>();
  const setOf = (values: string[]) => {
    const key = JSON.stringify(values);
    let name = setNames.get(key);
    if (!name) {
      name = `S${setNames.size}`;
      setNames.set(key, name);
      consts.push(`const ${name} = new Set(${key});`);
    }
    return name;
  };
  const globVar = new Map<string, string>();
  globs.forEach((g, i) => {
    const re = globToRegExp(g);
    globVar.set(g, `G${i}`);
    consts.push(
      `const G${i} = new RegExp(${JSON.stringify(re.source)}, ${JSON.stringify(re.flags)});`,
    );
  });

  const q = JSON.stringify;
  const atom = (a: Atom): string => {
    switch (a.t) {
      case 'num':
        return `(typeof (v = args.${a.arg}) === "number" ? v ${a.op} ${a.k} : undefined)`;
      case 'oneOf':
        return `((v = args.${a.arg}) === undefined ? undefined : ${setOf(a.values)}.has(v))`;
      case 'eq':
        return `((v = args.${a.arg}) === undefined ? undefined : v === ${q(a.value)})`;
      case 'prefix':
        return `(typeof (v = args.${a.arg}) === "string" ? v.startsWith(${q(a.prefix)}) : undefined)`;
      case 'within':
        return `(typeof (v = args.${a.arg}) === "string" ? within(v, ${q(a.root)}) : undefined)`;
      case 'flag':
        return `(args.${a.arg} === true)`;
      case 'payee':
        return `((v = args.${a.arg}) === undefined || !Array.isArray(w = attrs.payees) ? undefined : w.includes(v))`;
      case 'label':
        return `labels.includes(${q(a.label)})`;
      case 'role':
        return `roles.includes(${q(a.role)})`;
      case 'toolIn':
        return `(${a.tools.map((t) => `tool === ${q(t)}`).join(' || ')})`;
      case 'toolPrefix':
        return `tool.startsWith(${q(a.prefix)})`;
      case 'true':
        return 'true';
    }
  };
  /** Tests that are always true or false, never an error. */
  const total = (l: Literal) => TOTAL_ATOMS.has(l.atom.t);
  const literal = (l: Literal) => {
    if (!l.negated) return atom(l.atom);
    return total(l) ? `!${atom(l.atom)}` : `((n = ${atom(l.atom)}) === undefined ? undefined : !n)`;
  };
  /** CEL's commutative `&&`/`||`: a decisive operand wins over an error on either side. */
  const condition = (c: Condition): string => {
    if (c.items.length === 1) return literal(c.items[0]!);
    const head = c.items.slice(0, -1);
    if (head.every(total)) {
      // Only the last test can fail: plain short-circuit code says the same.
      const last = literal(c.items[c.items.length - 1]!);
      const tests = head.map(literal).join(c.op === 'and' ? ' && ' : ' || ');
      return c.op === 'and' ? `(${tests} ? ${last} : false)` : `(${tests} ? true : ${last})`;
    }
    const t = c.items.map((_, i) => `t${i}`);
    const [win, lose] = c.op === 'and' ? ['false', 'true'] : ['true', 'false'];
    const tests = c.items.map((l, i) => `(${t[i]} = ${literal(l)}) === ${win}`).join(' || ');
    const allLose = t.map((x) => `${x} === ${lose}`).join(' && ');
    return `(${tests} ? ${win} : ${allLose} ? ${lose} : undefined)`;
  };
  const matches = (r: RuleSpec) => {
    const c = r.when.items;
    if (c.length === 1 && c[0]!.atom.t === 'true' && !c[0]!.negated) return 'true';
    const text = condition(r.when);
    if (c.every(total)) return text;
    return r.effect === 'allow' ? `${text} === true` : `${text} !== false`;
  };

  const flow = rules.filter((r) => r.scope.kind === 'flow');
  const flowFn = (name: string, effect: Effect) => {
    const own = flow.filter((r) => r.effect === effect);
    const body = own.length === 0 ? 'false' : own.map(matches).join(' ||\n    ');
    return `function ${name}(tool, args, attrs, labels, roles) {\n  let v, w, n, t0, t1, t2;\n  return ${body};\n}`;
  };
  const has = (effect: Effect) => flow.some((r) => r.effect === effect);
  const flowCall = (name: string) => `${name}(tool, args, attrs, labels, roles)`;
  const flowCalls: Record<Effect, string | undefined> = {
    forbid: has('forbid') ? flowCall('flowForbid') : undefined,
    require_approval: has('require_approval') ? flowCall('flowApprove') : undefined,
    allow: has('allow') ? flowCall('flowAllow') : undefined,
  };

  /** The three precedence steps for a list of (guard, rule) pairs. */
  const steps = (list: { guard?: string; rule: RuleSpec }[]) => {
    const out: string[] = [];
    const step: [Effect, string][] = [
      ['forbid', 'deny'],
      ['require_approval', 'approval_required'],
      ['allow', 'allow'],
    ];
    for (const [effect, outcome] of step) {
      const tests = list
        .filter((x) => x.rule.effect === effect)
        .map((x) => (x.guard ? `(${x.guard} && ${matches(x.rule)})` : matches(x.rule)));
      const call = flowCalls[effect];
      if (call) tests.push(call);
      if (tests.length > 0) out.push(`if (${tests.join(' ||\n        ')}) return ${q(outcome)};`);
    }
    out.push('return "deny";');
    return out;
  };

  const cases: string[] = [];
  for (const tool of tools) {
    const own = rules.filter(
      (r) =>
        (r.scope.kind === 'tool' && r.scope.tool === tool) ||
        (r.scope.kind === 'glob' && globToRegExp(r.scope.pattern).test(tool)),
    );
    cases.push(
      `    case ${q(tool)}: {\n      ${steps(own.map((rule) => ({ rule }))).join('\n      ')}\n    }`,
    );
  }
  const globGuards = globs.map((g, i) => `g${i} = ${globVar.get(g)}.test(tool)`);
  const globList = rules
    .filter((r) => r.scope.kind === 'glob')
    .map((rule) => ({
      guard: `g${globs.indexOf((rule.scope as { pattern: string }).pattern)}`,
      rule,
    }));
  const fallback = [
    `const ${globGuards.join(', ')};`,
    `if (!(${globs.map((_, i) => `g${i}`).join(' || ')})) return "deny";`,
    ...steps(globList),
  ];

  return `"use strict";
// Generated by bench/scope/generate.ts: the benchmark policy as a hand-written function.
${consts.join('\n')}
function within(p, root) {
  try { return pathWithin(p, root); } catch { return undefined; }
}
${flowFn('flowForbid', 'forbid')}
${flowFn('flowApprove', 'require_approval')}
${flowFn('flowAllow', 'allow')}
return function decide(action) {
  const tool = action.tool, args = action.args, attrs = action.session.attrs;
  const labels = action.session.labels, roles = action.principal.roles;
  let v, w, n, t0, t1, t2;
  switch (tool) {
${cases.join('\n')}
    default: {
      ${fallback.join('\n      ')}
    }
  }
};
`;
}

/**
 * Compiles the floor's source into the decision function. `pathWithin` is writ's helper:
 * a hand-written check would call the same function.
 */
export function compileFloor(
  source: string,
  pathWithin: (p: string, root: string) => boolean,
): (action: Action) => Outcome {
  const factory = new Function('pathWithin', source) as (
    within: typeof pathWithin,
  ) => (action: Action) => Outcome;
  return factory(pathWithin);
}

// ---------------------------------------------------------------------------------------
// The request mix

function argValue(rnd: Random, arg: ArgSpec): unknown {
  switch (arg.kind) {
    case 'int':
      return rnd.int(arg.min, arg.max);
    case 'enum':
      return rnd.pick(arg.values);
    case 'ref':
      return rnd.pick(arg.prefixes) + rnd.pick(arg.suffixes);
    case 'path':
      return rnd.chance(0.15) ? rnd.pick(TRICKY_PATHS) : rnd.pick(ROOTS) + rnd.pick(PATH_SUFFIXES);
    case 'flag':
      return rnd.chance(0.6);
    case 'party':
      return rnd.pick(PARTIES);
  }
}

function domainArgs(rnd: Random, domain: Domain | undefined): Record<string, unknown> {
  const args: Record<string, unknown> = {};
  if (!domain) return { id: `x-${rnd.int(1, 999)}` };
  for (const arg of domain.args) {
    if (arg.kind === 'flag' && rnd.chance(0.5)) continue;
    args[arg.name] = argValue(rnd, arg);
  }
  return args;
}

/**
 * The mix: 90 % calls to named tools with well-formed arguments, 3 % to named tools with
 * a required argument missing (condition errors), 4 % to tools only a glob covers, 3 % to
 * tools the policy does not name. Sessions carry labels and payees; principals carry roles.
 */
function requestMix(
  rnd: Random,
  count: number,
  tools: string[],
  domainOf: Map<string, Domain>,
): RequestJson[] {
  const requests: RequestJson[] = [];
  const domainByName = new Map(DOMAINS.map((d) => [d.name, d]));
  for (let i = 0; i < count; i++) {
    const kind = rnd.weighted([
      ['named', 90],
      ['missing-arg', 3],
      ['glob-only', 4],
      ['unnamed', 3],
    ] as const);
    let tool: string;
    let args: Record<string, unknown>;
    if (kind === 'named' || kind === 'missing-arg') {
      tool = rnd.pick(tools);
      args = domainArgs(rnd, domainOf.get(tool));
      if (kind === 'missing-arg') {
        const droppable = domainOf.get(tool)!.args.find((a) => a.kind === 'int' && a.droppable);
        if (droppable) delete args[droppable.name];
      }
    } else {
      tool = rnd.pick(kind === 'glob-only' ? GLOB_ONLY_TOOLS : UNNAMED_TOOLS);
      args = domainArgs(rnd, domainByName.get(tool.split('.')[0]!));
    }
    const attrs: Record<string, unknown> = {};
    if (rnd.chance(0.9)) attrs.payees = rnd.sample(PARTIES.slice(0, 4), rnd.int(1, 3));
    const labels = LABELS.filter((_, j) => rnd.chance([0.2, 0.1, 0.04, 0.02][j]!));
    const roles = ROLES.filter((_, j) => rnd.chance([0.5, 0.1, 0.2, 0.25][j]!));
    requests.push({
      tool,
      args,
      principal: { id: `agent-${rnd.int(1, 40)}`, tenant: 'acme', roles },
      session: { id: `s-${rnd.int(1, 200)}`, attrs, labels },
    });
  }
  return requests;
}

// ---------------------------------------------------------------------------------------

function writeScenario(dir: string) {
  const s = generateScenario();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'policy.yaml'), s.policyYaml);
  writeFileSync(join(dir, 'policy.cedar'), `${Object.values(s.cedarPolicies).join('\n\n')}\n`);
  writeFileSync(join(dir, 'floor.js'), s.floorSource);
  writeFileSync(join(dir, 'requests.json'), `${JSON.stringify(s.requests, null, 1)}\n`);
  console.log(`wrote policy.yaml, policy.cedar, floor.js, requests.json to ${dir}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[process.argv.indexOf('--out') + 1];
  if (!process.argv.includes('--out') || !out) {
    console.error('usage: node --import tsx bench/scope/generate.ts --out <directory>');
    process.exitCode = 2;
  } else writeScenario(out);
}
