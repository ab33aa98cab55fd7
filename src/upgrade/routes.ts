import type { FastifyInstance } from 'fastify';
import { formatCinderTime } from '../api/cinder-time.js';
import { HttpError } from '../api/faults.js';
import type { RouteModule } from '../api/server.js';
import { formatRange } from '../protocol.js';
import type { LiveProcess, MigrationState, SchemaState } from './records.js';
import type { UpgradeService, UpgradeStatus } from './service.js';

const time = (ms: number | null): string | null => (ms === null ? null : formatCinderTime(ms));

function processJson(p: LiveProcess): Record<string, unknown> {
  return {
    id: p.id,
    host: p.host,
    cluster: p.cluster,
    roles: p.roles,
    release: p.build,
    revision: p.revision,
    messages: formatRange(p.messages),
    schema: formatRange(p.schema),
    pid: p.pid,
    started_at: time(p.startedAtMs),
  };
}

function migrationJson(m: MigrationState | null): Record<string, unknown> | null {
  return (
    m && {
      from: m.from,
      to: m.to,
      done: m.done,
      migrated: m.migrated,
      passes: m.passes,
      cursor: m.cursor,
      blocked_by_unreadable: m.blockedBy && { count: m.blockedBy.count, keys: m.blockedBy.keys },
      started_at: time(m.startedAtMs),
      updated_at: time(m.updatedAtMs),
      completed_at: time(m.completedAtMs),
    }
  );
}

function schemaJson(s: SchemaState & { floor?: number }): Record<string, unknown> {
  return { version: s.version, floor: s.floor ?? s.version, finalized_at: time(s.finalizedAtMs), finalized_by: s.finalizedBy, migration: migrationJson(s.migration) };
}

/** The status as `GET /hearth/v1/upgrade` shows it. */
export function statusJson(s: UpgradeStatus): Record<string, unknown> {
  return {
    distributed: s.distributed,
    this_process: { id: s.self.id, host: s.self.host, release: s.self.build, revision: s.self.revision, roles: s.self.roles, messages: formatRange(s.self.messages), schema: formatRange(s.self.schema) },
    schema: schemaJson(s.schema),
    next_schema: { version: s.next.target, can_finalize: s.next.reasons.length === 0, blocked_by: s.next.blockedBy.map((p) => p.id), reasons: s.next.reasons },
    message_versions: s.messages.map((m) => ({ cluster: m.cluster, version: m.version, worker_version: m.workerVersion, workers: m.workers, pinned_by: m.pinnedBy.map((p) => p.id) })),
    processes: s.processes.map(processJson),
    mixed_since: Object.fromEntries([...s.mixedSince].map(([c, since]) => [c, time(since)])),
  };
}

/**
 * hearth's upgrade routes (docs/upgrades.md):
 *
 * - `GET /hearth/v1/upgrade`: every live process with its release and the versions it reads
 *   and writes, the message version each cluster gets and who pins it, the finalized record
 *   schema and its data migration, and what blocks raising it.
 * - `POST /hearth/v1/upgrade/finalize` (body `{}` or `{"schema": N}`, admin): raises the
 *   record schema once every live process reads it and starts the data migration (202 with the
 *   status); with the schema there already, resumes an unfinished migration. 409 naming every
 *   blocking process or reason otherwise.
 *
 * Failure semantics: etcd unreachable → 503, nothing raised (a finalize whose answer was lost
 * may have raised it: read the status).
 */
export function upgradeRoutes(service: UpgradeService): RouteModule {
  return (app: FastifyInstance) => {
    app.get('/hearth/v1/upgrade', { config: { skipVersion: true } }, async () => ({ upgrade: statusJson(await service.status()) }));
    app.post('/hearth/v1/upgrade/finalize', { config: { skipVersion: true } }, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'Invalid input: the body must be a JSON object.');
      const extra = Object.keys(body).filter((k) => k !== 'schema');
      if (extra.length > 0) throw new HttpError(400, `Invalid input: unknown key(s) ${extra.slice(0, 3).map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; only "schema" is allowed.`);
      const target = body.schema;
      if (target !== undefined && (typeof target !== 'number' || !Number.isSafeInteger(target) || target < 1)) throw new HttpError(400, 'Invalid input: schema must be a positive integer.');
      const outcome = await service.finalize(target);
      if (!outcome.ok) throw new HttpError(409, `Cannot finalize record schema ${outcome.check.target}: ${outcome.check.reasons.join('; ')}.`, 'CONFLICT');
      return reply.code(202).send({ upgrade: statusJson(await service.status()) });
    });
  };
}
