import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/program.js';
import { fenceCommandIssues, lookUpCommand } from '../../../src/config/fence-command.js';
import { loadConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

let dir: string;
let bin: string;
let other: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hearth-fence-command-'));
  bin = join(dir, 'bin');
  other = join(dir, 'other');
  await mkdir(bin);
  await mkdir(other);
  await writeFile(join(bin, 'fence-node'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await writeFile(join(bin, 'not-executable'), '#!/bin/sh\nexit 0\n', { mode: 0o644 });
  await writeFile(join(other, 'not-executable'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  await mkdir(join(bin, 'a-directory'));
  await chmod(join(bin, 'a-directory'), 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('lookUpCommand', () => {
  it('finds an absolute path as it is, and a bare name in the directories of the search path', async () => {
    expect(await lookUpCommand(join(bin, 'fence-node'), '')).toEqual({ ok: true, path: join(bin, 'fence-node') });
    expect(await lookUpCommand('fence-node', `/nonexistent:${bin}`)).toEqual({ ok: true, path: join(bin, 'fence-node') });
  });

  it('takes the first executable file on the search path, as execvp does', async () => {
    expect(await lookUpCommand('not-executable', `${bin}:${other}`)).toEqual({ ok: true, path: join(other, 'not-executable') });
  });

  it('says why a command cannot be run: missing, not found on PATH, not executable, a directory, a relative path', async () => {
    expect(await lookUpCommand(join(bin, 'missing'), bin)).toEqual({ ok: false, problem: `${join(bin, 'missing')} does not exist` });
    expect(await lookUpCommand('fence_nothing', `${bin}:${other}`)).toEqual({ ok: false, problem: `fence_nothing was not found on PATH (${bin}:${other})` });
    expect(await lookUpCommand(join(bin, 'not-executable'), '')).toEqual({
      ok: false,
      problem: `${join(bin, 'not-executable')} is not executable (no execute permission for this user)`,
    });
    expect(await lookUpCommand('not-executable', bin)).toEqual({ ok: false, problem: `${join(bin, 'not-executable')} is not executable (no execute permission for this user)` });
    expect(await lookUpCommand(join(bin, 'a-directory'), '')).toEqual({ ok: false, problem: `${join(bin, 'a-directory')} is a directory` });
    expect(await lookUpCommand('bin/fence-node', bin)).toEqual({ ok: false, problem: 'bin/fence-node must be an absolute path or a bare name found on PATH' });
  });

  it('does not look in the working directory (an empty or relative PATH entry)', async () => {
    expect((await lookUpCommand('fence-node', `:.:bin`)).ok).toBe(false);
  });
});

describe('the fence command at start', () => {
  const exec = (command: string): Record<string, string> => ({ HEARTH_FENCING_METHOD: 'exec', HEARTH_FENCING_EXEC_COMMAND: command });

  it('is a configuration error naming fencing.exec.command when it cannot be run', async () => {
    const err = await loadConfig({ env: exec(join(bin, 'missing')) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      { path: 'fencing.exec.command', env: 'HEARTH_FENCING_EXEC_COMMAND', message: `${join(bin, 'missing')} does not exist: fencing.method exec cannot fence without it` },
    ]);
  });

  it('is accepted when it can be run; not looked for with another method, nor with secretFiles skip', async () => {
    expect((await loadConfig({ env: exec(join(bin, 'fence-node')) })).fencing.exec.command).toBe(join(bin, 'fence-node'));
    expect(await loadConfig({ env: { HEARTH_FENCING_EXEC_COMMAND: join(bin, 'missing') } })).toBeDefined();
    expect(await loadConfig({ env: exec(join(bin, 'missing')), secretFiles: 'skip' })).toBeDefined();
    expect(await fenceCommandIssues({ fencing: { ...(await loadConfig({ env: {} })).fencing, method: 'exec' } })).toEqual([]);
  });

  it('makes `hearth config check` exit 2 with the option named, unless --skip-secret-files', async () => {
    let err = '';
    const io = { out: () => undefined, err: (t: string) => (err += `${t}\n`) };
    expect(await runCli(['config', 'check'], io, exec('fence_no_such_agent'))).toBe(2);
    expect(err).toContain('fencing.exec.command (HEARTH_FENCING_EXEC_COMMAND): fence_no_such_agent was not found on PATH');
    expect(await runCli(['config', 'check', '--skip-secret-files'], io, exec('fence_no_such_agent'))).toBe(0);
  });
});
