import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { styleText } from 'node:util';
import { parseRfc3339 } from '../core/action.js';
import { formatIssue, messageOf, PolicyError } from '../core/errors.js';
import { type CompiledPolicy, compilePolicy } from '../policy/index.js';
import { loadPolicy } from '../runtime/load-policy.js';

/** Writes one line to standard output. */
export function out(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/**
 * Exit codes shared by every command. `OUTPUT_CLOSED` is what a shell reports for a
 * program that SIGPIPE stopped (128 + 13), so `set -o pipefail` sees the output was cut
 * short, as it would for `cat`, and never mistakes it for a command that succeeded.
 */
export const EXIT = { NOT_ALLOWED: 1, FAILED: 1, INVALID_INPUT: 2, OUTPUT_CLOSED: 141 } as const;

let watchingStdout = false;

/**
 * When the reader of standard output goes away (`writ log export | head -1`), stops the
 * process at once and silently, as SIGPIPE stops other command-line tools: Node ignores
 * SIGPIPE, so the write fails with EPIPE instead, and would otherwise end in an unhandled
 * 'error' event with a stack trace — or, in `log tail --follow`, never end at all.
 */
export function stopQuietlyOnClosedStdout(): void {
  if (watchingStdout) return;
  watchingStdout = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(EXIT.OUTPUT_CLOSED);
    // Any other failure to write (a full disk): one line and exit 2, as for a file, and
    // never 1, which means "not allowed" or "chain broken" to a script.
    process.stderr.write(`writ: cannot write to standard output: ${error.message}\n`);
    process.exit(EXIT.INVALID_INPUT);
  });
}

/** Raised inside a command to stop with an exit code and, if given, a message on stderr. */
export class CliExit extends Error {
  constructor(
    readonly code: number,
    message = '',
  ) {
    super(message);
  }
}

/**
 * Refuses more than one input from standard input (`-`), given as `[what, path]` pairs: the
 * first would read it to its end, and the next find nothing (`Unexpected end of JSON input`).
 */
export function oneFromStdin(inputs: readonly (readonly [string, string])[]): void {
  const named = inputs.filter(([, path]) => path === '-').map(([what]) => what);
  if (named.length > 1)
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${named.join(' and ')} are ${named.length === 2 ? 'both' : 'all'} - (standard input), which can be read only once: give all but one as a file`,
    );
}

/** Reads a file, or standard input for `-`; a failure becomes exit 2 with the path. */
export function readInput(path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`,
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
      `${path === '-' ? '<stdin>' : path}: invalid JSON: ${messageOf(error)}`,
    );
  }
}

/**
 * Parses the time an option gives (`--now`, `--since`, `--until`) as RFC 3339 with an
 * offset, strictly: `Date.parse` would also take `2026-11-24` or `1`, and read a time
 * without an offset in the local time zone, so the same command would mean other times
 * on other machines.
 */
export function parseTimeFlag(flag: string, value: string): number {
  const ms = parseRfc3339(value);
  if (ms === undefined)
    throw new CliExit(
      EXIT.INVALID_INPUT,
      `${flag}: ${value} is not an RFC 3339 time with an offset, such as 2026-11-23T10:00:00Z`,
    );
  return ms;
}

type Style = Parameters<typeof styleText>[0];

/** Colours text when writing to a terminal that wants colour. */
export function paint(style: Style, text: string): string {
  const colour = process.stdout.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
  return colour ? styleText(style, text) : text;
}
