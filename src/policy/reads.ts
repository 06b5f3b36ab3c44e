import { celEnvironment } from './cel.js';

/**
 * Which parts of an action an expression can read, found statically from its syntax tree:
 * `args.card.number`, `meta.region`, … A path is as long as it is known without evaluating
 * anything: `args[k].x` reads all of `args`, `size(args.items)` all of `args.items`. Replay
 * uses this to refuse to guess about entries whose redacted arguments a rule reads.
 */

/** Variables whose fields map to fields of the action, and where. */
const ROOTS: Record<string, string[]> = {
  args: ['args'],
  principal: ['principal'],
  session: ['session'],
  estimate: ['estimate'],
  request: [],
};

interface AstNode {
  op: string;
  args: unknown;
}

const isNode = (value: unknown): value is AstNode =>
  typeof value === 'object' && value !== null && typeof (value as AstNode).op === 'string';

/** Paths (as segment lists) that `source` reads from the action. */
export function readPaths(source: string): string[][] {
  const ast = (celEnvironment().parse(source) as unknown as { ast: AstNode }).ast;
  const found: string[][] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (!isNode(node)) return;
    const path = staticPath(node);
    if (path) {
      found.push(path);
      return;
    }
    visit(node.args);
  };
  visit(ast);
  return found;
}

/**
 * The action path of a member chain rooted at a context variable, or undefined. A dynamic
 * index ends the known part: nothing after it is appended (`closed`).
 */
function staticPath(node: AstNode): string[] | undefined {
  return chain(node)?.path;
}

function chain(node: AstNode): { path: string[]; closed: boolean } | undefined {
  if (node.op === 'id' && typeof node.args === 'string' && node.args in ROOTS) {
    return { path: [...ROOTS[node.args]!], closed: false };
  }
  if (node.op !== '.' && node.op !== '[]') return undefined;
  const [target, key] = node.args as [unknown, unknown];
  const base = isNode(target) ? chain(target) : undefined;
  if (!base || base.closed) return base;
  // `request.meta.x` is the action's `meta.x`, `request.nonce` its `nonce`.
  const segment =
    node.op === '.' ? key : isNode(key) && key.op === 'value' ? String(key.args) : undefined;
  if (typeof segment !== 'string') return { path: base.path, closed: true };
  return { path: [...base.path, segment], closed: false };
}

/** True when a read of `read` may see the value at the redacted `path` (`*` matches one segment). */
export function overlaps(read: readonly string[], path: readonly string[]): boolean {
  const n = Math.min(read.length, path.length);
  for (let i = 0; i < n; i++) {
    if (read[i] !== path[i] && path[i] !== '*') return false;
  }
  return true;
}
