import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuthMode } from '../config/api-auth.js';
import type { Logger } from '../observability/logger.js';
import { faultBody } from './faults.js';
import { tokenDigest } from './token-file.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request, as the auth hook established it. */
    auth: RequestAuth;
  }
  interface FastifyContextConfig {
    /** The route answers without authentication (the version documents). */
    public?: boolean;
  }
}

/** What a caller may do: `admin` everything, `reader` only GET and HEAD. */
export type ApiRole = 'admin' | 'reader';

/** The caller of one request. */
export interface RequestAuth {
  /** `public` for routes that need no authentication. */
  readonly mode: AuthMode | 'public';
  /** From `X-Auth-Token: user:project` in noauth mode; `token` or `reader-token` in token mode. */
  readonly userId: string;
  /** The project named by a noauth token; undefined in token mode (any project in the path). */
  readonly projectId: string | undefined;
  readonly role: ApiRole;
}

/** Where the digest of an accepted token comes from; {@link TokenFile} is the real one. */
export interface TokenSource {
  digest(): Promise<Buffer>;
}

/** How the API authenticates requests. */
export type ApiAuthOptions =
  | { readonly mode: 'noauth' }
  | { readonly mode: 'token'; readonly admin: TokenSource; readonly reader?: TokenSource | undefined };

const PUBLIC: RequestAuth = { mode: 'public', userId: 'anonymous', projectId: undefined, role: 'reader' };
const READ_METHODS = new Set(['GET', 'HEAD']);
const REALM = 'Bearer realm="hearth"';

/**
 * Adds the authentication hook to the API. It runs first on every request (before version
 * negotiation, so an unauthenticated caller learns nothing about the API) except on routes
 * marked `public`.
 *
 * - `noauth` is Cinder's NoAuthMiddleware: `X-Auth-Token: user:project` names the caller and
 *   every request is admin. A request with no token is `admin:admin` (Cinder would first answer
 *   it with a 204 carrying such a token; the outcome is the same).
 * - `token`: the token is taken from `Authorization: Bearer <token>`, else from
 *   `X-Auth-Token` (what python-cinderclient's `admin_token` auth sends). Its SHA-256 digest is
 *   compared with the accepted tokens' digests by `timingSafeEqual`, so neither the length nor
 *   the content of a token leaks through response times. No token or a wrong one: 401 with
 *   `WWW-Authenticate: Bearer`; the read-only token on anything but GET or HEAD: 403.
 */
export function registerAuth(app: FastifyInstance, options: ApiAuthOptions, logger: Logger): void {
  app.decorateRequest('auth', null as unknown as RequestAuth);
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.public) {
      req.auth = PUBLIC;
      return;
    }
    if (options.mode === 'noauth') {
      req.auth = noauthCaller(header(req, 'x-auth-token'));
      return;
    }
    const presented = bearerToken(header(req, 'authorization')) ?? header(req, 'x-auth-token');
    if (presented === undefined || presented === '') {
      return refuse(reply, 401, 'Authentication required: send the API token as X-Auth-Token or as Authorization: Bearer.', REALM);
    }
    const role = await matchToken(presented, options);
    if (role === undefined) {
      logger.info({ method: req.method, path: pathOf(req), remote: req.ip }, 'API request with a wrong token refused');
      return refuse(reply, 401, 'The request you have made requires authentication: the token was not accepted.', `${REALM}, error="invalid_token"`);
    }
    if (role === 'reader' && !READ_METHODS.has(req.method)) {
      return refuse(
        reply,
        403,
        `Policy doesn't allow ${req.method} ${pathOf(req)} to be performed: the token is read-only.`,
        `${REALM}, error="insufficient_scope"`,
      );
    }
    req.auth = { mode: 'token', userId: role === 'admin' ? 'token' : 'reader-token', projectId: undefined, role };
  });
}

/** Cinder's noauth: `user:project`, the project defaulting to the user; no token is admin:admin. */
export function noauthCaller(token: string | undefined): RequestAuth {
  if (token === undefined || token.trim() === '') return { mode: 'noauth', userId: 'admin', projectId: 'admin', role: 'admin' };
  const t = token.trim();
  const i = t.indexOf(':');
  const userId = i < 0 ? t : t.slice(0, i);
  const project = i < 0 ? '' : t.slice(i + 1);
  return { mode: 'noauth', userId, projectId: project === '' ? userId : project, role: 'admin' };
}

/** The token of an `Authorization: Bearer <token>` header; undefined for other schemes. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  // A plain split rather than a regular expression: nothing to backtrack over in a hostile header.
  const value = authorization.trim();
  const space = value.indexOf(' ');
  if (space < 0 || value.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  return value.slice(space + 1).trim();
}

async function matchToken(presented: string, options: Extract<ApiAuthOptions, { mode: 'token' }>): Promise<ApiRole | undefined> {
  const digest = tokenDigest(presented);
  const admin = timingSafeEqual(digest, await options.admin.digest());
  // Compare against the reader token even after an admin match, so timing says nothing about which matched.
  const reader = options.reader ? timingSafeEqual(digest, await options.reader.digest()) : false;
  if (admin) return 'admin';
  return reader ? 'reader' : undefined;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function pathOf(req: FastifyRequest): string {
  return req.url.split('?')[0] ?? req.url;
}

function refuse(reply: FastifyReply, status: 401 | 403, message: string, challenge: string): FastifyReply {
  return reply.code(status).header('WWW-Authenticate', challenge).send(faultBody(status, message));
}
