/** The CLI's exit codes. */
export const ExitCode = {
  /** The command did what was asked. */
  OK: 0,
  /** The command was valid but the operation failed. */
  FAILED: 1,
  /** Bad usage or configuration: nothing was done. */
  USAGE: 2,
} as const;
