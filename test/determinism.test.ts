import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The pure core must not read the real clock, randomness or the machine: the same inputs
 * must give byte-identical decisions. This test fails on any such use in src/core and
 * src/policy, so the rule is enforced rather than hoped for.
 */
const PURE_DIRS = ['src/core', 'src/policy'];
const FORBIDDEN: [RegExp, string][] = [
  [/\bDate\.now\s*\(/, 'Date.now()'],
  [/\bnew Date\s*\(\s*\)/, 'new Date() without an argument'],
  [/\bMath\.random\s*\(/, 'Math.random()'],
  [/\bperformance\.now\s*\(/, 'performance.now()'],
  [/\bcrypto\.(getRandomValues|randomUUID)\s*\(/, 'crypto randomness'],
  [/from\s+['"]node:/, 'a Node built-in import'],
  [/\bprocess\./, 'process'],
];

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : [];
  });
}

describe('the pure core', () => {
  const files = PURE_DIRS.flatMap(sources);

  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it.each(files)('%s reads no clock, randomness or Node built-in', (file) => {
    const text = readFileSync(file, 'utf8');
    const found = FORBIDDEN.filter(([pattern]) => pattern.test(text)).map(([, what]) => what);
    expect(found, `${file} uses ${found.join(', ')}`).toEqual([]);
  });
});
