import { createHmac, generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { manualClock } from '../core/clock.js';
import { signingPayload } from '../core/digest.js';
import { createWrit } from './writ.js';

const T0 = Date.parse('2026-11-23T10:00:00.000Z');
const SECRET = 'agent-7 shares this with writ';
const ed25519 = generateKeyPairSync('ed25519');
const ED25519_PUBLIC = ed25519.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);

const POLICY = `version: 1
tools:
  pay:
    - allow: 'principal.roles.size() == 0 || !("admin" in principal.roles)'
replay:
  require_signature: true
  max_age: 5m
  keys:
    agent-7: { hmac_secret_env: AGENT7_SECRET }
    agent-8: { ed25519: ${ED25519_PUBLIC.toString('base64')} }
`;

type Request = Parameters<typeof signingPayload>[0] & { signature?: string };

const request = (principal: string): Request => ({
  tool: 'pay',
  args: { to: 'bob', amount: 10 },
  principal: { id: principal, tenant: 'acme' },
  session: { id: 's1', attrs: { payees: ['bob'] }, labels: ['b', 'a'] },
  idempotencyKey: 'k1',
  nonce: 'n1',
  issuedAt: '2026-11-23T10:00:00Z',
  estimate: { cost: 10 },
  meta: { trace: 't1' },
});

const hmac = (r: Request) =>
  `hmac-sha256:${createHmac('sha256', SECRET).update(signingPayload(r)).digest('base64')}`;
const signEd25519 = (r: Request) =>
  `ed25519:${sign(null, Buffer.from(signingPayload(r)), ed25519.privateKey).toString('base64')}`;

function engine() {
  return createWrit({
    policy: POLICY,
    clock: manualClock(T0),
    secrets: (name) => (name === 'AGENT7_SECRET' ? SECRET : undefined),
  });
}

/** Every field of a request changed after it was signed, one at a time. */
const TAMPERINGS: [string, (r: Request) => void][] = [
  ['args', (r) => Object.assign(r.args!, { amount: 10_000 })],
  ['tool', (r) => Object.assign(r, { tool: 'refund' })],
  ['tenant', (r) => Object.assign(r.principal, { tenant: 'other' })],
  ['roles added', (r) => Object.assign(r.principal, { roles: ['admin'] })],
  ['principal attrs', (r) => Object.assign(r.principal, { attrs: { tier: 'gold' } })],
  ['session id', (r) => Object.assign(r.session, { id: 's2' })],
  ['session attrs', (r) => Object.assign(r.session, { attrs: { payees: ['mallory'] } })],
  ['session labels', (r) => Object.assign(r.session, { labels: [] })],
  ['idempotency key', (r) => Object.assign(r, { idempotencyKey: 'k2' })],
  ['nonce', (r) => Object.assign(r, { nonce: 'n2' })],
  ['issuedAt', (r) => Object.assign(r, { issuedAt: '2026-11-23T10:01:00Z' })],
  ['estimate', (r) => Object.assign(r, { estimate: { cost: 0 } })],
  ['meta', (r) => Object.assign(r, { meta: { trace: 't2' } })],
];

describe('signatures cover the whole request', () => {
  for (const [scheme, principal, signWith] of [
    ['HMAC-SHA256', 'agent-7', hmac],
    ['Ed25519', 'agent-8', signEd25519],
  ] as const) {
    it(`${scheme}: a signed request passes, and any field changed after signing fails`, async () => {
      const writ = engine();
      const signed = request(principal);
      signed.signature = signWith(signed);
      expect((await writ.authorize(signed)).outcome).toBe('allow');
      for (const [field, tamper] of TAMPERINGS) {
        const changed = structuredClone(request(principal));
        changed.nonce = `n-${field}`;
        changed.signature = signWith(changed);
        tamper(changed);
        const decided = await writ.authorize(changed);
        expect({ field, code: decided.reasons[0]?.code }).toEqual({
          field,
          code: 'BAD_SIGNATURE',
        });
      }
    });
  }

  it('signs what writ reads: label order, empty lists and time zones do not matter', async () => {
    const writ = engine();
    const signed = request('agent-7');
    signed.signature = hmac(signed);
    const same = structuredClone(signed);
    same.nonce = 'n1';
    Object.assign(same.session, { labels: ['a', 'b', 'a'] });
    Object.assign(same.principal, { roles: [], attrs: {} });
    same.issuedAt = '2026-11-23T11:00:00.000+01:00';
    expect((await writ.authorize(same)).outcome).toBe('allow');
  });

  it('refuses a request that is unsigned, or signed with the wrong key or scheme', async () => {
    const writ = engine();
    const cases: [Request, string | undefined, string][] = [
      [request('agent-7'), undefined, 'the request is not signed'],
      [request('agent-7'), 'hmac-sha256:AAAA', ''],
      [request('agent-8'), undefined, 'the request is not signed'],
      [request('agent-9'), undefined, 'no signature key is configured for agent-9'],
    ];
    // agent-7 signing as if it held agent-8's Ed25519 key, and the reverse.
    const crossed = request('agent-7');
    cases.push([crossed, signEd25519(crossed), '']);
    const other = request('agent-8');
    cases.push([other, hmac(other), '']);
    for (const [req, signature, message] of cases) {
      if (signature !== undefined) req.signature = signature;
      const decided = await writ.authorize(req);
      expect(decided.reasons[0]?.code).toBe('BAD_SIGNATURE');
      if (message) expect(decided.reasons[0]?.message).toBe(message);
    }
    // Without the secret in the environment, nothing signed with it verifies.
    const noSecret = createWrit({
      policy: POLICY,
      clock: manualClock(T0),
      secrets: () => undefined,
    });
    const signed = request('agent-7');
    signed.signature = hmac(signed);
    expect((await noSecret.authorize(signed)).reasons[0]?.code).toBe('BAD_SIGNATURE');
  });
});
