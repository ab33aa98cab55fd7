/**
 * Secrets kept in files, as Kubernetes mounts a Secret: `etcd.passwordFile`,
 * `amqp.passwordFile`. A file keeps the secret out of the process environment, which child
 * processes inherit and `/proc/<pid>/environ` shows.
 *
 * Errors name the file and the option, never what the file holds.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type ConfigIssue, messageOf } from '../errors.js';
import type { Config } from './schema.js';

/** Larger files are refused: a password is short, so a big file is the wrong file. */
export const MAX_SECRET_FILE_BYTES = 4_096;

/** The outcome of reading a secret file. */
export type SecretRead = { readonly ok: true; readonly secret: string } | { readonly ok: false; readonly problem: string };

/**
 * The secret in a file's contents: a trailing newline (`echo pw > file`, `\r\n` too) is
 * dropped; anything else, spaces included, is part of the secret.
 */
export function parseSecret(contents: Buffer): SecretRead {
  if (contents.length > MAX_SECRET_FILE_BYTES) return { ok: false, problem: `is larger than ${MAX_SECRET_FILE_BYTES} bytes; is it the right file?` };
  const secret = contents.toString('utf8').replace(/\r?\n$/, '');
  if (secret === '') return { ok: false, problem: 'is empty' };
  if (/[\r\n]/.test(secret)) return { ok: false, problem: 'holds more than one line; it must hold the secret alone' };
  return { ok: true, secret };
}

/** Reads the secret in `path`; `problem` says what is wrong without quoting the file. */
export async function readSecretFile(path: string): Promise<SecretRead> {
  try {
    return parseSecret(await readFile(path));
  } catch (err) {
    return { ok: false, problem: `cannot be read (${errnoOf(err)})` };
  }
}

/** {@link readSecretFile} for callers that must be synchronous (the etcd client's constructor). */
export function readSecretFileSync(path: string): SecretRead {
  try {
    return parseSecret(readFileSync(path));
  } catch (err) {
    return { ok: false, problem: `cannot be read (${errnoOf(err)})` };
  }
}

/** The secret files the configuration names: option path, environment name and file. */
export function secretFilesOf(config: Pick<Config, 'etcd' | 'amqp'>): { path: string; env: string; file: string }[] {
  return [
    { path: 'etcd.passwordFile', env: 'HEARTH_ETCD_PASSWORD_FILE', file: config.etcd.passwordFile },
    { path: 'amqp.passwordFile', env: 'HEARTH_AMQP_PASSWORD_FILE', file: config.amqp.passwordFile },
  ].filter((f) => f.file !== '');
}

/** Reads every secret file the configuration names and reports those that are unusable. */
export async function secretFileIssues(config: Pick<Config, 'etcd' | 'amqp'>): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const { path, env, file } of secretFilesOf(config)) {
    const read = await readSecretFile(file);
    if (!read.ok) issues.push({ path, env, message: `${file} ${read.problem}` });
  }
  return issues;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent is not a directory',
};

/** A short reason from the error code only, so that no library text (which might quote data) leaks. */
function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return messageOf(err).slice(0, 80);
  return ERRNO_TEXT[code] ? `${ERRNO_TEXT[code]}, ${code}` : code;
}
