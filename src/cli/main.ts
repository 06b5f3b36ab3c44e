import { Command, CommanderError } from 'commander';
import { registerCheck } from './check.js';
import { registerDemo } from './demo.js';
import { CliExit, EXIT } from './io.js';
import { registerLogCommands } from './log.js';
import { registerStoreCommands } from './store.js';
import { registerTest } from './test.js';
import { registerValidate } from './validate.js';

/** Runs the `writ` command line; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('writ')
    .description('deterministic execution authorization for AI agents')
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
    process.stderr.write(`writ: internal error: ${(error as Error).stack ?? String(error)}\n`);
    return 70;
  }
}
