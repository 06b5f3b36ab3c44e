/**
 * Globs for tool names and for the `glob.match` CEL helper: `*` matches any run of
 * characters except `/`, `**` matches any run including `/`, `?` one character other
 * than `/`, `[abc]` and `[a-z]` one character of a set. Everything else is literal.
 */
export function globToRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        source += '.*';
        i++;
      } else source += '[^/]*';
    } else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) source += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        source += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/** True when `pattern` holds glob syntax, i.e. is not a plain name. */
export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}
