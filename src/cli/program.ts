import { Command, CommanderError } from 'commander';
import { processEnvironment } from '../config/environment.js';
import { ConfigError, CoordinatorError, messageOf, UsageError } from '../errors.js';
import { registerCluster } from './commands/cluster.js';
import { registerConfig } from './commands/config-check.js';
import { registerFences } from './commands/fences.js';
import { registerOperatorViews } from './commands/operator-views.js';
import { registerOrphans } from './commands/orphans.js';
import { registerServe } from './commands/serve.js';
import { registerService } from './commands/service.js';
import { registerUpgrade } from './commands/upgrade.js';
import { registerVolume } from './commands/volume.js';
import type { CommandContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { escapeForTerminal, type Io, processIo } from './output.js';

/** Command modules; each adds its subcommands. */
const modules = [registerServe, registerConfig, registerVolume, registerCluster, registerService, registerOrphans, registerOperatorViews, registerFences, registerUpgrade];

/**
 * Runs the `hearth` command line. Resolves with the exit code: 0 done, 1 the operation failed,
 * 2 bad usage or configuration (nothing was done).
 */
export async function runCli(argv: readonly string[], io: Io = processIo, env: NodeJS.ProcessEnv = processEnvironment()): Promise<number> {
  let exitCode: number = ExitCode.OK;
  const ctx: CommandContext = { io, env, setExitCode: (code) => (exitCode = code) };
  const program = new Command('hearth')
    .description('active/active HA coordinator for block-storage volume services')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError('(run with --help for usage)');
  for (const register of modules) register(program, ctx);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    return reportFailure(err, io, exitCode);
  }
}

function reportFailure(err: unknown, io: Io, exitCode: number): number {
  if (err instanceof CommanderError) {
    // Help and version requests end through exitOverride with code 0.
    return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (err instanceof ConfigError || err instanceof UsageError) {
    io.err(`hearth: ${err.message}`);
    return ExitCode.USAGE;
  }
  // The message may quote an API's answer: escaped like table cells.
  io.err(`hearth: ${escapeForTerminal(err instanceof CoordinatorError ? `${err.message} [${err.code}]` : messageOf(err))}`);
  return exitCode === ExitCode.OK ? ExitCode.FAILED : exitCode;
}
