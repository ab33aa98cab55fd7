/**
 * The fence command must be there before it is needed: a missing or non-executable
 * `fencing.exec.command` would otherwise surface only when a node dies — as a fence that can
 * never succeed, holding up every takeover. Checked at start, with the secret files.
 */
import { access, constants, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import type { ConfigIssue } from '../errors.js';
import { childSearchPath } from './environment.js';
import type { Config } from './schema.js';

/** Where a command was found, or why it cannot be run. */
export type CommandLookup = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly problem: string };

/**
 * Finds `command` as a process started without a shell would: an absolute path as it is, a bare
 * name in the directories of `searchPath` (the first executable file wins, as `execvp` does).
 * A relative path with a `/` is refused: it would depend on the working directory.
 */
export async function lookUpCommand(command: string, searchPath: string): Promise<CommandLookup> {
  if (isAbsolute(command)) {
    const problem = await notRunnable(command);
    return problem === undefined ? { ok: true, path: command } : { ok: false, problem: `${command} ${problem.text}` };
  }
  if (command.includes('/')) return { ok: false, problem: `${command} must be an absolute path or a bare name found on PATH` };
  let firstProblem: string | undefined;
  for (const dir of searchPath.split(delimiter)) {
    // An empty entry means the working directory to a shell; hearth does not look there.
    if (dir === '' || !isAbsolute(dir)) continue;
    const candidate = join(dir, command);
    const problem = await notRunnable(candidate);
    if (problem === undefined) return { ok: true, path: candidate };
    if (!problem.missing) firstProblem ??= `${candidate} ${problem.text}`;
  }
  return { ok: false, problem: firstProblem ?? `${command} was not found on PATH (${searchPath})` };
}

/** Why `path` cannot be executed (`missing`: there is nothing there), or undefined when it can. */
async function notRunnable(path: string): Promise<{ readonly missing: boolean; readonly text: string } | undefined> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { missing: true, text: 'does not exist' };
    return { missing: false, text: `cannot be examined (${typeof code === 'string' ? code : 'unknown error'})` };
  }
  if (info.isDirectory()) return { missing: false, text: 'is a directory' };
  if (!info.isFile()) return { missing: false, text: 'is not a regular file' };
  try {
    await access(path, constants.X_OK);
  } catch {
    return { missing: false, text: 'is not executable (no execute permission for this user)' };
  }
  return undefined;
}

/**
 * With `fencing.method` exec: the fence command can be run by this process, found on the `PATH`
 * the command will get. (An empty command is a rule of its own, in rules.ts.)
 */
export async function fenceCommandIssues(config: Pick<Config, 'fencing'>, searchPath: string = childSearchPath()): Promise<ConfigIssue[]> {
  const { method, exec } = config.fencing;
  if (method !== 'exec' || exec.command === '') return [];
  const found = await lookUpCommand(exec.command, searchPath);
  if (found.ok) return [];
  return [{ path: 'fencing.exec.command', env: 'HEARTH_FENCING_EXEC_COMMAND', message: `${found.problem}: fencing.method exec cannot fence without it` }];
}
