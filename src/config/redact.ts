import { optionEntries } from './load.js';
import type { Config } from './schema.js';

/** Text shown in place of a secret. */
export const REDACTED = '[REDACTED]';

/**
 * `amqp://user:pass@host/vh` → `amqp://user:[REDACTED]@host/vh`; other text unchanged. A user
 * without a password (`amqps://hearth@host/vh`, as with `amqp.passwordFile`) is no secret and
 * stays.
 */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*)(:[^/\s@]*)?@/gi, (match, scheme: string, user: string, password?: string) => {
    if (password === undefined) return match;
    return user ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`;
  });
}

/** A copy of the configuration that is safe to print or log: secrets replaced. */
export function redactConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const entry of optionEntries) {
    if (entry.spec.secret === 'none') continue;
    const parts = entry.path.split('.');
    const last = parts.pop() as string;
    const parent = parts.reduce<Record<string, unknown>>((node, p) => node[p] as Record<string, unknown>, copy);
    const value = parent[last];
    if (typeof value !== 'string' || value === '') continue;
    parent[last] = entry.spec.secret === 'url' ? redactUrl(value) : REDACTED;
  }
  return copy;
}
