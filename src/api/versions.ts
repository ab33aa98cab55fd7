import type { FastifyInstance, FastifyRequest } from 'fastify';
import { formatVersion, MAX_VERSION, type Microversion, MIN_VERSION } from './microversion.js';

/** When hearth's v3 API last changed, as Cinder reports `updated`. */
const UPDATED = '2023-08-31T00:00:00Z';

/** The version document in Cinder's shape, with its self link under `api.publicUrl` (never the Host header). */
export function versionDocument(req: FastifyRequest, max: Microversion = MAX_VERSION): { versions: unknown[] } {
  return {
    versions: [
      {
        id: 'v3.0',
        status: 'CURRENT',
        version: formatVersion(max),
        min_version: formatVersion(MIN_VERSION),
        updated: UPDATED,
        links: [
          { rel: 'describedby', type: 'text/html', href: 'https://docs.openstack.org/' },
          { rel: 'self', href: `${req.publicBase}/v3/` },
        ],
        'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.volume+json;version=3' }],
      },
    ],
  };
}

/**
 * `GET /` (300 Multiple Choices, as Cinder) and `GET /v3/` (200). Public, as Cinder's version
 * documents are: python-cinderclient reads them before it sends anything authenticated.
 */
export function registerVersionRoutes(app: FastifyInstance, max: () => Microversion = () => MAX_VERSION): void {
  const config = { skipVersion: true, public: true };
  app.get('/', { config }, async (req, reply) => reply.code(300).send(versionDocument(req, max())));
  app.get('/v3', { config }, async (req) => versionDocument(req, max()));
  app.get('/v3/', { config }, async (req) => versionDocument(req, max()));
}
