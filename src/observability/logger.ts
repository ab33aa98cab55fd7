import { pino, stdSerializers, type DestinationStream, type Level, type LevelWithSilent } from 'pino';
import { REDACTED, redactUrl } from '../config/redact.js';

/** The logging port: the few pino methods hearth's modules use. */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  trace(obj: unknown, msg?: string): void;
  debug(obj: unknown, msg?: string): void;
  info(obj: unknown, msg?: string): void;
  warn(obj: unknown, msg?: string): void;
  error(obj: unknown, msg?: string): void;
  fatal(obj: unknown, msg?: string): void;
}

/** Fields that hold a secret wherever they appear (two levels deep). */
const SECRET_KEYS = ['password', 'token', 'secret', 'credentials', 'authorization', 'apiToken', 'privateKey'];
/** Fields that hold a URL whose user-info must go. */
const URL_KEYS = ['url', 'amqpUrl', 'endpoint', 'endpoints'];

const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
  ...URL_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
  'req.headers.authorization',
  'req.headers["x-auth-token"]',
  'req.headers.cookie',
];

function censor(value: unknown, path: string[]): unknown {
  const key = path[path.length - 1] ?? '';
  if (URL_KEYS.includes(key)) {
    if (typeof value === 'string') return redactUrl(value);
    if (Array.isArray(value)) return value.map((v: unknown) => (typeof v === 'string' ? redactUrl(v) : v));
    return value;
  }
  return value === undefined || value === '' ? value : REDACTED;
}

function serializeError(err: Error): Record<string, unknown> {
  const out = stdSerializers.err(err) as unknown as Record<string, unknown>;
  for (const key of ['message', 'stack'] as const) {
    if (typeof out[key] === 'string') out[key] = redactUrl(out[key]);
  }
  return out;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** Fields on every line, e.g. `{ host, cluster }`. */
  readonly base?: Record<string, unknown>;
  /** Where lines go; standard output by default. */
  readonly destination?: DestinationStream;
}

/**
 * Creates the process's JSON logger. Secrets (passwords, tokens, credentials, authorization
 * headers) are replaced by `[REDACTED]`, and user:password in URLs — in fields, messages and
 * error texts — is removed before a line is written.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      redact: { paths: REDACT_PATHS, censor },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label: string) => ({ level: label }) },
      hooks: {
        logMethod(args: unknown[], method: (...a: unknown[]) => void, _level: number) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactUrl(a) : a)));
        },
      },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that writes nothing (tests, one-shot commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Level };
