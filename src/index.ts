/**
 * writ — deterministic execution authorization for AI agents.
 *
 * The root entry holds the engine and the in-memory store; stores with drivers live behind
 * their own import paths (`writ/sqlite`, …) so that importing `writ` stays light.
 */
export type { Action, Principal, SessionRef } from './core/action.js';
export { parseAction, TOOL_NAME } from './core/action.js';
export { canonicalJson } from './core/canonical-json.js';
export type { Clock, IdSource, ManualClock } from './core/clock.js';
export { manualClock, sequentialIds } from './core/clock.js';
export type { ErrorCode, ReasonCode } from './core/codes.js';
export { ERRORS, REASONS } from './core/codes.js';
export type { ApprovalRequest, Decision, Outcome, Reason, Writ } from './core/decision.js';
export { actionDigest, digestJson, signingPayload } from './core/digest.js';
export type { SourceIssue } from './core/errors.js';
export { formatIssue, PolicyError, WritError } from './core/errors.js';
export type { Json, JsonLimits, JsonObject } from './core/json.js';
export { DEFAULT_JSON_LIMITS } from './core/json.js';
export type { PlanOp } from './core/plan.js';
export { MAX_AMOUNT } from './core/plan.js';
export { decideScope } from './engine/decide.js';
export type {
  ExecuteOptions,
  ExecuteResult,
  GuardCall,
  GuardContext,
  GuardDefaults,
  SettleOutcome,
  WritEngine,
  WritOptions,
} from './engine/writ.js';
export { createWrit } from './engine/writ.js';
export type { CompiledPolicy, SessionView } from './policy/index.js';
export { compilePolicy, policyJsonSchema, runPolicyTests } from './policy/index.js';
export { loadPolicy } from './runtime/load-policy.js';
export { randomIds, systemClock } from './runtime/system.js';
export { memoryStore } from './store/memory/index.js';
export type {
  ApprovalDecision,
  ApprovalRecord,
  ApprovalStatus,
  ApprovalStep,
  ApprovalStepResult,
  AuthorizeRequest,
  AuthorizeResult,
  BudgetState,
  OpenWrit,
  SessionRecord,
  SettleRequest,
  SettleResult,
  Store,
  SweepReport,
  WritRecord,
} from './store/types.js';
