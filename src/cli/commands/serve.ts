import type { Command } from 'commander';
import { type App, startApp } from '../../app.js';
import { createLogger, resolveLogFormat } from '../../observability/logger.js';
import { clusterId, hostId } from '../../config/rules.js';
import { addConfigFlags, configFromFlags } from '../config-flags.js';
import { readyLine } from '../ready-line.js';
import { ExitCode } from '../exit-codes.js';
import type { CommandContext } from '../context.js';

/**
 * `hearth serve`: runs the daemon until SIGTERM or SIGINT; once it is ready it logs one line
 * with the API and metrics URLs and the next command to try. Log lines are pretty on a terminal
 * and JSON otherwise (`log.format`). On a signal it shuts down in order and exits 0. A second signal during shutdown exits at once with 130. A signal while it is still
 * starting (e.g. retrying an unreachable etcd) interrupts the start: it shuts down what started
 * and exits 0, as after a normal run; a start that fails by itself exits 1.
 */
export function registerServe(program: Command, ctx: CommandContext): void {
  const cmd = program
    .command('serve')
    .description('run the daemon: single-node on SQLite by default, a cluster member with etcd and RabbitMQ');
  addConfigFlags(cmd).action(async (opts: Record<string, unknown>) => {
    const config = await configFromFlags(opts, ctx.env);
    const format = resolveLogFormat(config.log.format, process.stdout.isTTY === true);
    const logger = createLogger({ level: config.log.level, format, base: { host: hostId(config), cluster: clusterId(config) } });
    const interrupt = new AbortController();
    const stopped = new Promise<NodeJS.Signals>((resolve) => {
      let signalled = false;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (signalled) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(130);
        }
        signalled = true;
        interrupt.abort(signal);
        resolve(signal);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    let app: App;
    try {
      // A start that fails or is interrupted has already shut down what it started.
      app = await startApp(config, { logger }, interrupt.signal);
    } catch (err) {
      // startApp logged why and shut down what it had started.
      if (interrupt.signal.aborted) {
        ctx.setExitCode(ExitCode.OK);
        return;
      }
      ctx.setExitCode(ExitCode.FAILED);
      throw err;
    }
    const ready = readyLine(app.addresses);
    logger.info(ready.fields, ready.msg);
    const signal = await stopped;
    logger.info({ signal }, 'shutting down');
    await app.close();
    ctx.setExitCode(ExitCode.OK);
  });
}
