import type { FastifyInstance } from 'fastify';
import type { Membership } from '../membership/membership.js';
import type { Logger } from '../observability/logger.js';
import type { StateStore } from '../state/state-store.js';
import { HttpError } from './faults.js';
import { previewText } from '../preview.js';
import type { RouteModule } from './server.js';

/** What removing a service reads and changes. */
export interface ServiceRemovalOptions {
  readonly membership: Pick<Membership, 'removeService'>;
  readonly store: Pick<StateStore, 'listOps'>;
  readonly logger: Logger;
}

/** How many op ids a refusal names. */
const NAMED_OPS = 5;

/**
 * `DELETE /hearth/v1/services/{binary}/{host}`: removes the durable record of a service that is
 * down — Cinder's `cinder-manage service remove <binary> <host>` — so that a host scaled away for
 * good stops counting as an expected member (`HearthMemberDown`, `num_down_hosts`). Answers 200
 * `{"service": {binary, host, cluster}}`; 404 `itemNotFound` for an unknown service; 409
 * `conflictingRequest` while the host is alive, or while operations are still owned by any of its
 * incarnations (orphans not cleaned: run `work-cleanup` first). `host` is the full host id
 * (`<host>@<backend>`), as `hearth service list` shows it. Admin only (a reader token gets 403).
 *
 * Failure semantics: the liveness check and the delete are one etcd transaction, so a host that
 * comes back meanwhile keeps its record (409). A dead host gains no new operations (a cleaner
 * takes its ops as its own), so ops checked first stay absent. etcd unreachable → 503; the
 * record may or may not be gone: list the services again.
 */
export function serviceRemovalRoutes(options: ServiceRemovalOptions): RouteModule {
  return (app: FastifyInstance) => {
    app.delete<{ Params: { binary: string; host: string } }>('/hearth/v1/services/:binary/:host', { config: { skipVersion: true } }, async (req) => {
      const { binary, host } = req.params;
      if (binary.trim() === '' || host.trim() === '') throw new HttpError(400, 'Invalid input: binary and host must not be empty.');
      const owned = await options.store.listOps({ ownerHost: host, ownership: 'owned' });
      if (owned.length > 0) {
        const named = owned.slice(0, NAMED_OPS).map((op) => `${op.type} ${op.id} (${op.kind})`);
        throw new HttpError(
          409,
          `Service ${previewText(binary)} ${previewText(host)} still owns ${owned.length} unfinished operation(s): ${named.join(', ')}${owned.length > NAMED_OPS ? ', …' : ''}. Clean them up first (cinder work-cleanup --host ${previewText(host)}).`,
          'CONFLICT',
        );
      }
      const result = await options.membership.removeService(binary, host);
      if (result.ok) {
        options.logger.info({ binary, host, cluster: result.service.cluster }, 'service record removed');
        return { service: { binary: result.service.binary, host: result.service.host, cluster: result.service.cluster } };
      }
      if (result.reason === 'not-found') throw new HttpError(404, `Service ${previewText(binary)} on host ${previewText(host)} could not be found.`, 'NOT_FOUND');
      throw new HttpError(409, `Service ${previewText(binary)} on host ${previewText(host)} is alive (incarnation ${result.incarnation}); stop it first.`, 'CONFLICT');
    });
  };
}
