import { messageOf } from '../core/errors.js';

/**
 * Globs for tool names and for the `glob.match` CEL helper: `*` matches any run of
 * characters except `/`, `**` matches any run including `/`, `**` followed by `/` matches
 * zero or more whole directories (`a/**` + `/c` matches `a/c` and `a/x/y/c`), `?` one character other
 * than `/`, `[abc]` and `[a-z]` one character of a set, `[!abc]` (or `[^abc]`) one
 * character other than `/` not in the set; a `]` right after `[` or `[!` is part of the set.
 * Everything else is literal. Throws on an invalid set such as `[z-a]`.
 *
 * A regular expression backtracks: to match untrusted text use {@link compileGlob}.
 */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*' && pattern[i + 2] === '/') {
        source += '(?:.*/)?';
        i += 2;
      } else if (pattern[i + 1] === '*') {
        source += '.*';
        i++;
      } else source += '[^/]*';
    } else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const negated = pattern[i + 1] === '!' || pattern[i + 1] === '^';
      const start = i + (negated ? 2 : 1);
      const end = pattern.indexOf(']', start + 1);
      if (end === -1) source += '\\[';
      else {
        const body = pattern.slice(start, end).replace(/[\\\]^]/g, '\\$&');
        // Like `*` and `?`, a negated set never matches the separator `/`.
        source += negated ? `(?!/)[^${body}]` : `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  try {
    return new RegExp(`^${source}$`, 's');
  } catch (error) {
    throw new Error(`invalid glob ${JSON.stringify(pattern)}: ${messageOf(error)}`);
  }
}

type GlobToken =
  /** `**`: any run of characters. */
  | { kind: 'any' }
  /** `**` + `/`: nothing, or any run of characters that ends with `/`. */
  | { kind: 'dirs' }
  /** `*`: any run of characters other than `/`. */
  | { kind: 'run' }
  /** A literal, `?` or a set: one character. */
  | { kind: 'one'; accepts: (cp: number) => boolean };

const SLASH = 0x2f;

/**
 * Compiles a glob (same syntax and meaning as {@link globToRegExp}) into a matcher that
 * runs in O(length × pattern) time. A backtracking regular expression can take seconds on
 * `*_*_*_*_x` against a long name of underscores; tool names and arguments come from the
 * agent, so matching must not depend on how hostile they are. Throws on an invalid set.
 */
export function compileGlob(pattern: string): (s: string) => boolean {
  const tokens = parseGlob(pattern);
  const m = tokens.length;
  return (s) => {
    let active = new Uint8Array(m + 1);
    let next = new Uint8Array(m + 1);
    active[0] = 1;
    closeOverStars(tokens, active);
    for (const ch of s) {
      const cp = ch.codePointAt(0)!;
      next.fill(0);
      let any = false;
      for (let i = 0; i < m; i++) {
        if (!active[i]) continue;
        const token = tokens[i]!;
        if (token.kind === 'any' || (token.kind === 'run' && cp !== SLASH)) next[i] = 1;
        else if (token.kind === 'dirs') {
          // Inside a directory name: only a `/` may end the run (state 2 is not closed over).
          if (!next[i]) next[i] = 2;
          if (cp === SLASH) next[i + 1] = 1;
        } else if (token.kind === 'one' && token.accepts(cp)) next[i + 1] = 1;
        else continue;
        any = true;
      }
      if (!any) return false;
      closeOverStars(tokens, next);
      [active, next] = [next, active];
    }
    return active[m] === 1;
  };
}

/**
 * A star may match nothing: whoever reaches it also reaches what follows. `**` + `/` matches
 * nothing only where it starts, not in the middle of a directory name (state 2).
 */
function closeOverStars(tokens: GlobToken[], states: Uint8Array) {
  for (let i = 0; i < tokens.length; i++) {
    const kind = tokens[i]!.kind;
    if (kind === 'one' || !states[i] || (kind === 'dirs' && states[i] === 2)) continue;
    states[i + 1] = 1;
  }
}

function parseGlob(pattern: string): GlobToken[] {
  const chars = Array.from(pattern);
  const tokens: GlobToken[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      if (chars[i + 1] === '*' && chars[i + 2] === '/') {
        tokens.push({ kind: 'dirs' });
        i += 2;
      } else if (chars[i + 1] === '*') {
        tokens.push({ kind: 'any' });
        i++;
      } else tokens.push({ kind: 'run' });
    } else if (c === '?') tokens.push({ kind: 'one', accepts: (cp) => cp !== SLASH });
    else if (c === '[') {
      const negated = chars[i + 1] === '!' || chars[i + 1] === '^';
      const start = i + (negated ? 2 : 1);
      const end = chars.indexOf(']', start + 1);
      if (end === -1) {
        tokens.push(literal(c));
        continue;
      }
      const inSet = parseSet(chars.slice(start, end), pattern);
      tokens.push({
        kind: 'one',
        accepts: negated ? (cp) => cp !== SLASH && !inSet(cp) : inSet,
      });
      i = end;
    } else tokens.push(literal(c));
  }
  return tokens;
}

function literal(c: string): GlobToken {
  const expected = c.codePointAt(0)!;
  return { kind: 'one', accepts: (cp) => cp === expected };
}

function parseSet(body: string[], pattern: string): (cp: number) => boolean {
  const ranges: [number, number][] = [];
  for (let i = 0; i < body.length; i++) {
    const from = body[i]!.codePointAt(0)!;
    if (body[i + 1] === '-' && i + 2 < body.length) {
      const to = body[i + 2]!.codePointAt(0)!;
      if (to < from)
        throw new Error(`invalid glob ${JSON.stringify(pattern)}: range out of order in a set`);
      ranges.push([from, to]);
      i += 2;
    } else ranges.push([from, from]);
  }
  return (cp) => ranges.some(([from, to]) => cp >= from && cp <= to);
}

/** True when `pattern` holds glob syntax, i.e. is not a plain name. */
export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}
