/**
 * The options amqplib's `connect` gets for one attempt: timeouts, the connection name, TLS
 * material and the SASL credentials. Files are read here, on every attempt.
 */
import { readFile } from 'node:fs/promises';
import { credentials } from 'amqplib';
import { readSecretFile } from '../config/secret-file.js';
import { BackendAccessError } from '../errors.js';

/** Settings of an AMQP connection (the `amqp` config slice). */
export interface AmqpConnectionSettings {
  readonly url: string;
  readonly heartbeatSeconds: number;
  readonly connectTimeoutMs: number;
  readonly reconnectMaxDelayMs: number;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** File with the password of the URL's user; read on every connection attempt. */
  readonly passwordFile?: string;
  /** Name prefix, for the permission hint when the broker refuses a name. */
  readonly prefix?: string;
}

/**
 * amqplib socket options: connect timeout, connection name, and for `amqps://` the CA, the
 * client certificate and key read from their files (on every attempt, so rotated files are
 * used on the next connection). Credentials, in this order: the URL's user with the password
 * in `passwordFile`; the URL's user and password; with a client certificate and no password,
 * SASL EXTERNAL (the broker takes the user from the certificate); else amqplib's default
 * (guest). The user and password are percent-decoded as UTF-8 here, since amqplib decodes them
 * as Latin-1 (`unescape`).
 *
 * @throws BackendAccessError (`credentials`) when `passwordFile` holds no usable password;
 *   the file system's error when a certificate file cannot be read.
 */
export async function socketOptionsFor(settings: AmqpConnectionSettings, name: string): Promise<Record<string, unknown>> {
  const options: Record<string, unknown> = {
    timeout: settings.connectTimeoutMs,
    clientProperties: { connection_name: name },
  };
  if (settings.caFile) options.ca = [await readFile(settings.caFile)];
  if (settings.certFile) {
    options.cert = await readFile(settings.certFile);
    options.key = await readFile(settings.keyFile);
  }
  const url = new URL(settings.url);
  const user = decodeUserinfo(url.username);
  if (settings.passwordFile) {
    const read = await readSecretFile(settings.passwordFile);
    if (!read.ok) throw new BackendAccessError('amqp', 'credentials', `amqp.passwordFile ${settings.passwordFile} ${read.problem}`);
    options.credentials = credentials.plain(user, read.secret);
  } else if (url.password) {
    options.credentials = credentials.plain(user, decodeUserinfo(url.password));
  } else if (settings.certFile) {
    options.credentials = credentials.external();
  }
  return options;
}

/** Percent-decodes a URL's user or password as UTF-8; malformed escapes stay as written. */
function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Adds `heartbeat=<s>` to the URL's query unless the URL already sets it. */
export function withHeartbeat(url: string, heartbeatSeconds: number): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(heartbeatSeconds));
  return parsed.toString();
}
