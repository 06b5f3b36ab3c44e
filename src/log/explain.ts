import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import { includedName, type PolicySourceText } from '../policy/index.js';

/** Where a rule or invariant of a stored policy is written, with its text. */
export interface RuleSource {
  file: string;
  line: number;
  text: string;
}

/**
 * Finds the source of a rule id as decisions name it — `tools.send_money[1]`, `flow[0]`,
 * a rule's `name`, `budgets.daily-spend`, or any of these behind `file.yaml#` for an
 * included file — in the policy texts kept with the log.
 */
export function locateRule(
  sources: readonly PolicySourceText[],
  id: string,
): RuleSource | undefined {
  const hash = id.indexOf('#');
  const [fileName, ruleId] =
    hash === -1 ? [undefined, id] : [id.slice(0, hash), id.slice(hash + 1)];
  // The file named as the compiler names it, exactly: matching the end of the path took
  // `sub/common.yaml` for `common.yaml`.
  const root = sources[0]?.path ?? '';
  const candidates =
    fileName === undefined
      ? sources
      : sources.filter((s) => includedName(root, s.path) === fileName);
  for (const source of candidates) {
    const lines = new LineCounter();
    const doc = parseDocument(source.text, { lineCounter: lines });
    const node = findNode(doc.contents, ruleId);
    if (node?.range) {
      const start = lines.linePos(node.range[0]).line;
      // A block collection's value ends where the next line starts: the rule's last line is
      // that of its last character, not the line of whatever follows it.
      let last = node.range[1];
      while (last > node.range[0] + 1 && /\s/.test(source.text[last - 1]!)) last--;
      const end = lines.linePos(last - 1).line;
      const text = source.text
        .split('\n')
        .slice(start - 1, end)
        .join('\n');
      return { file: source.path, line: start, text: text.trimEnd() };
    }
  }
  return undefined;
}

function findNode(root: unknown, id: string): Node | undefined {
  const positional =
    /^(tools)\.(.+)\[(\d+)\]$|^(flow)\[(\d+)\]$|^(budgets|rate_limits|concurrency|idempotency|labels)\.(.+)$/.exec(
      id,
    );
  if (positional) {
    const [, tools, pattern, i, flow, j, section, name] = positional;
    if (tools) return at(root, ['tools', pattern!, Number(i)]);
    if (flow) return at(root, ['flow', Number(j)]);
    return at(root, [section!, name!]);
  }
  // A named rule: search every rule list for it.
  const lists: unknown[] = [at(root, ['flow'])];
  const tools = at(root, ['tools']);
  if (isMap(tools)) for (const pair of tools.items) lists.push(pair.value);
  for (const list of lists) {
    if (!isSeq(list)) continue;
    for (const rule of list.items) {
      if (isMap(rule) && rule.get('name') === id) return rule as Node;
    }
  }
  return undefined;
}

function at(root: unknown, path: (string | number)[]): Node | undefined {
  let node = root;
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isScalar(p.key) && String(p.key.value) === String(segment),
      );
      node = pair?.value;
    } else if (isSeq(node) && typeof segment === 'number') node = node.items[segment];
    else return undefined;
  }
  return node as Node | undefined;
}
