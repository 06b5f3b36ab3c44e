import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { styleText } from 'node:util';
import { formatIssue, PolicyError } from '../core/errors.js';
import { type CompiledPolicy, compilePolicy } from '../policy/index.js';
import { loadPolicy } from '../runtime/load-policy.js';

/** Writes one line to standard output. */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Exit codes shared by every command. */
export const EXIT = { NOT_ALLOWED: 1, FAILED: 1, INVALID_INPUT: 2 } as const;

/** Raised inside a command to stop with an exit code and, if given, a message on stderr. */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}

/** Reads a file, or standard input for `-`; a failure becomes exit 2 with the path. */
export function readInput(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/**
 * Loads a policy from a file, or from standard input for `-` (its includes relative to the
 * working directory); problems become exit 2 with `file:line:col: message` lines.
 */
export function loadPolicyOrExit(path: string): CompiledPolicy {
  const text = readInput(path);
  try {
    if (path !== '-') return loadPolicy(path);
    return compilePolicy(
      { path: '<stdin>', text },
      {
        resolve: (from, ref) => (isAbsolute(ref) ? ref : join(dirname(from), ref)),
        read: (file) => readFileSync(file, 'utf8'),
      },
    );
  } catch (error) {
    if (error instanceof PolicyError)
      throw new CliExit(EXIT.INVALID_INPUT, error.issues.map(formatIssue).join('\n'));
    // The file changed between the two reads.
    if ((error as NodeJS.ErrnoException).code !== undefined)
      throw new CliExit(
        EXIT.INVALID_INPUT,
        `${path}: cannot read: ${(error as NodeJS.ErrnoException).code}`,
      );
    throw error;
  }
}

/** Parses JSON text, naming the file and the position of a syntax error. */
export function parseJsonOrExit(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${path === '-' ? '<stdin>' : path}: invalid JSON: ${(error as Error).message}`,
    );
  }
}

type Style = Parameters<typeof styleText>[0];

/** Colours text when writing to a terminal that wants colour. */
export function paint(style: Style, text: string): string {
  const colour = process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  return colour ? styleText(style, text) : text;
}
