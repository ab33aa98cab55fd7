import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** True when `name` is an executable on PATH (or an existing absolute path). */
export function hasBinary(name: string): boolean {
  if (name.startsWith('/')) return existsSync(name);
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Fails with a message that says how to get the binary. Tests never skip silently when a
 * server they need is missing: `make test` installs the Debian packages first.
 */
export function requireBinary(name: string, debianPackage: string): void {
  if (!hasBinary(name)) {
    throw new Error(
      `${name} is not installed: run \`make test\` (it installs Debian's ${debianPackage}), or \`apt-get install ${debianPackage}\`, ` +
        'or point the tests at external servers with HEARTH_TEST_ETCD_ENDPOINTS / HEARTH_TEST_AMQP_URL',
    );
  }
}
