import { readFile } from 'node:fs/promises';
import { checkJournal, type JournalEntry, type JournalReport, parseJournal } from '../../src/drivers/fake-journal.js';
import type { EtcdTestContext } from './context.js';
import type { AmqpTestContext } from './context.js';
import { type HearthProcess, startHearth } from './hearth-process.js';
import { waitFor } from './wait.js';

/** The `HEARTH_*` settings of a cluster member with the fake driver writing to `journal`. */
export function memberEnv(
  etcd: Pick<EtcdTestContext, 'endpoints' | 'prefix'>,
  amqp: Pick<AmqpTestContext, 'url' | 'prefix'>,
  cluster: string,
  journal: string,
  over: Record<string, string> = {},
): Record<string, string> {
  return {
    HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
    HEARTH_ETCD_PREFIX: etcd.prefix,
    HEARTH_AMQP_URL: amqp.url,
    HEARTH_AMQP_PREFIX: amqp.prefix,
    HEARTH_CLUSTER: cluster,
    HEARTH_BACKEND: 'be',
    HEARTH_LEASE_TTL_MS: '3000',
    HEARTH_LEASE_MARGIN_MS: '1000',
    HEARTH_REPORT_INTERVAL_MS: '1000',
    HEARTH_DRIVER_NAME: 'fake',
    HEARTH_DRIVER_FAKE_JOURNAL: journal,
    HEARTH_LOG_LEVEL: 'info',
    ...over,
  };
}

/** Starts a worker-only member `host` of the cluster `env` describes. */
export function startWorker(env: Record<string, string>, host: string, over: Record<string, string> = {}): Promise<HearthProcess> {
  return startHearth({ name: `worker-${host}`, env: { ...env, HEARTH_HOST: host, HEARTH_ROLES: 'worker', ...over } });
}

/** A small client of one process's Cinder API, ops listener and hearth's own views. */
export class ClusterClient {
  constructor(private readonly p: Pick<HearthProcess, 'apiUrl' | 'opsUrl'>) {}

  private async call(method: string, path: string, body?: unknown, version = '3.27'): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${this.p.apiUrl}${path}`, {
      method,
      headers: { 'OpenStack-API-Version': `volume ${version}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  private async ok(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.call(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async createVolume(size = 1): Promise<string> {
    return ((await this.ok('POST', '/v3/admin/volumes', { volume: { size } })).volume as { id: string }).id;
  }

  async createSnapshot(volumeId: string): Promise<string> {
    return ((await this.ok('POST', '/v3/admin/snapshots', { snapshot: { volume_id: volumeId } })).snapshot as { id: string }).id;
  }

  async deleteVolume(id: string): Promise<void> {
    await this.ok('DELETE', `/v3/admin/volumes/${id}`);
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.ok('DELETE', `/v3/admin/snapshots/${id}`);
  }

  async extend(id: string, newSize: number): Promise<void> {
    await this.ok('POST', `/v3/admin/volumes/${id}/action`, { 'os-extend': { new_size: newSize } });
  }

  /** The resource's status, or `deleted` once it is gone (404). */
  async status(type: 'volume' | 'snapshot', id: string): Promise<string> {
    const res = await this.call('GET', `/v3/admin/${type}s/${id}`);
    if (res.status === 404) return 'deleted';
    return (res.body[type] as { status: string }).status;
  }

  async record(type: 'volume' | 'snapshot', id: string): Promise<Record<string, unknown>> {
    return (await this.ok('GET', `/v3/admin/${type}s/${id}`))[type] as Record<string, unknown>;
  }

  async waitStatus(type: 'volume' | 'snapshot', id: string, status: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => (await this.status(type, id)) === status, { timeoutMs, intervalMs: 100, what: `${type} ${id} to be ${status}` });
  }

  /** `GET /hearth/v1/orphans`. */
  async orphans(): Promise<Record<string, unknown>[]> {
    const res = await fetch(`${this.p.apiUrl}/hearth/v1/orphans`);
    return ((await res.json()) as { orphans: Record<string, unknown>[] }).orphans;
  }

  /** `POST /v3/admin/workers/cleanup` (3.24). */
  async workCleanup(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    return this.call('POST', '/v3/admin/workers/cleanup', body, '3.24');
  }

  /** The sum of a metric's samples whose labels include `labels` (0 when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return metricOf(await (await fetch(`${this.p.opsUrl}/metrics`)).text(), name, labels);
  }
}

/** The sum of `name`'s samples in Prometheus text whose labels include `labels`. */
export function metricOf(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x): [string, string] => [x[1] ?? '', x[2] ?? '']));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

/** The shared journal, parsed and checked. */
export async function readJournal(path: string): Promise<{ entries: JournalEntry[]; report: JournalReport }> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // Not written yet.
  }
  const { entries, malformed } = parseJournal(text);
  return { entries, report: checkJournal(entries, malformed.length) };
}

/** Waits until the journal shows `call` started on `resource` (`volume:<id>`), and returns that entry. */
export async function started(journal: string, call: JournalEntry['call'], resource: string, timeoutMs = 30_000): Promise<JournalEntry> {
  return waitFor(async () => (await readJournal(journal)).entries.find((e) => e.event === 'start' && e.call === call && e.resource === resource), {
    timeoutMs,
    intervalMs: 25,
    what: `${call} of ${resource} to start`,
  });
}
