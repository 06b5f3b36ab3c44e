import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { messageOf, PolicyError, WritError } from '../core/errors.js';
import { type CompiledPolicy, compilePolicy, type SourceReader } from '../policy/index.js';

const fileReader: SourceReader = {
  resolve: (from, ref) => (isAbsolute(ref) ? ref : join(dirname(from), ref)),
  read: (path) => readFileSync(path, 'utf8'),
};

/**
 * Loads and compiles a policy from a file path, or from YAML text (anything with a line
 * break or starting with `version:`). Includes are read relative to the including file
 * (for text, relative to the working directory). Throws `PolicyError` listing every
 * problem as `file:line:col: message`.
 *
 * @example
 * const policy = loadPolicy('./policy.yaml');
 */
export function loadPolicy(pathOrText: string): CompiledPolicy {
  // A number would be read as a file descriptor (0 is standard input).
  if (typeof pathOrText !== 'string' || pathOrText === '')
    throw new WritError('USAGE', 'loadPolicy expects a policy file path or YAML text');
  if (/\n/.test(pathOrText) || /^\s*version\s*:/.test(pathOrText)) {
    return compilePolicy({ path: '<inline>.yaml', text: pathOrText }, fileReader);
  }
  let text: string;
  try {
    text = fileReader.read(pathOrText);
  } catch (error) {
    // As an include that cannot be read is reported: a problem located in the file named.
    const message = `cannot read the policy file: ${messageOf(error)}`;
    throw new PolicyError([{ file: pathOrText, line: 1, col: 1, message }]);
  }
  return compilePolicy({ path: pathOrText, text }, fileReader);
}
