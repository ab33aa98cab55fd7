/**
 * The only place hearth reads the process environment (a boundary check enforces it): the
 * configuration's `HEARTH_*` variables, the build revision a container image may set, the
 * `PATH` a child process is given, and the API server address Kubernetes gives a pod.
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

/**
 * The API server's address as Kubernetes gives it to every pod (`KUBERNETES_SERVICE_HOST` and
 * `KUBERNETES_SERVICE_PORT`), as an https URL; undefined outside a pod. `env` is for the
 * configuration loader, which checks a configuration against the environment it was given.
 */
export function inClusterApiServer(env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST?.trim();
  if (!host) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT?.trim() || '443';
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
