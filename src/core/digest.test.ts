import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';
import { actionDigest, digestJson, sha256Hex } from './digest.js';
import type { Json, JsonObject } from './json.js';

const nodeSha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('digests', () => {
  it('are pinned for known inputs, so a change of encoding cannot slip through', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(digestJson({})).toBe(
      'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
    );
  });

  it('hash the UTF-8 bytes of the canonical text (checked against node:crypto)', () => {
    const values: Json[] = [
      { b: [1, 2.5, -0], a: 'é€😀', c: { '\r': null, '\u20ac': true } },
      'x'.repeat(10_000),
      [[[[]]]],
    ];
    for (const value of values) {
      expect(digestJson(value)).toBe(`sha256:${nodeSha256(canonicalJson(value))}`);
    }
  });

  it('do not depend on key order, -0 or how a number was written', () => {
    expect(digestJson({ a: 1, b: { c: 2, d: 3 } })).toBe(digestJson({ b: { d: 3, c: 2 }, a: 1 }));
    expect(digestJson({ n: -0 })).toBe(digestJson({ n: 0 }));
    expect(digestJson(JSON.parse('{"n":1.0e2}'))).toBe(digestJson({ n: 100 }));
  });

  it('differ for values that differ', () => {
    const seen = new Set(
      [null, 0, '0', false, [], {}, [null], { a: null }, { a: '' }, ['a', 'b'], ['b', 'a']].map(
        (v) => digestJson(v as Json),
      ),
    );
    expect(seen.size).toBe(11);
  });

  it('never let NaN share a digest with null', () => {
    expect(() => digestJson({ a: Number.NaN })).toThrow();
    expect(digestJson({ a: null })).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('actionDigest', () => {
  const action = {
    tool: 'send_money',
    args: { amount: 5, recipient: 'bob' } as JsonObject,
    principal: { id: 'agent-1', tenant: 'acme' },
    session: { id: 's1' },
  };

  it('binds tool, canonical args, principal id and tenant, and session id', () => {
    const base = actionDigest(action);
    expect(actionDigest({ ...action, args: { recipient: 'bob', amount: 5 } })).toBe(base);
    expect(actionDigest({ ...action, tool: 'send_monex' })).not.toBe(base);
    expect(actionDigest({ ...action, args: { amount: 6, recipient: 'bob' } })).not.toBe(base);
    expect(actionDigest({ ...action, principal: { id: 'agent-2', tenant: 'acme' } })).not.toBe(
      base,
    );
    expect(actionDigest({ ...action, principal: { id: 'agent-1', tenant: 'other' } })).not.toBe(
      base,
    );
    expect(actionDigest({ ...action, principal: { id: 'agent-1' } })).not.toBe(base);
    expect(actionDigest({ ...action, session: { id: 's2' } })).not.toBe(base);
  });

  it('ignores what is not part of the action itself (roles, attrs, labels)', () => {
    const base = actionDigest(action);
    const richer = {
      ...action,
      principal: { ...action.principal, roles: ['admin'], attrs: { x: 1 } },
      session: { id: 's1', attrs: { payees: ['bob'] }, labels: ['untrusted'] },
    };
    expect(actionDigest(richer)).toBe(base);
  });

  it('keeps fields apart, so args cannot imitate the session', () => {
    const a = actionDigest({ ...action, args: {}, session: { id: 'x' } });
    const b = actionDigest({
      ...action,
      args: { session: 'x' } as JsonObject,
      session: { id: '' },
    });
    expect(a).not.toBe(b);
  });

  it('is the digest of the canonical { tool, args, principal: { id, tenant }, session }', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.string({ unit: 'grapheme' }),
        fc.option(fc.string({ unit: 'grapheme' }), { nil: undefined }),
        fc.string({ unit: 'grapheme' }),
        (tool, args, id, tenant, session) => {
          const principal: JsonObject = { id };
          if (tenant !== undefined) principal.tenant = tenant;
          const expected = digestJson({ tool, args: args as JsonObject, principal, session });
          const who = tenant === undefined ? { id } : { id, tenant };
          expect(
            actionDigest({
              tool,
              args: args as JsonObject,
              principal: who,
              session: { id: session },
            }),
          ).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });
});
