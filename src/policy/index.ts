export type { CelContext } from './cel.js';
export type {
  CompiledBudget,
  CompiledConcurrency,
  CompiledIdempotency,
  CompiledLabel,
  CompiledPolicy,
  CompiledRateLimit,
  CompiledReplay,
  CompiledRule,
  Effect,
  PolicySourceText,
  SourceReader,
} from './compile.js';
export { compilePolicy, includedName } from './compile.js';
export type { ScopeVerdict, SessionView } from './evaluate.js';
export { buildContext, evaluateScope, labelsAfter } from './evaluate.js';
export {
  emailDomain,
  globMatch,
  normalizePath,
  pathWithin,
  urlHost,
  urlScheme,
} from './helpers.js';
export type { InvariantPlan } from './plan.js';
export { derivedKeyDigest, planInvariants, verdictWithPlan } from './plan.js';
export type { CaseResult } from './policy-tests.js';
export { runPolicyTests } from './policy-tests.js';
export type { PolicyDocument } from './schema.js';
export { policyJsonSchema } from './schema.js';
