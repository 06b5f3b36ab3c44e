import { celEnvironment } from './cel.js';
import { compileGlob } from './glob.js';

/**
 * Static analysis of policy expressions, from their syntax trees.
 *
 * Which parts of an action an expression can read:
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

/**
 * A test on the tool name that an expression implies: when the expression is a conjunction
 * (`a && b && …`) one of whose parts compares `tool` with constants — `tool == "x"`,
 * `tool in ["x", "y"]`, `tool.startsWith("k8s.")`, `tool.endsWith(".delete")`,
 * `glob.match("files.*", tool)`, or an `||` of these — then for any other tool the
 * expression is false, whatever its other parts do (in CEL a false conjunct makes `&&`
 * false even when another part errors). Flow rules are indexed by it, so a decision only
 * evaluates the flow rules that can apply to its tool. `undefined`: no such test.
 */
export function toolGuard(source: string): ((tool: string) => boolean) | undefined {
  const ast = (celEnvironment().parse(source) as unknown as { ast: AstNode }).ast;
  const guards = conjuncts(ast).flatMap((node) => {
    const guard = toolTest(node);
    return guard ? [guard] : [];
  });
  if (guards.length === 0) return undefined;
  return (tool) => guards.every((guard) => guard(tool));
}

function conjuncts(node: AstNode): AstNode[] {
  if (node.op !== '&&') return [node];
  return (node.args as AstNode[]).flatMap(conjuncts);
}

const isTool = (node: unknown) => isNode(node) && node.op === 'id' && node.args === 'tool';
const constant = (node: unknown): string | undefined =>
  isNode(node) && node.op === 'value' && typeof node.args === 'string' ? node.args : undefined;

function toolTest(node: AstNode): ((tool: string) => boolean) | undefined {
  const args = node.args as unknown[];
  switch (node.op) {
    case '||': {
      const [left, right] = (args as AstNode[]).map(toolTest);
      return left && right ? (tool) => left(tool) || right(tool) : undefined;
    }
    case '==': {
      const value = isTool(args[0])
        ? constant(args[1])
        : isTool(args[1])
          ? constant(args[0])
          : undefined;
      return value === undefined ? undefined : (tool) => tool === value;
    }
    case 'in': {
      const list = args[1];
      if (!isTool(args[0]) || !isNode(list) || list.op !== 'list') return undefined;
      const values = (list.args as unknown[]).map(constant);
      if (values.some((v) => v === undefined)) return undefined;
      const set = new Set(values as string[]);
      return (tool) => set.has(tool);
    }
    case 'rcall': {
      const [method, receiver, params] = args as [string, unknown, unknown[]];
      const value = params.length === 1 ? constant(params[0]) : undefined;
      if (isTool(receiver) && value !== undefined) {
        if (method === 'startsWith') return (tool) => tool.startsWith(value);
        if (method === 'endsWith') return (tool) => tool.endsWith(value);
      }
      const pattern = params.length === 2 ? constant(params[0]) : undefined;
      if (
        method === 'match' &&
        isNode(receiver) &&
        receiver.args === 'glob' &&
        pattern !== undefined &&
        isTool(params[1])
      ) {
        // An invalid pattern errors at evaluation, and an error does not make `&&` false.
        try {
          return compileGlob(pattern);
        } catch {
          return undefined;
        }
      }
      return undefined;
    }
    default:
      return undefined;
  }
}
