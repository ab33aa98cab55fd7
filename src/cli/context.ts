import type { Io } from './output.js';

/** What every command gets from the program. */
export interface CommandContext {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  setExitCode(code: number): void;
}
