import { describe, expect, it } from 'vitest';
import { digestJson } from '../core/digest.js';
import { redact } from './redact.js';

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

  it('leaves the action alone when nothing matches, and never edits its input', () => {
    const before = JSON.stringify(action);
    expect(redact(action, ['args.missing.x']).redacted).toEqual([]);
    redact(action, ['args.card_number']);
    expect(JSON.stringify(action)).toBe(before);
  });
});
