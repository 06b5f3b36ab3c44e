import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  visit,
} from 'yaml';
import type { z } from 'zod';
import type { SourceIssue } from '../core/errors.js';
import { messageOf } from '../core/errors.js';

/**
 * One YAML file (a policy, a policy test file) parsed with source positions, so that every
 * problem found later — in the schema, in a CEL expression, in a merge — can be reported
 * as `file:line:col`.
 */
export class YamlSourceFile {
  readonly #lines = new LineCounter();
  readonly #doc;

  private constructor(
    readonly path: string,
    readonly text: string,
    readonly schema: z.ZodType,
    /** What the file is (`policy`, `script`, `test cases`): a problem with the whole of it names it. */
    readonly what: string,
  ) {
    this.#doc = parseDocument(text, {
      lineCounter: this.#lines,
      uniqueKeys: true,
      schema: 'core',
      prettyErrors: false,
    });
  }

  /**
   * Parses `text` and validates it with `schema`; returns the file and its value, or the
   * issues. `what` names the kind of file (`policy`) where a problem is with the whole of it.
   */
  static parse<T extends z.ZodType>(
    path: string,
    text: string,
    schema: T,
    what: string,
  ):
    | { ok: true; file: YamlSourceFile; document: z.infer<T> }
    | { ok: false; issues: SourceIssue[] } {
    const file = new YamlSourceFile(path, text, schema, what);
    const yamlIssues = [...file.#doc.errors, ...file.#doc.warnings].map((e) =>
      file.issueAtOffset(
        e.pos[0],
        e.code === 'DUPLICATE_KEY'
          ? `duplicate key ${keyAt(text, e.pos[0])}: keys of a mapping must be unique`
          : e.message.split('\n')[0]!,
      ),
    );
    if (yamlIssues.length > 0) return { ok: false, issues: yamlIssues };
    const keyIssues = file.#keyIssues();
    if (keyIssues.length > 0) return { ok: false, issues: keyIssues };

    let value: unknown;
    try {
      value = file.#doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      // In practice an alias bomb ("billion laughs"): point at the first alias.
      let offset = 0;
      visit(file.#doc, {
        Alias(_, node) {
          offset = node.range?.[0] ?? 0;
          return visit.BREAK;
        },
      });
      return { ok: false, issues: [file.issueAtOffset(offset, messageOf(error))] };
    }
    if (value === null || value === undefined) {
      return { ok: false, issues: [file.issueAtOffset(0, 'the file is empty')] };
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success)
      return { ok: false, issues: parsed.error.issues.flatMap((i) => file.#schemaIssues(i)) };
    return { ok: true, file, document: parsed.data };
  }

  /** The issue at a character offset of the text. */
  issueAtOffset(offset: number, message: string): SourceIssue {
    const { line, col } = this.#lines.linePos(offset);
    return { file: this.path, line, col, message };
  }

  /**
   * The issue at the value (or, with `key`, the key) found at `path` in the document;
   * `offset` points inside a scalar, e.g. at the token of a CEL error.
   */
  issueAt(
    path: readonly PropertyKey[],
    message: string,
    opts: { key?: boolean; offset?: number } = {},
  ): SourceIssue {
    const node = this.#locate(path, opts.key ?? false);
    let start = node?.range?.[0] ?? 0;
    if (opts.offset !== undefined && isScalar(node) && typeof node.value === 'string') {
      start = scalarSourceOffset(node as Scalar<string>, this.text, opts.offset) ?? start;
    }
    return this.issueAtOffset(start, message);
  }

  #locate(path: readonly PropertyKey[], wantKey: boolean): Node | undefined {
    let node: unknown = this.#doc.contents;
    let keyNode: Node | undefined;
    for (const segment of path) {
      keyNode = undefined;
      if (isMap(node)) {
        const pair = node.items.find(
          (p) => isScalar(p.key) && String(p.key.value) === String(segment),
        );
        if (!pair) break;
        keyNode = pair.key as Node;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
        node = node.items[segment];
      } else break;
    }
    if (wantKey && keyNode) return keyNode;
    return (node as Node | undefined) ?? keyNode;
  }

  /**
   * Keys that are not names, and keys that would reach an object's prototype if the
   * document were ever merged naively. Every key of a policy or a test file is a name — a
   * tool, a budget, an argument — and YAML reads an unquoted `2048`, `1.10` or `true` as a
   * number or a boolean: `1.10` would name the tool `1.1`, and `2048` beside `"2048"` would
   * silently replace its rules, as JavaScript objects know only string keys.
   */
  #keyIssues(): SourceIssue[] {
    const issues: SourceIssue[] = [];
    const walk = (node: unknown) => {
      if (isMap(node)) {
        for (const pair of node.items) {
          // An alias (`*n :`) or a collection is no name: an alias of a number slipped past
          // the checks below and replaced a quoted key's rules.
          if (isPair(pair) && pair.key !== null && !isScalar(pair.key)) {
            const at = (pair.key as Node).range?.[0] ?? 0;
            issues.push(
              this.issueAtOffset(
                at,
                'a key must be a name written out, not an alias or a collection',
              ),
            );
          } else if (isPair(pair) && isScalar(pair.key)) {
            const { value } = pair.key;
            const at = pair.key.range?.[0] ?? 0;
            if (typeof value !== 'string') {
              const written = keyAt(this.text, at);
              issues.push(
                this.issueAtOffset(
                  at,
                  `key ${written} is read as ${value === null ? 'null' : `the ${typeof value} ${String(value)}`}, not a name: quote it ("${written}")`,
                ),
              );
            } else if (['__proto__', 'constructor', 'prototype'].includes(value)) {
              issues.push(this.issueAtOffset(at, `key ${JSON.stringify(value)} is not allowed`));
            }
          }
          walk(pair.value);
        }
      } else if (isSeq(node)) node.items.forEach(walk);
    };
    walk(this.#doc.contents);
    return issues;
  }

  #schemaIssues(issue: z.core.$ZodIssue): SourceIssue[] {
    const path = issue.path;
    switch (issue.code) {
      case 'invalid_union': {
        // When exactly one alternative got past the value's type (its problem lies deeper,
        // e.g. an unknown reason code inside an object), that alternative's problem is the
        // one to report; otherwise the union's own message says what is accepted.
        const deeper = issue.errors.filter((branch) => branch.some((i) => i.path.length > 0));
        if (deeper.length === 1) {
          return deeper[0]!.flatMap((i) =>
            this.#schemaIssues({ ...i, path: [...path, ...i.path] } as z.core.$ZodIssue),
          );
        }
        return this.#defaultIssue(issue);
      }
      case 'unrecognized_keys':
        return issue.keys.map((key) =>
          this.issueAt(
            [...path, key],
            `unknown key ${JSON.stringify(key)}${expectedKeys(this.schema, path)}`,
            { key: true },
          ),
        );
      case 'invalid_key':
        return [
          this.issueAt(
            path,
            `${JSON.stringify(String(path.at(-1)))}: ${issue.issues[0]?.message ?? issue.message}`,
            { key: true },
          ),
        ];
      default:
        return this.#defaultIssue(issue);
    }
  }

  #defaultIssue(issue: z.core.$ZodIssue): SourceIssue[] {
    const path = issue.path;
    if (!hasPath(this.#doc.contents, path)) {
      return [
        this.issueAt(
          path.slice(0, -1),
          `missing key ${JSON.stringify(String(path.at(-1)))}: ${friendlyType(issue.message)}`,
        ),
      ];
    }
    const where = path.length === 0 ? this.what : path.map(String).join('.');
    return [this.issueAt(path, `${where}: ${friendlyType(issue.message)}`)];
  }
}

/** The key written at `offset` (quoted as written, or plain up to its colon). */
function keyAt(text: string, offset: number): string {
  const match = /^(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\n:]*)/.exec(text.slice(offset));
  return (match?.[0] ?? '').trim();
}

function hasPath(root: unknown, path: readonly PropertyKey[]): boolean {
  let node = root;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isScalar(p.key) && String(p.key.value) === String(segment),
      );
      if (!pair) return false;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      if (node === undefined) return false;
    } else return false;
  }
  return true;
}

/**
 * Maps an offset into a scalar's value (e.g. where a CEL error is) to an offset into the
 * source text, through quotes, escapes (`\"`, `''`, `\u00e9`), block scalar headers,
 * indentation and folded lines. `undefined` when it cannot tell.
 */
function scalarSourceOffset(
  node: Scalar<string>,
  text: string,
  offset: number,
): number | undefined {
  const [start, end] = node.range ?? [0, 0];
  const raw = text.slice(start, end);
  const value = node.value;
  if (!raw.includes('\n')) {
    if (node.type === 'QUOTE_SINGLE') {
      let r = 1;
      for (let v = 0; v < offset && r < raw.length; v++) r += raw.startsWith("''", r) ? 2 : 1;
      return start + r;
    }
    if (node.type === 'QUOTE_DOUBLE') {
      let r = 1;
      let v = 0;
      while (v < offset && r < raw.length) {
        if (raw[r] !== '\\') {
          r++;
          v++;
          continue;
        }
        const escaped = raw[r + 1];
        if (escaped === 'x') r += 4;
        else if (escaped === 'u') r += 6;
        else if (escaped === 'U') {
          v += Number.parseInt(raw.slice(r + 2, r + 10), 16) > 0xffff ? 1 : 0;
          r += 10;
        } else r += 2;
        v++;
      }
      return start + r;
    }
    if (node.type === 'PLAIN') return start + offset;
  }
  // Multi-line scalars: walk the value and the source side by side; a line break in the
  // source stands for a space (folded) or itself (literal), indentation is skipped.
  let r = node.type === 'BLOCK_FOLDED' || node.type === 'BLOCK_LITERAL' ? raw.indexOf('\n') + 1 : 0;
  if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') r = 1;
  for (let v = 0; v < offset; v++) {
    const c = value[v];
    while (r < raw.length && raw[r] !== c && !(c === ' ' && raw[r] === '\n')) r++;
    if (r >= raw.length) return undefined;
    r++;
  }
  const next = value[offset];
  while (r < raw.length && raw[r] !== next && /\s/.test(raw[r]!)) r++;
  return start + r;
}

function friendlyType(message: string): string {
  return message.replace(/^Invalid input: /, '');
}

/** The keys accepted where an unknown key was found, to say what was expected. */
function expectedKeys(root: z.ZodType, path: readonly PropertyKey[]): string {
  let schema: ZodLike | undefined = unwrap(root as unknown as ZodLike);
  for (const segment of path) {
    const child: ZodLike | undefined =
      schema?.shape && typeof segment === 'string'
        ? schema.shape[segment]
        : (schema?.element ?? schema?.valueType);
    schema = unwrap(child);
  }
  return schema?.shape ? `; expected one of: ${Object.keys(schema.shape).join(', ')}` : '';
}

interface ZodLike {
  shape?: Record<string, ZodLike>;
  element?: ZodLike;
  valueType?: ZodLike;
  def?: { type?: string; innerType?: ZodLike };
}

function unwrap(schema: ZodLike | undefined): ZodLike | undefined {
  let s = schema;
  while (s?.def?.innerType && (s.def.type === 'optional' || s.def.type === 'default'))
    s = s.def.innerType;
  return s;
}
