import { ERRORS, type ErrorCode } from './codes.js';

/** A problem at a place in a source text, reported as `file:line:col: message`. */
export interface SourceIssue {
  file: string;
  line: number;
  col: number;
  message: string;
}

/** Formats an issue the way compilers do, so editors and terminals can jump to it. */
export function formatIssue(issue: SourceIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.message}`;
}

/**
 * The one error class writ throws. Decisions are values and never throw; this is for
 * misuse (an invalid policy, a forged writ) and infrastructure failure.
 */
export class WritError extends Error {
  override readonly name = 'WritError';
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code],
    readonly data: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Raised when a policy does not load; `issues` holds every problem with its position. */
export class PolicyError extends WritError {
  constructor(readonly issues: readonly SourceIssue[]) {
    super('POLICY_INVALID', issues.map(formatIssue).join('\n'), { issues });
  }
}

/**
 * What a caught value says, for a message: its `message` when it is an `Error`, else the
 * value as text (a thrown string is its own message). Never throws itself — a library or a
 * caller's callback may throw anything, `null` or an object that cannot be turned into
 * text included, and reporting it must not fail in turn.
 */
export function messageOf(error: unknown): string {
  try {
    return String(error instanceof Error ? error.message : error);
  } catch {
    return 'unreadable error';
  }
}
