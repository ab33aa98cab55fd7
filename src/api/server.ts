import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { parseListen } from '../config/rules.js';
import { CoordinatorError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { type ApiAuthOptions, registerAuth } from './auth.js';
import { faultBody, HttpError, toFault } from './faults.js';
import { atLeast, formatVersion, type Microversion, MIN_VERSION, negotiate, VERSION_HEADER } from './microversion.js';
import { registerVersionRoutes } from './versions.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The negotiated volume API microversion of this request. */
    apiVersion: Microversion;
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
}

/** A plugin that adds routes: each API concern exports one. */
export type RouteModule = (app: FastifyInstance) => void;

/**
 * The Cinder-compatible REST API: microversion negotiation (`OpenStack-API-Version`),
 * Cinder's fault bodies for every error (malformed JSON, oversized bodies, unknown paths and
 * typed errors alike), authentication (see {@link registerAuth}), and the version document at
 * `/` and `/v3/`, which stays public as in Cinder, so clients can discover versions first.
 */
export class ApiServer {
  readonly app: FastifyInstance;
  private closing: Promise<void> | undefined;

  constructor(options: ApiServerOptions) {
    this.app = Fastify({ bodyLimit: options.maxBodyBytes, logger: false, return503OnClosing: true });
    const logger = options.logger;
    // Authentication runs before version negotiation, so an unauthenticated caller learns nothing.
    registerAuth(this.app, options.auth ?? { mode: 'noauth' }, logger);
    this.app.decorateRequest('apiVersion', null as unknown as Microversion);
    this.app.addHook('onRequest', async (req, reply) => {
      req.apiVersion = MIN_VERSION;
      if (req.routeOptions.config.skipVersion) return;
      const version = negotiate(req.headers[VERSION_HEADER]);
      req.apiVersion = version;
      void reply.header('OpenStack-API-Version', `volume ${formatVersion(version)}`).header('Vary', VERSION_HEADER);
      const min = req.routeOptions.config.minVersion;
      if (min !== undefined && !atLeast(version, min)) {
        throw new HttpError(404, `The resource could not be found at microversion ${formatVersion(version)} (needs ${min} or later).`, 'NOT_FOUND');
      }
    });
    this.app.setNotFoundHandler(async (req, reply) =>
      reply.code(404).send(faultBody(404, `The resource could not be found: ${req.method} ${req.url.split('?')[0]}`)),
    );
    this.app.setErrorHandler(async (err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply) => {
      const { status, message } = fastifyFault(err) ?? toFault(err);
      if (status >= 500) logger.error({ err, method: req.method, url: req.url }, 'API request failed');
      else logger.debug({ method: req.method, url: req.url, status, reason: message }, 'API request refused');
      return reply.code(status).send(faultBody(status, message));
    });
    registerVersionRoutes(this.app);
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

/** Maps fastify's own request errors (bad JSON, too large, wrong media type) to faults. */
function fastifyFault(err: FastifyError | Error): { status: number; message: string } | undefined {
  if (err instanceof CoordinatorError || !('code' in err) || typeof err.code !== 'string') return undefined;
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: 'Malformed request body: the body is not valid JSON.' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: 'Request is too large.' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: 'Unsupported Content-Type: send application/json.' };
    default: {
      const status = err.statusCode;
      return status !== undefined && status >= 400 && status < 500 ? { status, message: err.message } : undefined;
    }
  }
}
