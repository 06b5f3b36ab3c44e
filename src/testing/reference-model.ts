import type { Json } from '../core/json.js';

/*
 * A reference model of writ's invariants for one small, fixed policy, written from the
 * semantics (DESIGN §3–§4 and the Store TSDoc) and deliberately not from the ledger: state
 * is aged eagerly as the clock moves (a writ that expires unsettled gives its session its
 * labels then, rather than leaving them pending), rate limits are a credit bucket rather
 * than GCRA, and action identity is a string of its parts rather than a digest. The
 * property cases run random interleavings on a store through the engine and on this model,
 * and require the same answers.
 */

export const MINUTE = 60_000;

/** How long an idempotency claim whose writ expired unsettled stays in doubt. */
export type ClaimExpiry = 'in_doubt' | 'retry';

/** The policy the model knows, as YAML. */
export function modelPolicy(onExpiry: ClaimExpiry): string {
  return `version: 1
name: reference-model
tools:
  pay:
    - forbid: 'args.to == "mallory"'
    - allow: true
  deploy:
    - allow: true
  note:
    - allow: true
budgets:
  spend:
    match: 'tool == "pay"'
    limit: 10
    window: lifetime
    cost: 'args.amount'
    hold_ttl: 1m
    on_expiry: release
  hourly:
    match: 'tool == "pay"'
    per: 'principal.id'
    limit: 7
    window: 1h
    cost: 'args.amount'
    hold_ttl: 2m
    on_expiry: capture
rate_limits:
  deploy-rate:
    match: 'tool == "deploy"'
    per: 'principal.id'
    rate: 2/1m
    burst: 2
concurrency:
  slots:
    match: 'tool == "deploy"'
    max: 2
    lease: 30s
idempotency:
  once:
    match: 'has(request.idempotencyKey)'
    key: 'request.idempotencyKey'
    ttl: 10m
    on_expiry: ${onExpiry}
replay:
  max_age: 10m
labels:
  untrusted-content:
    when: 'tool in ["note"] && args.to != "alice"'
  prod:
    when: 'tool == "deploy" && args.env == "b"'
flow:
  - forbid: '"untrusted-content" in session.labels && tool == "pay" && args.to != "alice"'
  - forbid: '"prod" in session.labels && "untrusted-content" in session.labels && tool == "deploy"'
`;
}

// The numbers of the policy above, as the model uses them.
const MAX_AGE = 10 * MINUTE;
const NONCE_MEMORY = 2 * MAX_AGE;
const WRIT_TTL = 15 * MINUTE;
/** How long a late settle may correct a hold captured at its expiry (the ledger's LATE_SETTLE_MS). */
const LATE_SETTLE = 24 * 60 * MINUTE;
const BUDGETS = [
  {
    name: 'spend',
    limit: 10,
    windowMs: null,
    holdTtl: MINUTE,
    capture: false,
    perPrincipal: false,
  },
  {
    name: 'hourly',
    limit: 7,
    windowMs: 60 * MINUTE,
    holdTtl: 2 * MINUTE,
    capture: true,
    perPrincipal: true,
  },
] as const;
const RATE_INTERVAL = MINUTE / 2;
const RATE_TOLERANCE = 2 * RATE_INTERVAL;
const SLOTS = 2;
const LEASE = 30_000;
const CLAIM_TTL = 10 * MINUTE;

/** The labels the policy's `labels:` give a call, in policy order. */
export function callLabels(a: ModelAction): string[] {
  const labels: string[] = [];
  if (a.tool === 'note' && a.to !== 'alice') labels.push('untrusted-content');
  if (a.tool === 'deploy' && a.env === 'b') labels.push('prod');
  return labels;
}

/** The first `flow:` rule that forbids `a` in a session with `labels`, if any. */
export function flowRule(a: ModelAction, labels: readonly string[]): string | undefined {
  const untrusted = labels.includes('untrusted-content');
  if (untrusted && a.tool === 'pay' && a.to !== 'alice') return 'flow[0]';
  if (untrusted && labels.includes('prod') && a.tool === 'deploy') return 'flow[1]';
  return undefined;
}

/** One proposed call, in the model's terms. */
export interface ModelAction {
  tool: 'pay' | 'deploy' | 'note';
  principal: 'p1' | 'p2';
  session: 's1' | 's2';
  to: 'alice' | 'bob' | 'mallory';
  amount: number;
  env: 'a' | 'b';
  key: 'k1' | 'k2' | 'k3' | undefined;
  nonce: 'n1' | 'n2' | 'n3' | undefined;
  /** `issuedAt` minus now, ms. */
  skew: number;
}

export type SettleStatus = 'succeeded' | 'failed' | 'cancelled';

/** The request the engine gets for `a` at `now`. */
export function engineRequest(a: ModelAction, now: number): Record<string, unknown> {
  return {
    tool: a.tool,
    args: argsOf(a),
    principal: { id: a.principal },
    session: { id: a.session },
    issuedAt: new Date(now + a.skew).toISOString(),
    ...(a.key !== undefined && { idempotencyKey: a.key }),
    ...(a.nonce !== undefined && { nonce: a.nonce }),
  };
}

function argsOf(a: ModelAction): Record<string, Json> {
  if (a.tool === 'pay') return { to: a.to, amount: a.amount };
  if (a.tool === 'deploy') return { env: a.env };
  return { to: a.to };
}

/** Which action a claim was made for: what an action digest identifies. */
function identity(a: ModelAction): string {
  return `${a.tool}|${a.principal}|${a.session}|${JSON.stringify(argsOf(a))}`;
}

/** The first reason of a refusal, with only the fields a store fills in. */
export interface ExpectedReason {
  code: string;
  rule?: string;
  key?: string;
  remaining?: number;
  resetAt?: string;
}

/** What the model says the engine answers. */
export type Prediction =
  | { outcome: 'deny'; reason: ExpectedReason }
  | { outcome: 'replay'; result: Json }
  | {
      outcome: 'allow';
      expiresAt: number;
      reservations: Json[];
      fencing?: Record<string, number>;
    };

interface Budget {
  limit: number;
  windowEnd: number | null;
  spent: number;
  /** Live holds by writ. */
  holds: Record<string, number>;
  /** Holds captured when they expired, by writ, until a late settle corrects them. */
  captured: Record<string, number>;
  /** How far settled actual costs may have taken spent + held past the limit. */
  allowance: number;
  holdsExpireAt: Record<string, number>;
  capture: boolean;
}
interface Claim {
  identity: string;
  done: boolean;
  writId: string;
  writExpiresAt: number;
  forgetAt: number;
  result: Json;
}
interface Writ {
  /** `finalAt`: for a hold captured at expiry, when a late settle no longer corrects it. */
  budgets: { key: string; amount: number; finalAt?: number }[];
  slot: boolean;
  claim: string | undefined;
  settled: boolean;
  session: string;
  expiresAt: number;
  /**
   * Labels the call gives its session once it ran, not given yet: a settle that says it ran
   * (succeeded or failed) gives them, and so does the writ's expiry if nobody settled it
   * before — the call may have run. A cancel before the expiry drops them.
   */
  labels: string[];
}
/** A session as `sessions.get` shows it (its attributes are always empty here). */
export interface ModelSession {
  id: string;
  attrs: Record<string, never>;
  opened: boolean;
  labels: string[];
  version: number;
}
interface Session {
  opened: boolean;
  /** Grows when the host opens the session and when a settle adds a label it lacked. */
  version: number;
  labels: string[];
}
interface State {
  budgets: Record<string, Budget>;
  buckets: Record<string, { credit: number; at: number }>;
  fence: number;
  /** Lease expiry by writ. */
  leases: Record<string, number>;
  claims: Record<string, Claim>;
  /** When each used nonce may be used again. */
  nonces: Record<string, number>;
  writs: Record<string, Writ>;
  sessions: Record<string, Session>;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The budget keys `a` charges at `now`, in policy order. */
function budgetKeys(a: ModelAction, now: number) {
  return BUDGETS.map((b) => {
    let key: string = b.name;
    if (b.perPrincipal) key += `:${a.principal}`;
    let windowEnd: number | null = null;
    if (b.windowMs !== null) {
      const start = now - (now % b.windowMs);
      windowEnd = start + b.windowMs;
      key += `:${iso(start).replace('.000Z', 'Z')}`;
    }
    return { ...b, key, windowEnd };
  });
}

/** The model. Pure data inside, so a copy is cheap and exact. */
export class ReferenceModel {
  #s: State;
  constructor(
    readonly onExpiry: ClaimExpiry,
    state?: State,
  ) {
    this.#s = state ?? {
      budgets: {},
      buckets: {},
      fence: 0,
      leases: {},
      claims: {},
      nonces: {},
      writs: {},
      sessions: {},
    };
  }

  clone(): ReferenceModel {
    return new ReferenceModel(this.onExpiry, structuredClone(this.#s));
  }

  #session(id: string): Session {
    this.#s.sessions[id] ??= { opened: false, version: 0, labels: [] };
    return this.#s.sessions[id];
  }

  /** Adds `labels` to session `id`; returns those it did not have, in the order given. */
  #label(id: string, labels: string[]): string[] {
    const session = this.#session(id);
    const added = labels.filter((label) => !session.labels.includes(label));
    session.labels = [...session.labels, ...added].sort();
    return added;
  }

  /** The labels of session `id` at `now`. */
  labels(id: string, now: number): string[] {
    this.#age(now);
    return [...(this.#s.sessions[id]?.labels ?? [])];
  }

  /**
   * Lets time pass: holds past their expiry are released or captured; writs past their
   * expiry, never settled, give their session their labels.
   */
  #age(now: number) {
    for (const writ of Object.values(this.#s.writs)) {
      if (writ.settled || writ.expiresAt > now || writ.labels.length === 0) continue;
      this.#label(writ.session, writ.labels);
      writ.labels = [];
    }
    for (const budget of Object.values(this.#s.budgets)) {
      for (const [writ, at] of Object.entries(budget.holdsExpireAt)) {
        if (at > now) continue;
        if (budget.capture) {
          budget.spent += budget.holds[writ]!;
          budget.captured[writ] = budget.holds[writ]!;
        }
        delete budget.holds[writ];
        delete budget.holdsExpireAt[writ];
      }
    }
  }

  #credit(key: string, now: number): number {
    const bucket = this.#s.buckets[key];
    return bucket ? Math.min(RATE_TOLERANCE, bucket.credit + (now - bucket.at)) : RATE_TOLERANCE;
  }

  #liveLeases(now: number): number[] {
    return Object.values(this.#s.leases).filter((at) => at > now);
  }

  /** What the engine must answer for `a` at `now`. Changes nothing but the passing of time. */
  predict(a: ModelAction, now: number): Prediction {
    this.#age(now);
    const deny = (reason: ExpectedReason): Prediction => ({ outcome: 'deny', reason });
    if (Math.abs(a.skew) > MAX_AGE)
      return deny({ code: 'REQUEST_EXPIRED', rule: 'replay.max_age' });
    if (a.tool === 'pay' && a.to === 'mallory')
      return deny({ code: 'DENIED_BY_RULE', rule: 'tools.pay[0]' });
    const flow = flowRule(a, this.labels(a.session, now));
    if (flow !== undefined) return deny({ code: 'DENIED_BY_RULE', rule: flow });

    const reservations: Json[] = [];
    if (a.nonce !== undefined) {
      const key = `${a.principal}:${a.nonce}`;
      if ((this.#s.nonces[key] ?? 0) > now)
        return deny({ code: 'NONCE_REPLAYED', rule: 'replay', key });
      reservations.push({ kind: 'nonce', key });
    }
    if (a.key !== undefined) {
      const key = `once:${a.key}`;
      const rule = 'idempotency.once';
      const claim = this.#s.claims[key];
      if (claim && claim.forgetAt > now) {
        if (claim.identity !== identity(a))
          return deny({ code: 'IDEMPOTENCY_MISMATCH', rule, key });
        if (claim.done) return { outcome: 'replay', result: claim.result };
        if (claim.writExpiresAt > now)
          return deny({
            code: 'IDEMPOTENCY_IN_FLIGHT',
            rule,
            key,
            resetAt: iso(claim.writExpiresAt),
          });
        if (this.onExpiry === 'in_doubt') return deny({ code: 'IDEMPOTENCY_IN_DOUBT', rule, key });
      }
      reservations.push({ kind: 'idempotency', key });
    }
    // A writ lives as long as its longest hold or lease; one with neither, WRIT_TTL.
    let reserved = 0;
    if (a.tool === 'pay') {
      for (const b of budgetKeys(a, now)) {
        const row = this.#s.budgets[b.key];
        const held = row ? Object.values(row.holds).reduce((x, y) => x + y, 0) : 0;
        const left = b.limit - (row?.spent ?? 0) - held;
        if (a.amount > left) {
          return deny({
            code: 'BUDGET_EXHAUSTED',
            rule: `budgets.${b.name}`,
            key: b.key,
            remaining: Math.max(0, left),
            ...(b.windowEnd !== null && { resetAt: iso(b.windowEnd) }),
          });
        }
        reservations.push({ kind: 'budget', key: b.key, amount: a.amount });
        reserved = Math.max(reserved, b.holdTtl);
      }
    }
    let fencing: Record<string, number> | undefined;
    if (a.tool === 'deploy') {
      const key = `deploy-rate:${a.principal}`;
      const credit = this.#credit(key, now);
      if (credit < RATE_INTERVAL) {
        return deny({
          code: 'RATE_LIMITED',
          rule: 'rate_limits.deploy-rate',
          key,
          remaining: 0,
          resetAt: iso(now + RATE_INTERVAL - credit),
        });
      }
      reservations.push({ kind: 'rate', key });
      const live = this.#liveLeases(now);
      if (live.length >= SLOTS) {
        return deny({
          code: 'CONCURRENCY_LIMIT',
          rule: 'concurrency.slots',
          key: 'slots',
          remaining: 0,
          resetAt: iso(Math.min(...live)),
        });
      }
      reservations.push({ kind: 'concurrency', key: 'slots' });
      fencing = { slots: this.#s.fence + 1 };
      reserved = Math.max(reserved, LEASE);
    }
    return {
      outcome: 'allow',
      expiresAt: now + (reserved > 0 ? reserved : WRIT_TTL),
      reservations,
      ...(fencing && { fencing }),
    };
  }

  /** Records that `a` was allowed at `now` as writ `writId` (after `predict` said allow). */
  commit(a: ModelAction, now: number, writId: string): void {
    const p = this.predict(a, now);
    if (p.outcome !== 'allow') throw new Error(`the model would not allow ${identity(a)}`);
    const writ: Writ = {
      budgets: [],
      slot: false,
      claim: undefined,
      settled: false,
      session: a.session,
      expiresAt: p.expiresAt,
      labels: callLabels(a),
    };
    if (writ.labels.length > 0) this.#session(a.session);
    if (a.nonce !== undefined) this.#s.nonces[`${a.principal}:${a.nonce}`] = now + NONCE_MEMORY + 1;
    if (a.key !== undefined) {
      writ.claim = `once:${a.key}`;
      this.#s.claims[writ.claim] = {
        identity: identity(a),
        done: false,
        writId,
        writExpiresAt: p.expiresAt,
        // Kept at least while the writ may run, however short the policy's ttl.
        forgetAt: Math.max(now + CLAIM_TTL, p.expiresAt),
        result: null,
      };
    }
    if (a.tool === 'pay') {
      for (const b of budgetKeys(a, now)) {
        this.#s.budgets[b.key] ??= {
          limit: b.limit,
          windowEnd: b.windowEnd,
          spent: 0,
          holds: {},
          captured: {},
          allowance: 0,
          holdsExpireAt: {},
          capture: b.capture,
        };
        const row = this.#s.budgets[b.key]!;
        row.holds[writId] = a.amount;
        row.holdsExpireAt[writId] = Math.min(p.expiresAt, now + b.holdTtl);
        writ.budgets.push({
          key: b.key,
          amount: a.amount,
          ...(b.capture && { finalAt: row.holdsExpireAt[writId] + LATE_SETTLE }),
        });
      }
    }
    if (a.tool === 'deploy') {
      const key = `deploy-rate:${a.principal}`;
      this.#s.buckets[key] = { credit: this.#credit(key, now) - RATE_INTERVAL, at: now };
      this.#s.fence++;
      this.#s.leases[writId] = Math.min(p.expiresAt, now + LEASE);
      writ.slot = true;
    }
    this.#s.writs[writId] = writ;
  }

  /**
   * Settles a writ: the overage per budget key and the labels its session gained, or
   * `undefined` when the writ is unknown or already settled (the engine must then throw
   * `WRIT_INVALID`).
   */
  settle(
    writId: string,
    status: SettleStatus,
    cost: number | undefined,
    result: Json | undefined,
    now: number,
  ): { overage: Record<string, number>; labelsAdded: string[] } | undefined {
    this.#age(now);
    const writ = this.#s.writs[writId];
    if (!writ || writ.settled) return undefined;
    writ.settled = true;
    const succeeded = status === 'succeeded';
    const overage: Record<string, number> = {};
    for (const { key, amount, finalAt } of writ.budgets) {
      const row = this.#s.budgets[key]!;
      // A capture a day old is final: nothing to correct, nothing to report.
      if (finalAt !== undefined && now >= finalAt) {
        delete row.captured[writId];
        continue;
      }
      const live = row.holds[writId];
      const captured = row.captured[writId];
      // Failure voids; success without a cost is what was held; a given cost is the truth.
      const actual = cost ?? (succeeded ? amount : 0);
      const stillCounted = live ?? captured ?? 0;
      row.spent += actual - (captured ?? 0);
      row.allowance += Math.max(0, actual - stillCounted);
      delete row.holds[writId];
      delete row.holdsExpireAt[writId];
      delete row.captured[writId];
      if (actual > amount) overage[key] = actual - amount;
    }
    if (writ.slot) delete this.#s.leases[writId];
    if (writ.claim !== undefined) {
      const claim = this.#s.claims[writ.claim];
      if (claim?.writId === writId) {
        if (succeeded) {
          claim.done = true;
          claim.result = result ?? null;
        } else delete this.#s.claims[writ.claim];
      }
    }
    // A call that ran, even one that failed, labels its session; a cancelled one never ran.
    // Labels an expiry gave are already there (`#age`), and no settle takes them back.
    const labelsAdded = status === 'cancelled' ? [] : this.#label(writ.session, writ.labels);
    writ.labels = [];
    if (labelsAdded.length > 0) this.#session(writ.session).version++;
    return { overage, labelsAdded };
  }

  /** The host opens session `id` (with no attributes): its labels stay. */
  open(id: string, now: number): ModelSession {
    this.#age(now);
    const session = this.#session(id);
    session.opened = true;
    session.version++;
    return this.#view(id, session);
  }

  #view(id: string, s: Session): ModelSession {
    return { id, attrs: {}, opened: s.opened, labels: [...s.labels], version: s.version };
  }

  /**
   * Every session at `now`, sorted by id: one the host opened, one with labels, and one in
   * which a labelled call may still run. Nothing else keeps a session.
   */
  sessions(now: number): ModelSession[] {
    this.#age(now);
    const running = new Set(
      Object.values(this.#s.writs)
        .filter((w) => !w.settled && w.labels.length > 0)
        .map((w) => w.session),
    );
    return Object.entries(this.#s.sessions)
      .filter(([id, s]) => s.opened || s.labels.length > 0 || running.has(id))
      .map(([id, s]) => this.#view(id, s))
      .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }

  /** Every budget key at `now`, as `budgets()` lists them, sorted by key. */
  budgets(now: number) {
    this.#age(now);
    return Object.entries(this.#s.budgets)
      .map(([key, row]) => {
        const held = Object.values(row.holds).reduce((x, y) => x + y, 0);
        return {
          key,
          limit: row.limit,
          spent: row.spent,
          held,
          remaining: row.limit - row.spent - held,
          windowEnd: row.windowEnd,
        };
      })
      .sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  }

  /** How far settled actual costs may have taken a budget past its limit. */
  allowance(key: string): number {
    return this.#s.budgets[key]?.allowance ?? 0;
  }
}

/** Constants the property's own invariant checks need. */
export const MODEL_LIMITS = {
  maxAge: MAX_AGE,
  nonceMemory: NONCE_MEMORY,
  slots: SLOTS,
  claimTtl: CLAIM_TTL,
} as const;
