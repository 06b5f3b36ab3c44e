import { describe, expect, it } from 'vitest';
import { digestJson } from '../core/digest.js';
import { redact, scrubReasons } from './redact.js';

describe('redact', () => {
  const action = {
    tool: 'pay',
    args: {
      card_number: '4111111111111111',
      users: [
        { name: 'a', password: 'p1' },
        { name: 'b', password: 'p2' },
      ],
    },
  };

  it('replaces exact paths and wildcards with digests of their values', () => {
    const { action: out, redacted } = redact(action, ['args.card_number', 'args.users.*.password']);
    expect(redacted).toEqual([
      'args.card_number',
      'args.users.0.password',
      'args.users.1.password',
    ]);
    expect(out.args).toEqual({
      card_number: digestJson('4111111111111111'),
      users: [
        { name: 'a', password: digestJson('p1') },
        { name: 'b', password: digestJson('p2') },
      ],
    });
    expect(JSON.stringify(out)).not.toContain('4111');
  });

  it('hides the signature with what it hid: a signature checks guesses at a hidden value', () => {
    const signed = { ...action, signature: 'c2lnbmF0dXJl' };
    const { action: out, redacted } = redact(signed, ['args.card_number']);
    expect(out.signature).toBe(digestJson('c2lnbmF0dXJl'));
    expect(redacted).toEqual(['args.card_number', 'signature']);
    // Nothing hidden, nothing to protect: the signature stays.
    expect(redact(signed, ['args.none']).action.signature).toBe('c2lnbmF0dXJl');
  });

  it('leaves the action alone when nothing matches, and never edits its input', () => {
    const before = JSON.stringify(action);
    expect(redact(action, ['args.missing.x']).redacted).toEqual([]);
    redact(action, ['args.card_number']);
    expect(JSON.stringify(action)).toBe(before);
  });

  it('returns what it hid as text might quote it, longest first', () => {
    const { secrets } = redact({ args: { pw: 'S3CRET"x', pin: 1234, card: { number: '4111' } } }, [
      'args.pw',
      'args.pin',
      'args.card',
    ]);
    expect(secrets).toEqual([
      '{\\"number\\":\\"4111\\"}',
      '{"number":"4111"}',
      'S3CRET\\"x',
      'S3CRET"x',
      '1234',
      '4111',
    ]);
  });
});

describe('scrubReasons', () => {
  it('replaces hidden values in messages and errors, and leaves other reasons as they are', () => {
    const plain = { code: 'ALLOWED_BY_RULE' as const, message: 'an allow rule matched' };
    const failed = {
      code: 'CONDITION_ERROR' as const,
      message: 'a condition could not be evaluated',
      rule: 'tools.pay[0]',
      error: 'not a URL: "S3CRETxyz"; No such key: S3CRETxyz',
    };
    const [kept, scrubbed] = scrubReasons([plain, failed], ['S3CRETxyz']);
    expect(kept).toBe(plain);
    expect(scrubbed).toEqual({
      ...failed,
      error: 'not a URL: "[redacted]"; No such key: [redacted]',
    });
  });
});
