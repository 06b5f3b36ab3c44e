import type { ReasonCode } from '../core/codes.js';
import { type Reason, reason } from '../core/decision.js';
import { digestJson } from '../core/digest.js';
import { ed25519KeyBytes } from '../core/ed25519.js';
import type { SourceIssue } from '../core/errors.js';
import { messageOf, PolicyError } from '../core/errors.js';
import type { Json, JsonObject } from '../core/json.js';
import { readPaths, toolGuard } from './analyze.js';
import { type CelContext, compileExpression, type ExpressionKind } from './cel.js';
import { parseDuration, parseRate } from './duration.js';
import { compileGlob, isGlob } from './glob.js';
import { normalizePath } from './helpers.js';
import { PolicySchema, type RuleDocument } from './schema.js';
import { YamlSourceFile } from './source.js';

/** A compiled condition or key: evaluates against a context, may throw. */
export type Expr = (ctx: CelContext) => unknown;

/** What a scope rule does when its condition holds. */
export type Effect = 'allow' | 'forbid' | 'require_approval';

/** The reason each kind of rule gives when its condition holds. */
const MATCHED: Record<Effect, ReasonCode> = {
  forbid: 'DENIED_BY_RULE',
  require_approval: 'APPROVAL_REQUIRED',
  allow: 'ALLOWED_BY_RULE',
};

/** The rules that can apply to one tool. */
export interface ToolScope {
  /** Its own rules (exact name and matching globs), or `undefined` if the policy does not name it. */
  rules: readonly CompiledRule[] | undefined;
  /** The flow rules its name does not rule out. */
  flow: readonly CompiledRule[];
  /**
   * Whether any call of the tool can need an approval: the policy names it, and one of its
   * rules or flow rules is a `require_approval`, or the default is. When not, an approval
   * on record changes nothing, and the engine does not look one up.
   */
  mayRequireApproval: boolean;
}

/** A scope rule, compiled. */
export interface CompiledRule {
  /** The rule's `name`, or its position such as `tools.send_money[1]`. */
  id: string;
  effect: Effect;
  when: Expr;
  /** Declaration order over the whole policy, so reasons list rules in a stable order. */
  order: number;
  /**
   * The reason a decision gives when the condition holds, built once (and frozen) rather
   * than on every decision.
   */
  matched: Reason;
  /** For `require_approval`: how long the approval request stays open. */
  expiresMs?: number;
  /** A flow rule's test on the tool name: for tools it rejects, the rule cannot match. */
  guard?: (tool: string) => boolean;
  message?: string;
}

interface Invariant {
  /** `budgets.daily-spend`, `rate_limits.outbound-mail`, … */
  id: string;
  name: string;
  match: Expr;
  /** Key expression; absent means one key for all calls. */
  per?: Expr;
}

/** A budget: hold at authorize, capture at settle. */
export interface CompiledBudget extends Invariant {
  limit: number;
  /** Fixed UTC window length in ms, or `null` for `lifetime`. */
  windowMs: number | null;
  cost: Expr | number;
  holdTtlMs: number;
  onExpiry: 'release' | 'capture';
}

/** A token bucket: `count` tokens per `periodMs`, at most `burst` saved. */
export interface CompiledRateLimit extends Invariant {
  count: number;
  periodMs: number;
  burst: number;
}

/** A counting semaphore with leases. */
export interface CompiledConcurrency extends Invariant {
  max: number;
  leaseMs: number;
}

/** An idempotency ledger rule. */
export interface CompiledIdempotency extends Invariant {
  /** Key expression; absent means derived from session, tool and canonical args. */
  key?: Expr;
  ttlMs: number;
  onExpiry: 'in_doubt' | 'retry';
}

/** A session label set when a matching call settles having run (succeeded or failed). */
export interface CompiledLabel {
  name: string;
  when: Expr;
}

/** Replay protection settings. */
export interface CompiledReplay {
  requireNonce: boolean;
  maxAgeMs?: number;
  requireSignature: boolean;
  keys: Record<string, { ed25519?: string; hmacSecretEnv?: string }>;
}

/** A loaded file of a policy, kept so any decision can be explained by the exact text. */
export interface PolicySourceText {
  path: string;
  text: string;
}

/**
 * A policy ready to evaluate: every expression compiled, tools indexed. Immutable; a reload
 * builds a new one. `hash` identifies this exact version in every decision.
 */
export interface CompiledPolicy {
  name: string;
  mode: 'enforce' | 'shadow';
  default: 'deny' | 'require_approval';
  hash: string;
  /** The merged, normalized document the hash is taken over. */
  document: JsonObject;
  sources: PolicySourceText[];
  flow: CompiledRule[];
  /** The rules for a tool (exact name and every matching glob), or `undefined` if unnamed. */
  rulesFor(tool: string): readonly CompiledRule[] | undefined;
  /** The flow rules that can match a tool: those whose condition does not rule it out. */
  flowFor(tool: string): readonly CompiledRule[];
  /** Both, in one look-up: what evaluation reads for every decision. */
  scopeFor(tool: string): ToolScope;
  budgets: CompiledBudget[];
  rateLimits: CompiledRateLimit[];
  concurrency: CompiledConcurrency[];
  idempotency: CompiledIdempotency[];
  replay: CompiledReplay;
  labels: CompiledLabel[];
  redact: string[];
  /**
   * The environment variable whose secret keys the digests of redacted values
   * (`hmac-sha256:`); without it they are plain SHA-256 (`sha256:`).
   */
  redactKeyEnv?: string;
  /** Every action path some expression reads (`args.card.number`, `meta`), for replay. */
  reads: string[][];
}

/** Reads included files; the Node loader passes the file system, tests pass a map. */
export interface SourceReader {
  /** The path of `ref` as included from the file at `from`. */
  resolve(from: string, ref: string): string;
  read(path: string): string;
}

const MAX_INCLUDED_FILES = 64;

/**
 * Compiles a policy from its root file, following `include:`. Throws {@link PolicyError}
 * with every problem found, each located as `file:line:col`.
 */
export function compilePolicy(root: PolicySourceText, reader?: SourceReader): CompiledPolicy {
  const builder = new PolicyBuilder();
  builder.addFile(root.path, root.text, reader, [], true);
  return builder.finish();
}

class PolicyBuilder {
  readonly issues: SourceIssue[] = [];
  readonly sources: PolicySourceText[] = [];
  readonly seen = new Set<string>();
  readonly document: JsonObject = Object.create(null);
  readonly exact = new Map<string, CompiledRule[]>();
  readonly globs: { pattern: string; matches: (tool: string) => boolean; rules: CompiledRule[] }[] =
    [];
  readonly flow: CompiledRule[] = [];
  readonly budgets: CompiledBudget[] = [];
  readonly rateLimits: CompiledRateLimit[] = [];
  readonly concurrency: CompiledConcurrency[] = [];
  readonly idempotency: CompiledIdempotency[] = [];
  readonly labels: CompiledLabel[] = [];
  readonly redact = new Set<string>();
  redactKeyEnv: string | undefined;
  readonly reads: string[][] = [];
  readonly ruleIds = new Set<string>();
  /** Whether a rule is named after the included file it is in (`c.yaml#tools.t[0]`). */
  namedByFile = false;
  readonly invariantNames = new Map<string, string>();
  name = 'policy';
  mode: 'enforce' | 'shadow' = 'enforce';
  defaultEffect: 'deny' | 'require_approval' = 'deny';
  replay: CompiledReplay = { requireNonce: false, requireSignature: false, keys: {} };
  order = 0;
  /** The root file's directory (with its trailing separator), to name included files. */
  rootPath = '';

  addFile(
    path: string,
    text: string,
    reader: SourceReader | undefined,
    stack: string[],
    isRoot: boolean,
  ) {
    if (this.sources.length >= MAX_INCLUDED_FILES) {
      this.issues.push({
        file: path,
        line: 1,
        col: 1,
        message: `more than ${MAX_INCLUDED_FILES} policy files`,
      });
      return;
    }
    this.sources.push({ path, text });
    this.seen.add(samePath(path));
    if (isRoot) this.rootPath = path;
    const parsed = YamlSourceFile.parse(path, text, PolicySchema, 'policy');
    if (!parsed.ok) {
      this.issues.push(...parsed.issues);
      return;
    }
    const { file, document: doc } = parsed;
    const prefix = isRoot ? '' : `${includedName(this.rootPath, path)}#`;

    if (isRoot) {
      this.name = doc.name ?? baseName(path).replace(/\.ya?ml$/, '');
      this.mode = doc.mode ?? 'enforce';
      this.defaultEffect = doc.default ?? 'deny';
    } else {
      for (const key of ['mode', 'default'] as const) {
        if (doc[key] !== undefined) {
          this.issues.push(
            file.issueAt(
              [key],
              `${key} may only be set in the root policy, not in an included file`,
              { key: true },
            ),
          );
        }
      }
    }

    for (const [pattern, rules] of Object.entries(doc.tools ?? {})) {
      const compiled = rules.flatMap((rule, i) =>
        this.rule(file, ['tools', pattern, i], rule, `${prefix}tools.${pattern}[${i}]`),
      );
      if (prefix && compiled.some((rule) => rule.id.startsWith(prefix))) this.namedByFile = true;
      if (isGlob(pattern)) {
        const existing = this.globs.find((g) => g.pattern === pattern);
        if (existing) existing.rules.push(...compiled);
        else {
          let matches: (tool: string) => boolean;
          try {
            matches = compileGlob(pattern);
          } catch (error) {
            this.issues.push(file.issueAt(['tools', pattern], messageOf(error), { key: true }));
            continue;
          }
          this.globs.push({ pattern, matches, rules: compiled });
        }
      } else {
        this.exact.set(pattern, [...(this.exact.get(pattern) ?? []), ...compiled]);
      }
    }
    (doc.flow ?? []).forEach((rule, i) => {
      for (const compiled of this.rule(file, ['flow', i], rule, `${prefix}flow[${i}]`)) {
        if (prefix && compiled.id.startsWith(prefix)) this.namedByFile = true;
        const source = rule[compiled.effect];
        const guard = typeof source === 'string' ? toolGuard(source) : undefined;
        this.flow.push(guard ? { ...compiled, guard } : compiled);
      }
    });

    for (const [name, b] of Object.entries(doc.budgets ?? {})) {
      const base = this.invariant(file, 'budgets', name, b);
      if (!base) continue;
      const cost =
        typeof b.cost === 'number'
          ? b.cost
          : b.cost === undefined
            ? 1
            : this.expr(file, ['budgets', name, 'cost'], b.cost, 'amount');
      if (cost === undefined) continue;
      this.budgets.push({
        ...base,
        limit: b.limit,
        windowMs:
          b.window === 'lifetime'
            ? null
            : this.duration(file, ['budgets', name, 'window'], b.window, 0),
        cost,
        holdTtlMs: this.duration(file, ['budgets', name, 'hold_ttl'], b.hold_ttl, 15 * 60_000),
        onExpiry: b.on_expiry ?? 'release',
      });
    }
    for (const [name, r] of Object.entries(doc.rate_limits ?? {})) {
      const base = this.invariant(file, 'rate_limits', name, r);
      const rate = parseRate(r.rate);
      if (!rate)
        this.issues.push(
          file.issueAt(
            ['rate_limits', name, 'rate'],
            'expected a rate such as 10/1m with a count ≥ 1 and a period > 0',
          ),
        );
      if (!base || !rate) continue;
      this.rateLimits.push({ ...base, ...rate, burst: r.burst ?? rate.count });
    }
    for (const [name, c] of Object.entries(doc.concurrency ?? {})) {
      const base = this.invariant(file, 'concurrency', name, c);
      if (!base) continue;
      this.concurrency.push({
        ...base,
        max: c.max,
        leaseMs: this.duration(file, ['concurrency', name, 'lease'], c.lease, 5 * 60_000),
      });
    }
    for (const [name, d] of Object.entries(doc.idempotency ?? {})) {
      const base = this.invariant(file, 'idempotency', name, d);
      const key =
        d.key === undefined
          ? undefined
          : this.expr(file, ['idempotency', name, 'key'], d.key, 'key');
      if (!base || (d.key !== undefined && key === undefined)) continue;
      const item: CompiledIdempotency = {
        ...base,
        ttlMs: this.duration(file, ['idempotency', name, 'ttl'], d.ttl, 24 * 3_600_000),
        onExpiry: d.on_expiry ?? 'in_doubt',
      };
      if (key) item.key = key;
      this.idempotency.push(item);
    }
    for (const [name, l] of Object.entries(doc.labels ?? {})) {
      if (!this.claimName(file, 'labels', name)) continue;
      const when = this.expr(file, ['labels', name, 'when'], l.when, 'condition');
      if (when) this.labels.push({ name, when });
    }
    if (doc.replay) {
      if (!isRoot)
        this.issues.push(
          file.issueAt(['replay'], 'replay may only be set in the root policy', { key: true }),
        );
      const maxAgeMs =
        doc.replay.max_age === undefined
          ? undefined
          : this.duration(file, ['replay', 'max_age'], doc.replay.max_age, 0);
      // A nonce is only "once" for as long as it is remembered: bounding how long means
      // bounding how old a request may be, or a replay after that time would pass.
      if (doc.replay.require_nonce && doc.replay.max_age === undefined)
        this.issues.push(
          file.issueAt(
            ['replay', 'require_nonce'],
            'require_nonce needs max_age: nonces are remembered for 2 × max_age, and a request older than that must be refused',
          ),
        );
      const keys: CompiledReplay['keys'] = Object.create(null);
      for (const [principal, key] of Object.entries(doc.replay.keys ?? {})) {
        if ((key.ed25519 === undefined) === (key.hmac_secret_env === undefined)) {
          this.issues.push(
            file.issueAt(
              ['replay', 'keys', principal],
              'set exactly one of ed25519, hmac_secret_env',
            ),
          );
        }
        // A key that cannot verify anything would deny every signed request of the
        // principal at run time: the policy is wrong, and says so when it loads.
        if (key.ed25519 !== undefined && ed25519KeyBytes(key.ed25519) === undefined)
          this.issues.push(
            file.issueAt(
              ['replay', 'keys', principal, 'ed25519'],
              'not a usable Ed25519 public key: base64 of its 32 raw bytes or of its SPKI DER, and not a point of small order (one accepts forged signatures)',
            ),
          );
        if (key.hmac_secret_env !== undefined && !ENV_NAME.test(key.hmac_secret_env))
          this.issues.push(
            file.issueAt(
              ['replay', 'keys', principal, 'hmac_secret_env'],
              `not an environment variable name: ${JSON.stringify(key.hmac_secret_env)}`,
            ),
          );
        keys[principal] = {
          ...(key.ed25519 !== undefined && { ed25519: key.ed25519 }),
          ...(key.hmac_secret_env !== undefined && { hmacSecretEnv: key.hmac_secret_env }),
        };
      }
      this.replay = {
        requireNonce: doc.replay.require_nonce ?? false,
        requireSignature: doc.replay.require_signature ?? false,
        keys,
        ...(maxAgeMs !== undefined && { maxAgeMs }),
      };
    }
    if (doc.redact_key_env !== undefined) {
      const at = ['redact_key_env'];
      if (!isRoot)
        this.issues.push(
          file.issueAt(at, 'redact_key_env may only be set in the root policy', { key: true }),
        );
      else if (!ENV_NAME.test(doc.redact_key_env))
        this.issues.push(
          file.issueAt(
            at,
            `not an environment variable name: ${JSON.stringify(doc.redact_key_env)}`,
          ),
        );
      else this.redactKeyEnv = doc.redact_key_env;
    }
    for (const [i, path] of (doc.redact ?? []).entries()) {
      const problem = redactPathProblem(path);
      if (problem) this.issues.push(file.issueAt(['redact', i], problem));
      else this.redact.add(path);
    }

    const merged = { ...doc };
    delete merged.include;
    mergeDocument(this.document, merged as unknown as JsonObject, isRoot);

    for (const [i, ref] of (doc.include ?? []).entries()) {
      if (!reader) {
        this.issues.push(
          file.issueAt(['include', i], 'include needs a file system: load the policy from a file'),
        );
        continue;
      }
      const target = reader.resolve(path, ref);
      if (
        stack.some((p) => samePath(p) === samePath(target)) ||
        samePath(target) === samePath(path)
      ) {
        this.issues.push(
          file.issueAt(['include', i], `include cycle: ${[...stack, path, target].join(' → ')}`),
        );
        continue;
      }
      if (this.seen.has(samePath(target))) continue;
      let included: string;
      try {
        included = reader.read(target);
      } catch (error) {
        this.issues.push(
          file.issueAt(['include', i], `cannot read ${target}: ${messageOf(error)}`),
        );
        continue;
      }
      this.addFile(target, included, reader, [...stack, path], false);
    }
  }

  rule(
    file: YamlSourceFile,
    path: (string | number)[],
    rule: RuleDocument,
    position: string,
  ): CompiledRule[] {
    const effects = (['allow', 'forbid', 'require_approval'] as const).filter(
      (e) => rule[e] !== undefined,
    );
    if (effects.length !== 1) {
      this.issues.push(
        file.issueAt(
          path,
          `a rule needs exactly one of allow, forbid, require_approval; found ${effects.length === 0 ? 'none' : effects.join(', ')}`,
        ),
      );
      return [];
    }
    const effect = effects[0]!;
    if (rule.expires !== undefined && effect !== 'require_approval') {
      this.issues.push(
        file.issueAt([...path, 'expires'], 'expires applies only to require_approval rules', {
          key: true,
        }),
      );
    }
    const id = rule.name ?? position;
    if (this.ruleIds.has(id)) {
      this.issues.push(
        file.issueAt([...path, 'name'], `duplicate rule name ${JSON.stringify(id)}`),
      );
      return [];
    }
    this.ruleIds.add(id);
    const when = this.expr(file, [...path, effect], rule[effect]!, 'condition');
    if (!when) return [];
    const detail = { rule: id, ...(rule.message !== undefined && { message: rule.message }) };
    const matched = Object.freeze(reason(MATCHED[effect], detail));
    const compiled: CompiledRule = { id, effect, when, order: this.order++, matched };
    if (effect === 'require_approval')
      compiled.expiresMs = this.duration(file, [...path, 'expires'], rule.expires, 15 * 60_000);
    if (rule.message !== undefined) compiled.message = rule.message;
    return [compiled];
  }

  invariant(
    file: YamlSourceFile,
    section: string,
    name: string,
    doc: { match?: string | boolean | undefined; per?: string | undefined },
  ): Invariant | undefined {
    if (!this.claimName(file, section, name)) return undefined;
    const match =
      doc.match === undefined
        ? () => true
        : this.expr(file, [section, name, 'match'], doc.match, 'condition');
    const per =
      doc.per === undefined ? undefined : this.expr(file, [section, name, 'per'], doc.per, 'key');
    if (!match || (doc.per !== undefined && !per)) return undefined;
    const invariant: Invariant = { id: `${section}.${name}`, name, match };
    if (per) invariant.per = per;
    return invariant;
  }

  claimName(file: YamlSourceFile, section: string, name: string): boolean {
    const id = `${section}.${name}`;
    const first = this.invariantNames.get(id);
    if (first !== undefined) {
      this.issues.push(
        file.issueAt([section, name], `${id} is already defined in ${first}`, { key: true }),
      );
      return false;
    }
    this.invariantNames.set(id, file.path);
    return true;
  }

  expr(
    file: YamlSourceFile,
    path: (string | number)[],
    source: string | boolean,
    kind: ExpressionKind,
  ): Expr | undefined {
    if (typeof source === 'boolean') return () => source;
    const compiled = compileExpression(source, kind);
    if (compiled.ok) {
      this.reads.push(...readPaths(source));
      return compiled.evaluate;
    }
    this.issues.push(
      file.issueAt(path, `invalid CEL: ${compiled.message}`, { offset: compiled.offset }),
    );
    return undefined;
  }

  duration(
    file: YamlSourceFile,
    path: (string | number)[],
    text: string | undefined,
    fallback: number,
  ): number {
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined)
      this.issues.push(file.issueAt(path, 'expected a duration above zero and at most 36500d'));
    return ms ?? fallback;
  }

  finish(): CompiledPolicy {
    if (this.issues.length > 0) throw new PolicyError(this.issues);
    const exact = this.exact;
    const globs = this.globs;
    const flow = this.flow;
    const asksApproval = (rule: CompiledRule) => rule.effect === 'require_approval';
    const defaultAsks = this.defaultEffect === 'require_approval';
    const cache = new Map<string, ToolScope>();
    const lookup = (tool: string) => {
      const hit = cache.get(tool);
      if (hit) return hit;
      const matching = globs.filter((g) => g.matches(tool));
      const own = exact.get(tool);
      let rules: readonly CompiledRule[] | undefined;
      if (own || matching.length > 0) {
        rules = [...(own ?? []), ...matching.flatMap((g) => g.rules)].sort(
          (a, b) => a.order - b.order,
        );
      }
      const ownFlow = flow.filter((rule) => !rule.guard || rule.guard(tool));
      const entry: ToolScope = {
        rules,
        flow: ownFlow,
        mayRequireApproval:
          rules !== undefined &&
          (defaultAsks || rules.some(asksApproval) || ownFlow.some(asksApproval)),
      };
      // The cache is bounded so a stream of distinct made-up tool names cannot grow memory.
      if (cache.size < 10_000) cache.set(tool, entry);
      return entry;
    };
    const normalized = normalize(this.document) as JsonObject;
    // Rules of an included file are named after it (`c.yaml#tools.t[0]`), and decisions
    // name their rules: two policies that merge to one document but name their rules apart
    // decide with other reasons, so then the hash covers the names too. Elsewhere a rule is
    // named by its place in the document, or by its `name:`, which the document holds.
    const hashed = this.namedByFile
      ? { policy: normalized, rules: [...this.ruleIds].sort() }
      : normalized;
    return Object.freeze({
      name: this.name,
      mode: this.mode,
      default: this.defaultEffect,
      hash: digestJson(hashed),
      document: normalized,
      sources: this.sources,
      flow: this.flow,
      rulesFor: (tool: string) => lookup(tool).rules,
      flowFor: (tool: string) => lookup(tool).flow,
      scopeFor: lookup,
      budgets: this.budgets,
      rateLimits: this.rateLimits,
      concurrency: this.concurrency,
      idempotency: this.idempotency,
      replay: this.replay,
      labels: this.labels,
      redact: [...this.redact].sort(),
      ...(this.redactKeyEnv !== undefined && { redactKeyEnv: this.redactKeyEnv }),
      reads: this.reads,
    });
  }
}

/** What a policy may name as an environment variable: `hmac_secret_env`, `redact_key_env`. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A key under which `./a.yaml` and `a.yaml` are the same file. */
function samePath(path: string): string {
  return path.includes('\0') ? path : normalizePath(path);
}

/**
 * The name the ids of an included file's rules start with: its path relative to the root
 * policy's folder, or the whole path when it is elsewhere — so two included files with the
 * same base name (teams/a/policy.yaml, teams/b/policy.yaml) give distinct rule names.
 */
export function includedName(rootPath: string, path: string): string {
  const folder = rootPath.slice(
    0,
    Math.max(rootPath.lastIndexOf('/'), rootPath.lastIndexOf('\\')) + 1,
  );
  return folder && path.startsWith(folder) ? path.slice(folder.length) : path;
}

function baseName(path: string): string {
  return path.split(/[/\\]/).pop() ?? path;
}

/** Merges an included document into the accumulated one: lists concatenate, maps union. */
function mergeDocument(into: JsonObject, doc: JsonObject, isRoot: boolean) {
  for (const [key, value] of Object.entries(doc)) {
    if (value === undefined) continue;
    const existing = into[key];
    if (Array.isArray(existing) && Array.isArray(value)) into[key] = [...existing, ...value];
    else if (isPlainObject(existing) && isPlainObject(value)) {
      const merged: JsonObject = Object.assign(Object.create(null), existing);
      for (const [k, v] of Object.entries(value)) {
        const old = merged[k];
        merged[k] = Array.isArray(old) && Array.isArray(v) ? [...old, ...v] : v;
      }
      into[key] = merged;
    } else if (isRoot || existing === undefined) into[key] = value;
  }
}

function isPlainObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Drops undefined fields so the hash depends only on what the policy says. */
function normalize(value: unknown): Json {
  if (Array.isArray(value)) return value.map(normalize);
  if (isPlainObject(value)) {
    const out: JsonObject = Object.create(null);
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = normalize(v);
    return out;
  }
  return value as Json;
}

/** Where in the action a `redact:` path may point: the maps that carry the call's data. */
const REDACT_ROOTS = ['args', 'meta', 'principal.attrs', 'session.attrs'];

/**
 * What is wrong with a `redact:` path, if anything. A path that can never match would log
 * in clear what its author meant to hide — `card_number` without `args.`, `args[0]` —
 * so it is a load error, as a misspelt variable in a condition is.
 */
function redactPathProblem(path: string): string | undefined {
  const root = REDACT_ROOTS.find((r) => path === r || path.startsWith(`${r}.`));
  const expected = `a redact path is one of ${REDACT_ROOTS.join(', ')} followed by .key or .* parts (list items by index: args.items.0.pw)`;
  if (!root) return `${JSON.stringify(path)} matches nothing: ${expected}`;
  const parts = path.slice(root.length + 1).split('.');
  if (path !== root && parts.some((part) => part === '' || /[[\]]/.test(part)))
    return `${JSON.stringify(path)} matches nothing: ${expected}`;
  // Tool globs have `**`; here it would be a key named `**`, and hide nothing where meant.
  const glob = parts.find((part) => part.includes('*') && part !== '*');
  if (path !== root && glob !== undefined)
    return `${JSON.stringify(path)}: ${JSON.stringify(glob)} is no wildcard here — * stands for one key or index, so write each depth: args.*.password, args.*.*.password`;
  return undefined;
}
