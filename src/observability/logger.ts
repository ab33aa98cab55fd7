import { pino, stdSerializers, type DestinationStream, type Level, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
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
  /** Whether a line at `level` would be written: hot paths ask before they build what they would log. */
  isLevelEnabled(level: Level): boolean;
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

/** How deep {@link redactStrings} looks into a log line's fields. */
const REDACT_DEPTH = 5;

/**
 * `value` with `user:password@` removed from every string in it (see {@link redactUrl}), to
 * `depth` levels of plain objects and arrays; unchanged parts are shared, not copied. Errors
 * are left to {@link serializeError}; class instances other than plain objects are left alone.
 */
export function redactStrings(value: unknown, depth = REDACT_DEPTH): unknown {
  if (typeof value === 'string') return value.includes('@') ? redactUrl(value) : value;
  if (depth <= 0 || typeof value !== 'object' || value === null || value instanceof Error) return value;
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v: unknown) => {
      const r = redactStrings(v, depth - 1);
      changed ||= r !== v;
      return r;
    });
    return changed ? out : value;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = redactStrings(v, depth - 1);
    if (r !== v) {
      out ??= { ...(value as Record<string, unknown>) };
      out[k] = r;
    }
  }
  return out ?? value;
}

function serializeError(err: Error): Record<string, unknown> {
  // A library's error can carry its target in any field (gRPC's `details`, a cause's message).
  // The serializer's objects have their own prototype; as JSON (what pino writes anyway) they are plain.
  const plain = JSON.parse(JSON.stringify(stdSerializers.err(err))) as Record<string, unknown>;
  return redactStrings(plain, REDACT_DEPTH + 3) as Record<string, unknown>;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level: LevelWithSilent;
  /** Fields on every line, e.g. `{ host, cluster }`. */
  readonly base?: Record<string, unknown>;
  /** Where lines go; standard output by default. */
  readonly destination?: DestinationStream;
  /** `json` (the default): one JSON object per line; `pretty`: pino-pretty's human-readable lines. */
  readonly format?: LogFormat;
  /** Pretty lines in colour; by default when they go to standard output and that is a terminal. */
  readonly colorize?: boolean;
}

/** How log lines look on the wire. */
export type LogFormat = 'json' | 'pretty';

/**
 * The format `log.format` asks for: `auto` is pretty when standard output is a terminal (a
 * person runs `make run`) and JSON otherwise (a collector reads it). Pure.
 */
export function resolveLogFormat(setting: 'auto' | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  if (setting !== 'auto') return setting;
  return stdoutIsTerminal ? 'pretty' : 'json';
}

/** Fields every line carries that a person at a terminal does not need on each line. */
const PRETTY_IGNORED = 'pid,hostname,host,cluster,component';

/**
 * pino-pretty as pino's destination, in this thread (no transport worker): lines are redacted
 * by pino before they get here. Synchronous, so a line is on the terminal before the process
 * goes on (a person watches it; a collector gets JSON instead).
 */
function prettyDestination(options: LoggerOptions): DestinationStream {
  const colorize = options.colorize ?? (options.destination === undefined && process.stdout.isTTY === true);
  // Loaded only here: a process that logs JSON (every deployment) never holds pino-pretty and
  // its dependencies in memory. A synchronous require, as createLogger is synchronous.
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pinoPretty({
    colorize,
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: PRETTY_IGNORED,
    messageFormat: '{if component}{component}: {end}{msg}',
    singleLine: true,
    ...(options.destination ? { destination: options.destination } : {}),
  });
}

/**
 * Creates the process's logger: JSON lines, or pretty ones with `format: 'pretty'`. Secrets (passwords, tokens, credentials, authorization
 * headers) are replaced by `[REDACTED]`, and user:password in URLs — with or without a scheme,
 * in messages, in any string field, and in errors and their causes — is removed before a line
 * is written.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.base },
      redact: { paths: REDACT_PATHS, censor },
      serializers: { err: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label: string) => ({ level: label }),
        log: (object: Record<string, unknown>) => redactStrings(object) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args: unknown[], method: (...a: unknown[]) => void, _level: number) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? redactUrl(a) : a)));
        },
      },
    },
    options.format === 'pretty' ? prettyDestination(options) : (options.destination ?? pino.destination({ fd: 1, sync: false })),
  );
}

/** A logger that writes nothing (tests, one-shot commands). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Level };
