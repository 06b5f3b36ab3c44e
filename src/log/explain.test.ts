import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decideScope } from '../engine/decide.js';
import { loadPolicy } from '../runtime/load-policy.js';
import { locateRule } from './explain.js';

const dir = mkdtempSync(join(tmpdir(), 'writ-explain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const forbid = (x: number, message: string) =>
  `version: 1\ntools:\n  a:\n    - forbid: 'args.x == ${x}'\n      message: ${message}\n`;

describe('locateRule', () => {
  it('finds a rule in the included file its id names, not in one whose path ends alike', () => {
    const files: Record<string, string> = {
      'p/policy.yaml':
        'version: 1\ninclude: [sub/common.yaml, common.yaml, ../elsewhere/common.yaml]\n',
      'p/sub/common.yaml': forbid(2, 'sub common'),
      'p/common.yaml': forbid(1, 'top common'),
      'elsewhere/common.yaml': forbid(3, 'elsewhere'),
    };
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    const policy = loadPolicy(join(dir, 'p/policy.yaml'));
    for (const [x, file, message] of [
      [1, 'p/common.yaml', 'top common'],
      [2, 'p/sub/common.yaml', 'sub common'],
      [3, 'elsewhere/common.yaml', 'elsewhere'],
    ] as const) {
      const decision = decideScope(
        policy,
        { tool: 'a', args: { x }, principal: { id: 'p' }, session: { id: 's' } },
        { now: 0, id: 'd' },
      );
      const rule = decision.reasons[0]!.rule!;
      expect(locateRule(policy.sources, rule)).toEqual({
        file: join(dir, file),
        line: 4,
        text: `    - forbid: 'args.x == ${x}'\n      message: ${message}`,
      });
    }
  });
});
