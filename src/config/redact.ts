import { optionEntries } from './entries.js';
import type { Config } from './schema.js';

/** Text shown in place of a secret. */
export const REDACTED = '[REDACTED]';

/**
 * Runs of text that may hold a URL: split at whitespace, quotes and angle brackets only, so that
 * a password holding `,` `;` `(` or `]` stays inside its run and is redacted with it.
 */
const RUN_WITH_AT = /[^\s"'`<>]*@[^\s"'`<>]*/g;

/**
 * Removes the password of every `user:password@host` in `text`, with a scheme
 * (`amqp://user:pw@host/vh` → `amqp://user:[REDACTED]@host/vh`) or without one, as libraries
 * write their targets (gRPC's `dns:user:pw@host:2379` → `dns:[REDACTED]@host:2379`). A user
 * without a password (`amqps://hearth@host/vh`, as with `amqp.passwordFile`) is no secret and
 * stays; so do host ids such as `node1@rbd`, which have no `:` before the `@`.
 *
 * Within a run of text that contains `@`, everything from the first `:` of the user part up to
 * the last `@` goes. Where that takes more than a password (`dns:user:pw` loses its user too, a
 * list of URLs in one run loses what lies between the first password and the last `@`), it errs
 * towards hiding: the text is for people and logs, never parsed back.
 */
export function redactUrl(text: string): string {
  if (!text.includes('@')) return text;
  return text.replace(RUN_WITH_AT, redactRun);
}

function redactRun(run: string): string {
  const at = run.lastIndexOf('@');
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(run);
  // The user part starts after `scheme://`, else at the start of the run. A `/` does not end it:
  // a raw `/` in a password is common enough, and hiding part of a path is harmless.
  const start = scheme ? scheme[0].length : 0;
  const userinfo = run.slice(start, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return run;
  const user = userinfo.slice(0, colon);
  // `scheme://:pw@host` has no user to keep: the whole user part goes.
  const kept = scheme && user === '' ? REDACTED : `${user}:${REDACTED}`;
  return `${run.slice(0, start)}${kept}${run.slice(at)}`;
}

/** A copy of the configuration that is safe to print or log: secrets replaced. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const entry of optionEntries) {
    const parts = entry.path.split('.');
    const last = parts.pop() as string;
    const parent = parts.reduce<Record<string, unknown>>((node, p) => node[p] as Record<string, unknown>, copy);
    const value = parent[last];
    if (entry.spec.secret === 'value') {
      if (typeof value === 'string' && value !== '') parent[last] = REDACTED;
    } else if (typeof value === 'string') {
      // Any option may hold a URL by mistake (a password pasted into the wrong one): redact them all.
      parent[last] = redactUrl(value);
    } else if (Array.isArray(value)) {
      parent[last] = value.map((v: unknown) => (typeof v === 'string' ? redactUrl(v) : v));
    }
  }
  return copy;
}
