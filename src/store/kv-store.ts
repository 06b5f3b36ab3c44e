import { WritError } from '../core/errors.js';
import type { JsonObject } from '../core/json.js';
import type { LogEntry, LogHead } from '../log/entry.js';
import type { ChainReport } from '../log/verify.js';
import type { PolicySourceText } from '../policy/index.js';
import { jsonCopy } from './copy.js';
import type { Kind, KvView } from './ledger.js';
import * as ledger from './ledger.js';
import type {
  ApprovalDecision,
  ApprovalRecord,
  ApprovalStatus,
  ApprovalStep,
  ApprovalStepResult,
  AuthorizeRequest,
  AuthorizeResult,
  BudgetState,
  DecisionLog,
  LoggedAttrs,
  OpenWrit,
  SessionRecord,
  SettleRequest,
  SettleResult,
  Store,
  SweepReport,
} from './types.js';

/**
 * The log entry a store's decision index led to for decision `id`, checked to be that
 * decision. The index is kept beside the hash chain, not in it, so nothing else would show
 * an index edited to point at another entry — a look-up would answer with a different
 * decision. A mismatch is a `STORE_FAILURE`, not "not found": the decision may well be in
 * the log, and the store was changed outside writ, which must be said, not papered over.
 */
export function indexedDecision(id: string, seq: number, entry: LogEntry): LogEntry {
  const found = entry.decision?.id;
  if (found === id) return entry;
  throw new WritError(
    'STORE_FAILURE',
    `the store's decision index is wrong: it finds ${id} at log entry ${seq}, which is ${found === undefined ? `a ${entry.kind} entry` : `decision ${found}`}`,
    { record: 'decision index', id, seq },
  );
}

/**
 * A {@link Store} over a key-value view that runs the {@link ledger} inside its own
 * transactions. Memory and SQLite differ only in how they run a step atomically (`atomic`),
 * how they read outside a step (`view`) and how they read their log.
 */
export abstract class KvStore implements Store {
  abstract readonly kind: string;
  /** Runs `step` as one atomic, isolated step and returns what it returned. */
  protected abstract atomic<T>(step: (view: KvView) => T): Promise<T>;
  /** Reads outside a write step. */
  protected abstract readonly view: KvView;
  /** Whether `close` was called. */
  protected abstract readonly closed: boolean;
  /** Refuses, as the store's own failure, what is asked of it once closed. */
  protected assertOpen(): void {
    if (this.closed) throw this.closedError();
  }
  protected closedError(): WritError {
    return new WritError('STORE_FAILURE', `the ${this.kind} store is closed`);
  }
  /**
   * {@link view}, for a read outside a step, while the store is open: a closed store answers
   * nothing, rather than what it held (memory) or a driver's TypeError (SQLite).
   */
  protected get reads(): KvView {
    this.assertOpen();
    return this.view;
  }
  abstract readLog(afterSeq: number, limit: number): Promise<LogEntry[]>;
  abstract findDecision(id: string): Promise<LogEntry | undefined>;
  abstract verifyLog(anchors?: readonly LogHead[]): Promise<ChainReport>;
  abstract close(): Promise<void>;
  /**
   * A copy of a value crossing the store's boundary, in or out: the views hand out the
   * objects the store keeps (memory's tables, SQLite's cache), and a caller must never be
   * able to change the store's state behind its back.
   */
  protected own<T>(value: T): T {
    return value === undefined ? value : jsonCopy(value);
  }

  async authorize(request: AuthorizeRequest): Promise<AuthorizeResult> {
    const result = await this.atomic((view) => ledger.authorize(view, request));
    // A replay carries the stored result: the caller gets a copy, not the record.
    return result.status === 'replay' ? this.own(result) : result;
  }
  settle(request: SettleRequest): Promise<SettleResult> {
    // The result is kept for replays: keep a copy, not the caller's object.
    const own =
      request.result === undefined ? request : { ...request, result: this.own(request.result) };
    return this.atomic((view) => ledger.settle(view, own));
  }
  record(log: DecisionLog, now: number): Promise<LogEntry> {
    return this.atomic((view) => ledger.record(view, log, now));
  }
  async getSession(id: string, now: number): Promise<SessionRecord | undefined> {
    return this.own(ledger.getSession(this.reads, id, now));
  }
  putSession(
    id: string,
    attrs: JsonObject,
    now: number,
    logged?: LoggedAttrs,
  ): Promise<SessionRecord> {
    const own = this.own(attrs);
    const asLogged = logged === undefined ? { attrs: own, redacted: [] } : this.own(logged);
    return this.atomic((view) => this.own(ledger.putSession(view, id, own, now, asLogged)));
  }
  async listSessions(now: number): Promise<SessionRecord[]> {
    return this.own(ledger.listSessions(this.reads, now));
  }
  requestApproval(step: ApprovalStep): Promise<ApprovalStepResult> {
    // The store keeps the approval: its own copy. A replay's result is the caller's copy.
    const own = { ...step, approval: this.own(step.approval) };
    return this.atomic((view) => this.own(ledger.requestApproval(view, own)));
  }
  async findApproval(
    actionDigest: string,
    policyHash: string,
    now: number,
  ): Promise<ApprovalRecord | undefined> {
    return this.own(ledger.findApproval(this.reads, actionDigest, policyHash, now));
  }
  async getApproval(id: string, now: number): Promise<ApprovalRecord | undefined> {
    return this.own(ledger.getApproval(this.reads, id, now));
  }
  async listApprovals(now: number, status?: ApprovalStatus): Promise<ApprovalRecord[]> {
    return this.own(ledger.listApprovals(this.reads, now, status));
  }
  decideApproval(id: string, decision: ApprovalDecision, now: number): Promise<ApprovalRecord> {
    return this.atomic((view) => this.own(ledger.decideApproval(view, id, decision, now)));
  }
  /**
   * The next keys of `kind` for a sweep to look at, at most `limit`, after those of the last
   * call; `done` when they reach the end of the kind (the next call starts over).
   */
  protected abstract sweepKeys(kind: Kind, limit: number): { keys: string[]; done: boolean };

  /**
   * The kinds whose keys the current pass has gone through to the end. They wait for the
   * others: a kind started over as soon as it finished would keep a pass from ever being
   * done at once for all of them — with 3 batches of one kind and 4 of another, 12 calls.
   */
  readonly #sweptKinds = new Set<Kind>();

  async sweep(now: number, limit: number): Promise<SweepReport> {
    this.assertOpen();
    const report: SweepReport = { examined: 0, removed: {}, done: false };
    for (const kind of ledger.SWEPT_KINDS) {
      if (this.#sweptKinds.has(kind)) continue;
      const { keys, done } = this.sweepKeys(kind, limit);
      report.examined += keys.length;
      if (done) this.#sweptKinds.add(kind);
      if (keys.length === 0) continue;
      const removed = await this.atomic((view) => ledger.sweep(view, kind, keys, now));
      if (removed > 0) report.removed[kind] = removed;
    }
    if (this.#sweptKinds.size === ledger.SWEPT_KINDS.length) {
      report.done = true;
      this.#sweptKinds.clear();
    }
    return report;
  }

  async listBudgets(now: number): Promise<BudgetState[]> {
    return this.own(ledger.listBudgets(this.reads, now));
  }
  async listOpenWrits(now: number): Promise<OpenWrit[]> {
    return this.own(ledger.listOpenWrits(this.reads, now));
  }
  putPolicy(hash: string, sources: PolicySourceText[]): Promise<void> {
    const own = this.own(sources);
    return this.atomic((view) => ledger.putPolicy(view, hash, own));
  }
  async logHead(): Promise<LogHead | undefined> {
    return this.own(this.reads.get('log-head', 'head') as LogHead | undefined);
  }
  async getPolicy(hash: string): Promise<PolicySourceText[] | undefined> {
    return this.own(this.reads.get('policy', hash) as PolicySourceText[] | undefined);
  }
}
