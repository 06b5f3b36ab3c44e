import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { WritError } from '../core/errors.js';
import { registerCheck } from './check.js';
import { registerDemo } from './demo.js';
import { CliExit, EXIT, stopQuietlyOnClosedStdout } from './io.js';
import { registerLogCommands } from './log.js';
import { registerStoreCommands } from './store.js';
import { registerTest } from './test.js';
import { registerValidate } from './validate.js';

/** The version in package.json, two folders up from both `src/cli` and `dist/cli`. */
function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

/** Runs the `writ` command line; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  stopQuietlyOnClosedStdout();
  const program = new Command('writ')
    .description('deterministic execution authorization for AI agents')
    .version(packageVersion(), '-V, --version', 'print the version of writ')
    .showHelpAfterError()
    .exitOverride();
  registerValidate(program);
  registerCheck(program);
  registerTest(program);
  registerDemo(program);
  registerStoreCommands(program);
  registerLogCommands(program);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CliExit) {
      if (error.message) process.stderr.write(`${error.message}\n`);
      return error.code;
    }
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT.INVALID_INPUT;
    // Misuse (a bad path, a script step the engine refuses) and a store that cannot be read
    // are the user's to fix, wherever they surface: one line, not a stack trace.
    if (error instanceof WritError && (error.code === 'USAGE' || error.code === 'STORE_FAILURE')) {
      process.stderr.write(`${error.message}\n`);
      return EXIT.INVALID_INPUT;
    }
    process.stderr.write(`writ: internal error: ${(error as Error).stack ?? String(error)}\n`);
    return 70;
  }
}
