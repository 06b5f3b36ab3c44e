import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { policyJsonSchema } from '../src/policy/index.js';

describe('the JSON Schema for editors', () => {
  it('is generated from the policy schema and up to date (run npm run schema)', () => {
    const file = JSON.parse(
      readFileSync(new URL('../schema/policy.schema.json', import.meta.url), 'utf8'),
    );
    expect(file).toEqual(policyJsonSchema());
  });

  it('describes every top-level key and rejects unknown ones', () => {
    const schema = policyJsonSchema() as {
      properties: Record<string, unknown>;
      additionalProperties: boolean;
    };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['version', 'tools', 'budgets', 'flow', 'labels']),
    );
    expect(schema.additionalProperties).toBe(false);
  });
});
