/**
 * The writ functions the benchmarks call, from the source (for tests) or from the build
 * in `dist/` (for timing). Timing runs the build because that is what ships: the source
 * as `tsx` transpiles it is not the same code (esbuild keeps function names with a
 * `__name(fn, "name")` call around every closure, which costs a call and a
 * `defineProperty` each time a closure is created inside a hot function).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAction } from '../src/core/action.js';
import { canonicalJson } from '../src/core/canonical-json.js';
import { actionDigest, sha256Hex } from '../src/core/digest.js';
import { decideScope } from '../src/engine/decide.js';
import { compilePolicy } from '../src/policy/compile.js';
import { buildContext, evaluateScope } from '../src/policy/evaluate.js';
import { normalizePath, pathWithin } from '../src/policy/helpers.js';

/** The functions of writ a benchmark uses. */
export interface Engine {
  /** Where they were loaded from. */
  from: 'src' | 'dist';
  compilePolicy: typeof compilePolicy;
  parseAction: typeof parseAction;
  decideScope: typeof decideScope;
  buildContext: typeof buildContext;
  evaluateScope: typeof evaluateScope;
  pathWithin: typeof pathWithin;
  normalizePath: typeof normalizePath;
  actionDigest: typeof actionDigest;
  canonicalJson: typeof canonicalJson;
  sha256Hex: typeof sha256Hex;
}

/** writ from its TypeScript source, as tests see it. */
export const srcEngine: Engine = {
  from: 'src',
  compilePolicy,
  parseAction,
  decideScope,
  buildContext,
  evaluateScope,
  pathWithin,
  normalizePath,
  actionDigest,
  canonicalJson,
  sha256Hex,
};

const root = fileURLToPath(new URL('..', import.meta.url));

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
      newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * writ from `dist/` (run `npm run build` first; `npm run bench` does). Throws if there is
 * no build, warns if a source file is newer than it.
 */
export async function distEngine(): Promise<Engine> {
  const built = join(root, 'dist', 'index.js');
  if (!existsSync(built)) throw new Error('no build in dist/: run `npm run build` first');
  if (newestSource(join(root, 'src')) > statSync(built).mtimeMs)
    console.warn('warning: src/ has changes newer than dist/; `npm run bench` rebuilds first');
  // Paths built at run time so that type-checking does not need a build.
  const load = (path: string) => import(new URL(`../dist/${path}`, import.meta.url).href);
  const [action, canonical, digest, decide, compile, evaluate, helpers] = await Promise.all([
    load('core/action.js'),
    load('core/canonical-json.js'),
    load('core/digest.js'),
    load('engine/decide.js'),
    load('policy/compile.js'),
    load('policy/evaluate.js'),
    load('policy/helpers.js'),
  ]);
  return {
    from: 'dist',
    compilePolicy: compile.compilePolicy,
    parseAction: action.parseAction,
    decideScope: decide.decideScope,
    buildContext: evaluate.buildContext,
    evaluateScope: evaluate.evaluateScope,
    pathWithin: helpers.pathWithin,
    normalizePath: helpers.normalizePath,
    actionDigest: digest.actionDigest,
    canonicalJson: canonical.canonicalJson,
    sha256Hex: digest.sha256Hex,
  };
}
