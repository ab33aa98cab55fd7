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
import { effectiveAuthMode } from './api-auth.js';
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

/** Shortest API token accepted: shorter ones are guessable. */
export const MIN_TOKEN_LENGTH = 16;

/**
 * The API token in a token file's text: surrounding whitespace (the trailing newline) is
 * ignored; the rest must be at least {@link MIN_TOKEN_LENGTH} printable ASCII characters with no
 * spaces. `problem` never quotes the token. `hearth serve` and `hearth config check` both use
 * this rule, so a file one refuses the other refuses too.
 */
export function parseApiToken(text: string): { readonly ok: true; readonly token: string } | { readonly ok: false; readonly problem: string } {
  const token = text.trim();
  if (token.length < MIN_TOKEN_LENGTH) return { ok: false, problem: `must hold a token of at least ${MIN_TOKEN_LENGTH} characters` };
  if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, problem: 'must hold a token of printable ASCII characters with no spaces' };
  return { ok: true, token };
}

/** The token files the configuration uses: the API's, in token mode with the api role only. */
function tokenFilesOf(config: Pick<Config, 'api' | 'roles'>): { path: string; env: string; file: string }[] {
  if (!config.roles.includes('api') || effectiveAuthMode(config.api) !== 'token') return [];
  return [
    { path: 'api.tokenFile', env: 'HEARTH_API_TOKEN_FILE', file: config.api.tokenFile },
    { path: 'api.readerTokenFile', env: 'HEARTH_API_READER_TOKEN_FILE', file: config.api.readerTokenFile },
  ].filter((f) => f.file !== '');
}

/** The secret files the configuration names: option path, environment name and file. */
export function secretFilesOf(config: Pick<Config, 'etcd' | 'amqp'>): { path: string; env: string; file: string }[] {
  return [
    { path: 'etcd.passwordFile', env: 'HEARTH_ETCD_PASSWORD_FILE', file: config.etcd.passwordFile },
    { path: 'amqp.passwordFile', env: 'HEARTH_AMQP_PASSWORD_FILE', file: config.amqp.passwordFile },
  ].filter((f) => f.file !== '');
}

/**
 * Reads every secret file the configuration names — password files and, where the API runs with
 * tokens, the token files — and reports those that are unusable, as `hearth serve` would.
 */
export async function secretFileIssues(config: Pick<Config, 'etcd' | 'amqp' | 'api' | 'roles'>): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const { path, env, file } of secretFilesOf(config)) {
    const read = await readSecretFile(file);
    if (!read.ok) issues.push({ path, env, message: `${file} ${read.problem}` });
  }
  for (const { path, env, file } of tokenFilesOf(config)) {
    let text: string;
    try {
      const contents = await readFile(file);
      if (contents.length > MAX_SECRET_FILE_BYTES) {
        issues.push({ path, env, message: `${file} is larger than ${MAX_SECRET_FILE_BYTES} bytes; is it the right file?` });
        continue;
      }
      text = contents.toString('utf8');
    } catch (err) {
      issues.push({ path, env, message: `${file} cannot be read (${errnoOf(err)})` });
      continue;
    }
    const token = parseApiToken(text);
    if (!token.ok) issues.push({ path, env, message: `${file} ${token.problem}` });
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
export function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return messageOf(err).slice(0, 80);
  return ERRNO_TEXT[code] ? `${ERRNO_TEXT[code]}, ${code}` : code;
}
