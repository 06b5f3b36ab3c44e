import { describe, expect, it } from 'vitest';
import { decideScope } from '../engine/decide.js';
import { compilePolicy } from './compile.js';
import {
  emailDomain,
  globMatch,
  normalizePath,
  pathWithin,
  urlHost,
  urlScheme,
} from './helpers.js';

describe('path.normalize', () => {
  it.each([
    ['/srv/agent/../../etc/passwd', '/etc/passwd'],
    ['//srv//agent/./x', '/srv/agent/x'],
    ['/srv/agent/..\\..\\etc', '/etc'],
    ['\\\\srv\\agent', '/srv/agent'],
    ['/srv/agent/', '/srv/agent'],
    ['/', '/'],
    ['/..', '/'],
    ['/../../..', '/'],
    ['', '.'],
    ['.', '.'],
    ['./a/./b/', 'a/b'],
    ['a/../..', '..'],
    ['../x', '../x'],
    ['a/b/../../../c', '../c'],
    ['/srv/agent/%2e%2e/etc', '/srv/agent/%2e%2e/etc'],
    ['/srv/…/x', '/srv/…/x'],
    ['/srv/.../x', '/srv/.../x'],
  ])('%j → %j', (input, output) => {
    expect(normalizePath(input)).toBe(output);
  });

  it('throws on a NUL byte', () => {
    expect(() => normalizePath('/srv/agent/x\0/../../etc')).toThrow(/NUL/);
  });
});

describe('path.within', () => {
  it.each([
    ['/srv/agent/x', '/srv/agent', true],
    ['/srv/agent', '/srv/agent', true],
    ['/srv/agent/', '/srv/agent', true],
    ['/srv/agent/a/b/c.txt', '/srv/agent/', true],
    ['//srv//agent/./x', '/srv/agent', true],
    ['/srv/agent/../../etc/passwd', '/srv/agent', false],
    ['/srv/agent/..', '/srv/agent', false],
    ['/srv/agent/..\\..\\etc', '/srv/agent', false],
    ['/srv/agent/x/../../agent2/y', '/srv/agent', false],
    ['/srv/database', '/srv/data', false],
    ['/srv/data-old/x', '/srv/data', false],
    ['/srv/data/../database/x', '/srv/data', false],
    ['/srv/data', '/srv/data/..', true],
    ['srv/agent/x', '/srv/agent', false],
    ['./srv/agent/x', '/srv/agent', false],
    ['../srv/agent/x', '/srv/agent', false],
    ['/srv/agent/x', 'srv/agent', false],
    ['/srv/agent/x', '', false],
    ['/anything/at/all', '/', true],
    ['/', '/', true],
    ['relative', '/', false],
    ['/SRV/agent/x', '/srv/agent', false],
    // U+2215 DIVISION SLASH is not a separator: this is one odd file name.
    ['/srv/agent/x\u2215..\u2215..\u2215etc', '/srv/agent', true],
    ['/srv/agent\u2215..\u2215..\u2215etc', '/srv/agent', false],
  ])('%j within %j → %s', (path, root, within) => {
    expect(pathWithin(path, root)).toBe(within);
  });

  it('throws on a NUL byte in the path or the root', () => {
    expect(() => pathWithin('/srv/agent/x\0.txt', '/srv/agent')).toThrow(/NUL/);
    expect(() => pathWithin('/srv/agent/x', '/srv/agent\0')).toThrow(/NUL/);
  });
});

describe('url.host and url.scheme', () => {
  it.each([
    ['https://good.com/x', 'good.com'],
    ['https://good.com@evil.com/', 'evil.com'],
    ['https://user:pw@evil.com:8443/', 'evil.com'],
    ['https://evil.com#@good.com', 'evil.com'],
    ['https://evil.com?@good.com', 'evil.com'],
    ['https://evil.com\\@good.com', 'evil.com'],
    ['https://good.com\\@evil.com', 'good.com'],
    ['https:\\\\evil.com\\path', 'evil.com'],
    ['https:/\\evil.com', 'evil.com'],
    ['https://GOOD.com.', 'good.com'],
    ['https://evil.com../', 'evil.com'],
    ['HTTPS://Good.COM', 'good.com'],
    ['https://good.com:8443/x', 'good.com'],
    ['https://b\u00fccher.de/', 'xn--bcher-kva.de'],
    ['https://xn--bcher-kva.de/', 'xn--bcher-kva.de'],
    ['https://\uff47\uff4f\uff4f\uff44.com/', 'good.com'],
    ['https://good.com%2eevil.com', 'good.com.evil.com'],
    ['https://127.1/', '127.0.0.1'],
    ['https://0x7f.1/', '127.0.0.1'],
    ['http://[::1]:80/', '[::1]'],
    [' https://good.com\n', 'good.com'],
    ['file:///etc/passwd', ''],
  ])('host of %j is %j', (u, host) => {
    expect(urlHost(u)).toBe(host);
  });

  it.each([
    'not a url',
    '',
    'good.com',
    '//good.com/x',
    'https://',
    'http://exa mple.com',
    'https://[::1',
  ])('%j is not a URL: throws', (u) => {
    expect(() => urlHost(u)).toThrow(/not a URL/);
    expect(() => urlScheme(u)).toThrow(/not a URL/);
  });

  it('keeps the scheme lower case and without its colon', () => {
    expect(urlScheme('HTTPS://good.com')).toBe('https');
    expect(urlScheme('javascript:alert(1)')).toBe('javascript');
    expect(urlScheme('file:///etc/passwd')).toBe('file');
    expect(urlHost('javascript:alert(1)')).toBe('');
  });
});

describe('email.domain', () => {
  it.each([
    ['a@good.com', 'good.com'],
    ['A@GOOD.COM', 'good.com'],
    ['a@good.com.', 'good.com'],
    ['a@good.com..', 'good.com'],
    ['first.last+tag@sub.good.com', 'sub.good.com'],
    ['a@b\u00fccher.de', 'xn--bcher-kva.de'],
    ['a@\uff45vil.com', 'evil.com'],
    ['a@\uff27\uff2f\uff2f\uff24\uff0e\uff43\uff4f\uff4d', 'good.com'],
  ])('domain of %j is %j', (address, domain) => {
    expect(emailDomain(address)).toBe(domain);
  });

  it.each([
    'a@b@evil.com',
    '"a@good.com"@evil.com',
    'Bob <bob@good.com>',
    'bob@good.com (Bob)',
    'a@good.com,b@evil.com',
    'a@good.com;b@evil.com',
    'a@good.com b@evil.com',
    '@good.com',
    'a@',
    'a@.',
    'plain',
    '',
    'a@good.com\n',
    'a@good.com\r\nBcc: x@evil.com',
    'a@good.com\0',
    'a@evil.com\u200b',
    'a@good\u00adcom',
    'a@[127.0.0.1]',
    'a@good.com:25',
    'a@good.com/x',
    'a@good%2ecom',
    'a\\@evil.com',
  ])('%j is not a single bare address: throws', (address) => {
    expect(() => emailDomain(address)).toThrow(/not a single bare e-mail address/);
  });
});

describe('glob.match', () => {
  it.each([
    ['*', 'abc', true],
    ['*', 'a/b', false],
    ['*', '', true],
    ['**', 'a/b/c', true],
    ['a/**', 'a/b/c', true],
    ['a/**/c', 'a/x/y/c', true],
    ['/srv/*.txt', '/srv/a.txt', true],
    ['/srv/*.txt', '/srv/d/a.txt', false],
    ['/srv/**.txt', '/srv/d/a.txt', true],
    ['?', 'a', true],
    ['?', '/', false],
    ['?', 'ab', false],
    ['?', '', false],
    ['[abc]', 'b', true],
    ['[a-c]', 'd', false],
    ['[!a]', 'b', true],
    ['[!a]', 'a', false],
    ['[!a]', '/', false],
    ['[^a]', '/', false],
    ['[]]', ']', true],
    ['[]a]', 'a', true],
    ['[!]]', ']', false],
    ['[!]]', 'x', true],
    ['[a^]', '^', true],
    ['[\\]', '\\', true],
    ['a.b', 'a.b', true],
    ['a.b', 'axb', false],
    ['a+b', 'a+b', true],
    ['(a|b)', '(a|b)', true],
    ['(a|b)', 'a', false],
    ['{a,b}', 'a', false],
    ['$x^', '$x^', true],
    ['[', '[', true],
    ['a[b', 'a[b', true],
    ['', '', true],
    ['', 'x', false],
    ['*.txt', 'a.txt\n', false],
    ['*', 'a\nb', true],
  ])('%j matches %j → %s', (pattern, s, result) => {
    expect(globMatch(pattern, s)).toBe(result);
  });

  it('throws on an invalid set instead of matching by accident', () => {
    expect(() => globMatch('[z-a]', 'a')).toThrow(/invalid glob/);
  });
});

describe('helpers inside a policy', () => {
  const policy = compilePolicy({
    path: 'p.yaml',
    text: `version: 1
tools:
  read_file:
    - allow: 'path.within(args.file_path, "/srv/agent")'
  read_normalized:
    - allow: 'path.normalize(args.file_path) in ["/srv/agent/a.txt"]'
  fetch:
    - forbid: 'url.scheme(args.url) != "https"'
    - allow: 'url.host(args.url) == "good.com" || url.host(args.url).endsWith(".good.com")'
  send_email:
    - forbid: 'email.domain(args.to) == "evil.com"'
    - allow: 'email.domain(args.to) == "good.com"'
  put:
    - allow: 'glob.match("/srv/**/*.txt", args.key)'
`,
  });
  const decide = (tool: string, args: Record<string, unknown>) =>
    decideScope(
      policy,
      { tool, args, principal: { id: 'a' }, session: { id: 's' } },
      { now: 0, id: 'd' },
    );

  it.each([
    ['/srv/agent/notes.txt', 'allow'],
    ['//srv//agent/./notes.txt', 'allow'],
    ['/srv/agent/../../etc/passwd', 'deny'],
    ['/srv/agent/..\\..\\etc\\passwd', 'deny'],
    ['/srv/agent-evil/x', 'deny'],
    ['srv/agent/x', 'deny'],
    ['/srv/agent/x\0', 'deny'],
  ])('read_file %j → %s', (file_path, outcome) => {
    expect(decide('read_file', { file_path }).outcome).toBe(outcome);
  });

  it('path.normalize folds tricks into the canonical path', () => {
    expect(decide('read_normalized', { file_path: '/srv//agent/./x/../a.txt' }).outcome).toBe(
      'allow',
    );
    expect(decide('read_normalized', { file_path: '/srv/agent/b.txt' }).outcome).toBe('deny');
  });

  it('a helper that throws does not allow', () => {
    const d = decide('read_file', { file_path: 42 });
    expect(d.outcome).toBe('deny');
    expect(d.reasons.map((r) => r.code)).toEqual(['NO_MATCHING_RULE', 'CONDITION_ERROR']);
  });

  it.each([
    ['https://good.com/x', 'allow'],
    ['https://api.good.com/x', 'allow'],
    ['https://good.com@evil.com/', 'deny'],
    ['https://evil.com#@good.com', 'deny'],
    ['https://evil.com\\@good.com', 'deny'],
    ['https://evilgood.com/', 'deny'],
    ['https://good.com.evil.com/', 'deny'],
    ['https://GOOD.COM./', 'allow'],
    ['http://good.com/', 'deny'],
  ])('fetch %j → %s', (url, outcome) => {
    expect(decide('fetch', { url }).outcome).toBe(outcome);
  });

  it('an invalid URL in a forbid forbids with CONDITION_ERROR', () => {
    const d = decide('fetch', { url: 'not a url' });
    expect(d.outcome).toBe('deny');
    expect(d.reasons[0]).toMatchObject({ code: 'CONDITION_ERROR', rule: 'tools.fetch[0]' });
    expect(d.reasons[0]!.error).toMatch(/not a URL/);
  });

  it.each([
    ['a@good.com', 'allow'],
    ['A@GOOD.COM.', 'allow'],
    ['a@evil.com', 'deny'],
    ['a@EVIL.com..', 'deny'],
    ['a@\uff45vil.com', 'deny'],
    ['a@b@good.com', 'deny'],
    ['Bob <bob@good.com>', 'deny'],
    ['a@good.com,b@evil.com', 'deny'],
  ])('send_email to %j → %s', (to, outcome) => {
    expect(decide('send_email', { to }).outcome).toBe(outcome);
  });

  it('a forbid on an e-mail domain cannot be dodged with a NUL or a list', () => {
    for (const to of ['a@evil.com\0', 'x@good.com,a@evil.com']) {
      const d = decide('send_email', { to });
      expect(d.outcome).toBe('deny');
      expect(d.reasons[0]!.code).toBe('CONDITION_ERROR');
    }
  });

  it.each([
    ['/srv/a/b/c.txt', 'allow'],
    ['/srv/a/c.txt', 'allow'],
    // `**/` matches zero or more folders, so `/srv/**/*.txt` covers /srv itself too.
    ['/srv/c.txt', 'allow'],
    ['/srv/a/c.txt.exe', 'deny'],
    ['/etc/c.txt', 'deny'],
  ])('put %j → %s', (key, outcome) => {
    expect(decide('put', { key }).outcome).toBe(outcome);
  });
});
