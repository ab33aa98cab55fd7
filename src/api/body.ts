import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidInputError } from '../errors.js';

/** Deepest nesting of objects and arrays a request body may have; Cinder's bodies need 3. */
export const MAX_BODY_DEPTH = 32;

/** The media types Cinder reads as JSON (cinder/api/openstack/wsgi.py `SUPPORTED_CONTENT_TYPES`). */
export const JSON_MEDIA_TYPES = ['application/json', 'application/vnd.openstack.volume+json'] as const;

/**
 * Refuses JSON text nested deeper than `maxDepth`, before it is parsed: one pass over the text
 * that counts brackets outside strings, with no recursion, so a body of 10,000 `[` costs a scan
 * and a 400 instead of a stack overflow in a validator later.
 *
 * @throws InvalidInputError (400) naming the limit.
 */
export function checkJsonDepth(text: string, maxDepth = MAX_BODY_DEPTH): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw new InvalidInputError(`Malformed request body: it is nested more than ${maxDepth} levels deep.`);
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
}

/**
 * True when a parsed body has a key named `__proto__` at any depth. `JSON.parse` makes it an
 * ordinary own property, but any later copy by assignment (a validator building its output
 * object) would set the copy's prototype instead. The depth is already bounded, so recursion
 * is safe here.
 */
export function hasProtoKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasProtoKey);
  if (Object.prototype.hasOwnProperty.call(value, '__proto__')) return true;
  return Object.values(value).some(hasProtoKey);
}

/**
 * Parses a JSON request body as Cinder reads it: an empty body is no body (a DELETE sent with
 * `Content-Type: application/json` and nothing else is fine); anything else must be JSON of
 * bounded depth with no `__proto__` key.
 *
 * @throws InvalidInputError (400) for malformed, too deep or poisoned JSON.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  checkJsonDepth(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new InvalidInputError('Malformed request body: the body is not valid JSON.');
  }
  if (hasProtoKey(parsed)) throw new InvalidInputError("Malformed request body: the key '__proto__' is not allowed.");
  return parsed;
}

/** A media type fastify can parse (`type/subtype`, then parameters). */
const MEDIA_TYPE = /^\s*[\w!#$%&'*+.^`|~-]+\/[\w!#$%&'*+.^`|~-]+\s*(;.*)?$/;

/**
 * Replaces fastify's body parsers with Cinder's reading of bodies: `application/json` and
 * `application/vnd.openstack.volume+json` (any parameters, e.g. `charset`) are parsed by
 * {@link parseJsonBody}; a body of any other type is read (within the body limit) and ignored,
 * as Cinder ignores a body whose Content-Type it does not support or cannot parse — the request
 * then goes on as one without a body, and a route that needs one says so with a 400.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  // Cinder reads a Content-Type it cannot parse as none at all; fastify would answer 415.
  app.addHook('onRequest', async (req) => {
    const type = req.headers['content-type'];
    if (type !== undefined && !MEDIA_TYPE.test(type)) delete req.headers['content-type'];
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser([...JSON_MEDIA_TYPES], { parseAs: 'string' }, (_req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    try {
      done(null, parseJsonBody(typeof body === 'string' ? body : body.toString('utf8')));
    } catch (err) {
      done(err as Error);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req: FastifyRequest, _body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
    done(null, undefined);
  });
}
