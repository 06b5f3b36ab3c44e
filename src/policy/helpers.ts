import { RE2JS } from 're2js';
import { messageOf } from '../core/errors.js';
import { compileGlob } from './glob.js';

/**
 * The safe helpers policies call where naive string checks are bypassable. Each is a
 * pure function; the CEL environment exposes them as `path.within(...)`, `url.host(...)`,
 * `email.domain(...)` and `glob.match(...)`. A helper that cannot answer throws, which
 * makes a `forbid` forbid and an `allow` not allow.
 */

/**
 * Normalizes a POSIX path: resolves `.` and `..`, folds repeated slashes, treats `\` as
 * a separator (so `..\` cannot slip past), drops a trailing slash. `..` above the root
 * stays at the root, as the kernel does. Throws on a NUL byte.
 */
export function normalizePath(p: string): string {
  if (p.includes('\0')) throw new Error('path contains a NUL byte');
  const absolute = p.startsWith('/') || p.startsWith('\\');
  const out: string[] = [];
  for (const part of p.split(/[/\\]+/)) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!absolute) out.push('..');
    } else out.push(part);
  }
  const joined = out.join('/');
  return absolute ? `/${joined}` : joined || '.';
}

/**
 * True when `p`, normalized, is `root` or lies below it. Relative paths are never within
 * (the working directory is unknown), and `/srv/database` is not within `/srv/data`.
 */
export function pathWithin(p: string, root: string): boolean {
  const path = normalizePath(p);
  const base = normalizePath(root);
  if (!path.startsWith('/') || !base.startsWith('/')) return false;
  if (base === '/') return true;
  return path === base || path.startsWith(`${base}/`);
}

function parseUrl(u: string): URL {
  if (!URL.canParse(u)) throw new Error(`not a URL: ${JSON.stringify(u.slice(0, 200))}`);
  return new URL(u);
}

/**
 * The host of a URL as a WHATWG URL parser sees it: lower case, IDNs in punycode,
 * without port, user info or trailing dots, so `https://good.com@evil.com/` has host
 * `evil.com` and `https://evil.com../` has host `evil.com`.
 */
export function urlHost(u: string): string {
  return parseUrl(u).hostname.replace(/\.+$/, '');
}

/** The scheme of a URL, lower case and without the colon (`https`). */
export function urlScheme(u: string): string {
  return parseUrl(u).protocol.slice(0, -1);
}

/**
 * The domain of a single bare e-mail address, normalized as {@link urlHost} normalizes a
 * host: lower case, IDNs and full-width look-alikes mapped (`ｅvil.com` is `evil.com`,
 * `bücher.de` is `xn--bcher-kva.de`), without trailing dots. Throws on anything else
 * (display names, lists, no `@`, control characters, an address literal) so a policy
 * never checks the wrong part.
 */
export function emailDomain(address: string): string {
  if (/[\s<>,;"()\\\p{C}]/u.test(address)) throw new Error('not a single bare e-mail address');
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || address.indexOf('@') !== at) {
    throw new Error('not a single bare e-mail address');
  }
  const domain = address.slice(at + 1);
  // Characters a URL parser would treat as structure or decode are never part of a domain.
  if (/[/?#%:[\]]/.test(domain) || !URL.canParse(`http://${domain}/`)) {
    throw new Error('not a single bare e-mail address');
  }
  const host = new URL(`http://${domain}/`).hostname.replace(/\.+$/, '');
  if (host === '') throw new Error('not a single bare e-mail address');
  return host;
}

const globCache = new Map<string, (s: string) => boolean>();

/** True when `s` matches the glob `pattern` (see {@link compileGlob}). */
export function globMatch(pattern: string, s: string): boolean {
  let matcher = globCache.get(pattern);
  if (!matcher) {
    matcher = compileGlob(pattern);
    if (globCache.size < 1000) globCache.set(pattern, matcher);
  }
  return matcher(s);
}

const regexCache = new Map<string, RE2JS>();

/** Why `pattern` is not a valid RE2 regular expression, or `undefined` if it is. */
export function regexProblem(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (error) {
    return messageOf(error);
  }
}

/**
 * CEL's `matches`: true when `pattern` (RE2 syntax) matches anywhere in `s`. RE2 runs in
 * time linear in the input, whatever the pattern — no backtracking blow-up on hostile text.
 */
export function regexMatches(s: string, pattern: string): boolean {
  let re = regexCache.get(pattern);
  if (!re) {
    re = RE2JS.compile(pattern);
    if (regexCache.size < 1000) regexCache.set(pattern, re);
  }
  return re.matcher(s).find();
}
