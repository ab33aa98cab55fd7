import { runCli } from './cli/program.js';

/** Process entry point used by `bin/hearth.js`; resolves with the exit code. */
export function main(argv: readonly string[]): Promise<number> {
  return runCli(argv);
}
