import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config/rules.js';
import type { Config } from '../config/schema.js';
import { CoordinatorError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createLimitedServer, type ListenerLimits, writeClientError } from '../ops/listener-limits.js';
import { type ApiAuthOptions, registerAuth } from './auth.js';
import { registerBodyParsers } from './body.js';
import { faultBody, HttpError, toFault } from './faults.js';
import { defaultPublicUrl, HostCheck, PublicLinks } from './host-check.js';
import { atLeast, formatVersion, type Microversion, MIN_VERSION, negotiate, VERSION_HEADER } from './microversion.js';
import { previewText } from '../preview.js';
import { registerVersionRoutes } from './versions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The negotiated volume API microversion of this request. */
    apiVersion: Microversion;
    /** Base URL for links in this request's answer (`api.publicUrl`; never the Host header). */
    publicBase: string;
  }
  interface FastifyContextConfig {
    /** Lowest microversion the route exists at; below it the route answers 404, as Cinder. */
    minVersion?: string;
    /** Version documents answer without negotiation. */
    skipVersion?: boolean;
  }
}

/** Options of {@link createApiServer}. */
export interface ApiServerOptions {
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** How requests are authenticated; Cinder's noauth when omitted (the config rules decide where that is allowed). */
  readonly auth?: ApiAuthOptions;
  /** Base URL of links in answers. Default: `http://127.0.0.1:8776`. */
  readonly publicUrl?: string;
  /** Host values accepted in noauth mode besides the loopback names (see {@link HostCheck}). */
  readonly allowedHosts?: readonly string[];
  /** Proxies whose X-Forwarded-Proto/Host build links (see {@link PublicLinks}). */
  readonly trustedProxies?: readonly string[];
  /** Timeouts and the connection limit of the listener. Default: `api.*`'s defaults. */
  readonly limits?: ListenerLimits;
  /**
   * The highest microversion to serve now: below `MAX_VERSION` while a live worker does not
   * read the message version a newer one needs (the skew policy). Default: `MAX_VERSION`.
   */
  readonly maxVersion?: () => Microversion;
}

/** The {@link ApiServerOptions} that come from `api.*` options (all but the logger and auth). */
export function apiServerOptions(api: Config['api']): Omit<ApiServerOptions, 'logger' | 'auth'> {
  return {
    maxBodyBytes: api.maxBodyBytes,
    publicUrl: defaultPublicUrl(api.publicUrl, api.listen),
    allowedHosts: api.allowedHosts,
    trustedProxies: api.trustedProxies,
    limits: { requestTimeoutMs: api.requestTimeoutMs, headersTimeoutMs: api.headersTimeoutMs, keepAliveTimeoutMs: api.keepAliveTimeoutMs, maxConnections: api.maxConnections },
  };
}

const DEFAULT_LIMITS: ListenerLimits = { requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000, maxConnections: 512 };

/** Path parameters longer than this are no id hearth has: 404 (Cinder ids are at most 255 characters). */
const MAX_PARAM_CHARS = 255;

/** A refused request whose body may still be arriving: the connection is closed after the answer. */
const CLOSE_AFTER = new Set([401, 403, 408, 413, 431]);

/** A URL path for a message: without the query, cut, and escaped (see {@link previewText}). */
export function shownPath(url: string): string {
  return previewText(url.split('?')[0] ?? url, 120);
}

/**
 * The Cinder-compatible REST API: microversion negotiation (`OpenStack-API-Version`),
 * Cinder's fault bodies for every error (malformed JSON, oversized bodies, bad URLs, unknown
 * paths, requests Node could not parse, typed errors alike), authentication (see
 * {@link registerAuth}), and the version document at `/` and `/v3/`, which stays public as in
 * Cinder, so clients can discover versions first.
 *
 * Hardening, in the order a request meets it: the listener's timeouts and connection limit
 * ({@link createLimitedServer}); in noauth mode the Host and Origin checks ({@link HostCheck});
 * authentication; version negotiation; the body parsers (JSON of bounded depth, see
 * `body.ts`); in noauth mode the check that the URL's project is the token's (Cinder's
 * "Malformed request url"). Every answer carries a request id (`x-openstack-request-id`, as
 * Cinder); a 5xx says which dependency failed in fixed words plus that id, and the log line
 * with the same id holds the detail. A refused request whose body was not read gets
 * `Connection: close`, so a client cannot hold the socket by declaring a large body.
 */
export class ApiServer {
  readonly app: FastifyInstance;
  private closing: Promise<void> | undefined;

  constructor(options: ApiServerOptions) {
    const logger = options.logger;
    const limits = options.limits ?? DEFAULT_LIMITS;
    this.app = Fastify({
      bodyLimit: options.maxBodyBytes,
      logger: false,
      return503OnClosing: false,
      routerOptions: { maxParamLength: MAX_PARAM_CHARS },
      requestIdHeader: false,
      genReqId: () => `req-${randomUUID()}`,
      serverFactory: (handler) => createLimitedServer(limits, handler),
      clientErrorHandler: (err, socket) =>
        writeClientError(err, socket, (status) => ({ status, contentType: 'application/json', body: JSON.stringify(faultBody(status, clientErrorMessage(status))) })),
      frameworkErrors: (err, req, reply) => {
        const { status, message } = fastifyFault(err) ?? { status: 400, message: 'Malformed request url.' };
        logger.debug({ requestId: req.id, method: req.method, status, reason: err.code }, 'API request refused');
        const raw = reply as unknown as FastifyReply;
        void raw.code(status).header('x-openstack-request-id', req.id).header('Connection', 'close').send(faultBody(status, message));
      },
    });
    const links = new PublicLinks(options.publicUrl ?? 'http://127.0.0.1:8776', options.trustedProxies);
    const auth = options.auth ?? { mode: 'noauth' };
    this.app.decorateRequest('publicBase', '');
    this.app.addHook('onRequest', async (req, reply) => {
      void reply.header('x-openstack-request-id', req.id);
      if (this.closing) throw new HttpError(503, 'The service is shutting down.', 'CLOSED');
      req.publicBase = links.baseFor(req);
    });
    // DNS rebinding: in noauth mode every caller is admin, so only names no web page can rebind may reach it.
    if (auth.mode === 'noauth') registerHostCheck(this.app, new HostCheck(options.allowedHosts));
    // Authentication runs before version negotiation, so an unauthenticated caller learns nothing.
    registerAuth(this.app, auth, logger);
    this.app.decorateRequest('apiVersion', null as unknown as Microversion);
    this.app.addHook('onRequest', async (req, reply) => {
      req.apiVersion = MIN_VERSION;
      if (req.routeOptions.config.skipVersion) return;
      const version = negotiate(req.headers[VERSION_HEADER], options.maxVersion?.());
      req.apiVersion = version;
      void reply.header('OpenStack-API-Version', `volume ${formatVersion(version)}`).header('Vary', VERSION_HEADER);
      const min = req.routeOptions.config.minVersion;
      if (min !== undefined && !atLeast(version, min)) {
        throw new HttpError(404, `The resource could not be found at microversion ${formatVersion(version)} (needs ${min} or later).`, 'NOT_FOUND');
      }
    });
    registerBodyParsers(this.app);
    // Cinder's Resource: with noauth, a token's project must be the URL's (a token names a project, the URL another).
    this.app.addHook('preHandler', async (req) => {
      const project = (req.params as Record<string, unknown> | undefined)?.project_id;
      if (req.auth?.mode === 'noauth' && typeof project === 'string' && project !== req.auth.projectId) throw new HttpError(400, 'Malformed request url');
    });
    this.app.addHook('onSend', async (req, reply) => {
      if (CLOSE_AFTER.has(reply.statusCode) || !req.raw.complete) void reply.header('Connection', 'close');
    });
    this.app.setNotFoundHandler(async (req, reply) => reply.code(404).send(faultBody(404, `The resource could not be found: ${req.method} ${shownPath(req.url)}`)));
    this.app.setErrorHandler(async (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) => {
      const { status, message } = fastifyFault(err) ?? toFault(err, req.id);
      if (status >= 500) logger.error({ err, requestId: req.id, method: req.method, path: shownPath(req.url) }, 'API request failed');
      else logger.debug({ requestId: req.id, method: req.method, path: shownPath(req.url), status, reason: message }, 'API request refused');
      return reply.code(status).send(faultBody(status, message));
    });
    registerVersionRoutes(this.app, options.maxVersion);
  }

  /** Adds the routes of one API concern. */
  register(module: RouteModule): void {
    module(this.app);
  }

  /** Listens on `host:port`; resolves with the bound address. */
  async listen(listen: string): Promise<AddressInfo> {
    const { host, port } = parseListen(listen);
    await this.app.listen({ host, port });
    return this.app.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    this.closing ??= this.app.close();
    return this.closing;
  }
}

/** A plugin that adds routes: each API concern exports one. */
export type RouteModule = (app: FastifyInstance) => void;

function registerHostCheck(app: FastifyInstance, check: HostCheck): void {
  app.addHook('onRequest', async (req) => {
    const localPort = req.socket.localPort;
    if (!check.accepts(req.headers.host, localPort)) {
      throw new HttpError(
        400,
        "Invalid Host header: in noauth mode the API answers only requests addressed to this machine's loopback name (localhost, 127.0.0.1 or [::1]) and port, or to api.allowedHosts; other names could be a web page rebinding its DNS name to this machine.",
      );
    }
    const origin = req.headers.origin;
    if (!check.acceptsOrigin(origin, localPort)) {
      throw new HttpError(403, 'Cross-origin requests are not accepted in noauth mode: a web page must not drive an API where every caller is admin.', 'INVALID_INPUT');
    }
  });
}

function clientErrorMessage(status: number): string {
  if (status === 408) return 'The request was not received in time.';
  if (status === 431) return 'The request headers are too large.';
  return 'Malformed request.';
}

/** Maps fastify's own request errors (bad JSON, too large, bad URL, over-long parameters) to faults. */
function fastifyFault(err: FastifyError | Error): { status: number; message: string } | undefined {
  if (err instanceof CoordinatorError || !('code' in err) || typeof err.code !== 'string') return undefined;
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: 'Malformed request body: the body is not valid JSON.' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: 'Request is too large.' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: 'Unsupported Content-Type' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, message: 'Malformed request: the Content-Length does not match the body.' };
    case 'FST_ERR_BAD_URL':
      return { status: 400, message: 'Malformed request url: it is not validly percent-encoded.' };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { status: 404, message: 'The resource could not be found.' };
    default: {
      // Any other 4xx of fastify's: a fixed message, since fastify's own may quote the request.
      const status = 'statusCode' in err ? err.statusCode : undefined;
      return typeof status === 'number' && status >= 400 && status < 500 ? { status, message: 'Malformed request.' } : undefined;
    }
  }
}
