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

let checked = false;

/**
 * One module of writ's build in `dist/`, such as `engine/writ.js` (run `npm run build`
 * first; `npm run bench` does). Throws if there is no build, warns once if a source file is
 * newer than it. Paths are built at run time so that type-checking does not need a build;
 * callers cast what they take to the type of the same export in `src/`.
 */
export async function loadDist(path: string): Promise<Record<string, unknown>> {
  if (!checked) {
    const built = join(root, 'dist', 'index.js');
    if (!existsSync(built)) throw new Error('no build in dist/: run `npm run build` first');
    if (newestSource(join(root, 'src')) > statSync(built).mtimeMs)
      console.warn('warning: src/ has changes newer than dist/; `npm run bench` rebuilds first');
    checked = true;
  }
  return import(new URL(`../dist/${path}`, import.meta.url).href);
}

/**
 * writ from `dist/` (run `npm run build` first; `npm run bench` does). Throws if there is
 * no build, warns if a source file is newer than it.
 */
export async function distEngine(): Promise<Engine> {
  // What every deployment loads with the engine: it installs node:crypto's SHA-256 in place
  // of the portable one, as importing `writ` does.
  await loadDist('runtime/system.js');
  const [action, canonical, digest, decide, compile, evaluate, helpers] = await Promise.all([
    loadDist('core/action.js'),
    loadDist('core/canonical-json.js'),
    loadDist('core/digest.js'),
    loadDist('engine/decide.js'),
    loadDist('policy/compile.js'),
    loadDist('policy/evaluate.js'),
    loadDist('policy/helpers.js'),
  ]);
  return {
    from: 'dist',
    compilePolicy: compile.compilePolicy as Engine['compilePolicy'],
    parseAction: action.parseAction as Engine['parseAction'],
    decideScope: decide.decideScope as Engine['decideScope'],
    buildContext: evaluate.buildContext as Engine['buildContext'],
    evaluateScope: evaluate.evaluateScope as Engine['evaluateScope'],
    pathWithin: helpers.pathWithin as Engine['pathWithin'],
    normalizePath: helpers.normalizePath as Engine['normalizePath'],
    actionDigest: digest.actionDigest as Engine['actionDigest'],
    canonicalJson: canonical.canonicalJson as Engine['canonicalJson'],
    sha256Hex: digest.sha256Hex as Engine['sha256Hex'],
  };
}
