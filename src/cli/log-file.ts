import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { parseRfc3339 } from '../core/action.js';
import { messageOf } from '../core/errors.js';
import type { LogEntry } from '../log/entry.js';
import { CliExit, EXIT } from './io.js';

const object = z.record(z.string(), z.unknown());
const reasons = z.array(z.looseObject({ code: z.string() }));

/**
 * The fields of a log entry that `writ replay` reads, checked before it reads them: a line
 * of valid JSON that is not an entry (`{"a":1}`) must be named, not fail deep inside the
 * replay. Fields replay does not read (hashes, reservations) are left as they are: an
 * exported file is a copy to re-decide, often part of the log (`--since`), not the record.
 * The chain is checked where it is kept, on the stored text, by `writ log verify`.
 */
const LogEntryLine = z
  .looseObject({
    seq: z.number().int().positive(),
    at: z.string().refine((at) => parseRfc3339(at) !== undefined, 'must be an RFC 3339 time'),
    kind: z.enum(['decision', 'settlement', 'approval', 'session']),
    decision: z
      .looseObject({
        id: z.string(),
        outcome: z.enum(['allow', 'deny', 'approval_required', 'replay']),
        reasons,
        policyHash: z.string(),
        actionDigest: z.string(),
        action: object,
        redacted: z.array(z.string()),
        writId: z.string().optional(),
        approvalId: z.string().optional(),
      })
      .optional(),
    settlement: z
      .looseObject({
        writId: z.string(),
        status: z.enum(['succeeded', 'failed', 'cancelled']),
        cost: z.number().optional(),
      })
      .optional(),
    approval: z
      .looseObject({
        id: z.string(),
        status: z.enum(['approved', 'denied']),
        by: z.string(),
        note: z.string().optional(),
      })
      .optional(),
    session: z.looseObject({ id: z.string(), attrs: object, version: z.number() }).optional(),
  })
  .superRefine((entry, ctx) => {
    // Replay acts on the part an entry carries, so it must be the one its kind names.
    const parts = (['decision', 'settlement', 'approval', 'session'] as const).filter(
      (part) => entry[part] !== undefined,
    );
    if (parts.length !== 1 || parts[0] !== entry.kind)
      ctx.addIssue({
        code: 'custom',
        path: [entry.kind],
        message: `a ${entry.kind} entry carries exactly its ${entry.kind}, found ${parts.join(', ') || 'none'}`,
      });
  });

/** A log file being read: its entries, and the number of the line read last. */
export interface LogFile {
  /** The file as messages name it: its path, or `<stdin>`. */
  name: string;
  entries: AsyncGenerator<LogEntry>;
  /** The line of the entry handed out last, to name it when acting on it fails. */
  line(): number;
}

/**
 * Reads JSON lines one at a time, from a file or from standard input for `-` (`writ log
 * export | writ replay --log - …`); a line that is not a log entry stops with its number.
 */
export function readLogFile(path: string): LogFile {
  const name = path === '-' ? '<stdin>' : path;
  let n = 0;
  async function* entries(): AsyncGenerator<LogEntry> {
    const lines = createInterface({
      input: path === '-' ? process.stdin : createReadStream(path),
      crlfDelay: Number.POSITIVE_INFINITY,
    });
    try {
      for await (const line of lines) {
        n++;
        if (line.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          throw new CliExit(EXIT.INVALID_INPUT, `${name}:${n}: not a JSON log entry`);
        }
        const checked = LogEntryLine.safeParse(value);
        if (!checked.success) {
          const issue = checked.error.issues[0]!;
          const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
          throw new CliExit(
            EXIT.INVALID_INPUT,
            `${name}:${n}: not a log entry: ${where}${issue.message}`,
          );
        }
        yield value as LogEntry;
      }
    } catch (error) {
      if (error instanceof CliExit) throw error;
      throw new CliExit(
        EXIT.INVALID_INPUT,
        `${name}: cannot read: ${(error as NodeJS.ErrnoException).code ?? messageOf(error)}`,
      );
    }
  }
  return { name, entries: entries(), line: () => n };
}
