/**
 * The only place hearth reads the process environment (a boundary check enforces it): the
 * configuration's `HEARTH_*` variables, the build revision a container image may set, and the
 * `PATH` a child process is given.
 */

/** The process environment, for the command line to pass to the configuration loader. */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}

/** The source revision a container image records at build time (`HEARTH_BUILD_REVISION`), if any. */
export function buildRevisionFromEnvironment(): string | undefined {
  return process.env.HEARTH_BUILD_REVISION;
}

/** The `PATH` a child process (such as `cp`) searches, with Debian's default when unset. */
export function childSearchPath(): string {
  return process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
}
