import { describe, expect, it } from 'vitest';
import { WritError } from '../core/errors.js';
import { memoryStore } from '../store/memory/index.js';
import { createWrit, type WritOptions } from './writ.js';

const POLICY = 'version: 1\ntools:\n  t:\n    - allow: true\n';

function usageError(options: unknown): string {
  try {
    createWrit(options as WritOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(WritError);
    expect((error as WritError).code).toBe('USAGE');
    return (error as Error).message;
  }
  throw new Error(`createWrit accepted ${JSON.stringify(options)}`);
}

describe('createWrit options', () => {
  it('refuses, when created, what would fail or quietly change every decision', () => {
    // Every method a real store has, except authorize.
    const storeWithoutAuthorize: Record<string, () => void> = {};
    for (let proto = Object.getPrototypeOf(memoryStore()); proto !== Object.prototype; ) {
      for (const name of Object.getOwnPropertyNames(proto))
        if (name !== 'constructor' && name !== 'authorize') storeWithoutAuthorize[name] = () => {};
      proto = Object.getPrototypeOf(proto);
    }
    const cases: [unknown, RegExp][] = [
      [undefined, /expects an options object/],
      [{}, /policy must be a policy file path/],
      [{ policy: 42 }, /policy must be a policy file path/],
      [{ policy: POLICY, candidate: {} }, /candidate must be/],
      [{ policy: POLICY, store: {} }, /store must be a Store .* lacks authorize, settle/],
      [{ policy: POLICY, store: storeWithoutAuthorize }, /lacks authorize$/],
      [{ policy: POLICY, clock: { now: 1_000 } }, /clock must have a now\(\)/],
      [{ policy: POLICY, ids: {} }, /ids must have a next\(kind\)/],
      [{ policy: POLICY, writTtlMs: -5 }, /writTtlMs must be .* above 0, not -5/],
      [{ policy: POLICY, writTtlMs: '60000' }, /writTtlMs must be .* not 60000/],
      [{ policy: POLICY, writTtlMs: Number.POSITIVE_INFINITY }, /writTtlMs/],
      [{ policy: POLICY, log: 'no' }, /log must be true or false, not "no"/],
      [{ policy: POLICY, secrets: { KEY: 'x' } }, /secrets must be a function/],
    ];
    for (const [options, message] of cases) expect(usageError(options)).toMatch(message);
  });

  it('takes a policy as a path, as YAML text, or compiled, and a store with every method', async () => {
    const writ = createWrit({ policy: POLICY, store: memoryStore(), writTtlMs: 1, log: false });
    const decided = await writ.authorize({
      tool: 't',
      principal: { id: 'p' },
      session: { id: 's' },
    });
    expect(decided.outcome).toBe('allow');
    expect(createWrit({ policy: writ.policy }).policy.hash).toBe(writ.policy.hash);
  });
});
