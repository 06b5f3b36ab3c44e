/** Writes schema/policy.schema.json from the policy schema definition (`npm run schema`). */
import { writeFileSync } from 'node:fs';
import { policyJsonSchema } from '../src/policy/index.js';

writeFileSync(
  new URL('../schema/policy.schema.json', import.meta.url),
  `${JSON.stringify(policyJsonSchema(), null, 2)}\n`,
);
