import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A table python-cinderclient printed, as rows of header → cell. */
export type CinderRows = Record<string, string>[];

/** Parses prettytable output (`| a | b |` lines; the first is the header). */
export function parseCinderTable(text: string): CinderRows {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  const cells = (line: string): string[] => line.slice(1, -1).split('|').map((c) => c.trim());
  const [head, ...rows] = lines.map(cells);
  if (!head) return [];
  return rows.map((r) => Object.fromEntries(head.map((h, i) => [h, r[i] ?? ''])));
}

/** `print_dict` output (Property | Value) as an object. */
export function parseCinderDict(text: string): Record<string, string> {
  return Object.fromEntries(parseCinderTable(text).map((r) => [r.Property ?? '', r.Value ?? '']));
}

/** The options that point `cinder` at `apiUrl` as project `admin`, with the noauth plugin. */
export function cinderAuthArgs(apiUrl: string): string[] {
  return ['--os-auth-type', 'noauth', '--os-user-id', 'admin', '--os-project-id', 'admin', '--os-endpoint', `${apiUrl}/v3/admin`];
}

/**
 * Runs the real python-cinderclient (Debian's `cinder`) against `apiUrl` with the noauth
 * plugin, exactly as an operator would, and returns its output. Rejects with stderr on a
 * non-zero exit.
 */
export async function cinder(apiUrl: string, ...args: string[]): Promise<string> {
  const argv = [...cinderAuthArgs(apiUrl), ...args];
  try {
    // A listing of 20,000 volumes prints about 3 MB.
    const { stdout } = await run('cinder', argv, { env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeout: 60_000, maxBuffer: 64 * 2 ** 20 });
    return stdout;
  } catch (err) {
    const e = err as { code?: number; stderr?: string; stdout?: string };
    throw new Error(`cinder ${args.join(' ')} exited ${e.code}: ${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
  }
}
