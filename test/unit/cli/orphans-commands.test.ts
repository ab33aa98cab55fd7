import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { cleanupBody } from '../../../src/cli/commands/orphans.js';
import { runCli } from '../../../src/cli/program.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { MembershipSnapshot, ServiceRecord } from '../../../src/membership/records.js';
import { findOrphans } from '../../../src/orphans/find-orphans.js';
import { type CleanupDispatch, orphanRoutes } from '../../../src/orphans/routes.js';
import type { OpRecord } from '../../../src/state/records.js';

const T0 = Date.UTC(2024, 0, 2, 3, 4, 5);

async function hearth(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) }, {});
  return { code, out, err };
}

function service(id: number, host: string): ServiceRecord {
  return {
    id,
    binary: VOLUME_BINARY,
    host,
    cluster: 'ceph@rbd',
    zone: 'nova',
    version: '1',
    disabled: false,
    disabledReason: null,
    frozen: false,
    replicationStatus: 'not-capable',
    activeBackendId: null,
    createdAtMs: T0,
    startedAtMs: T0,
    heartbeatAtMs: T0,
    modifiedAtMs: null,
  };
}

const snapshot: MembershipSnapshot = {
  clusters: [],
  services: [service(3, 'dead@rbd'), service(4, 'live@rbd')],
  alive: [{ host: 'live@rbd', cluster: 'ceph@rbd', incarnation: 'live@rbd:9', heartbeatAtMs: T0, aliveRevision: '9' }],
};

const orphanOp: OpRecord = {
  type: 'volume',
  id: '6f1c8a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b',
  opId: 'op-1',
  kind: 'extend_volume',
  status: 'extending',
  cluster: 'ceph@rbd',
  owner: { host: 'dead@rbd', incarnation: 'dead@rbd:1', aliveRevision: '1' },
  attempt: 1,
  params: {},
  createdAt: T0,
  updatedAt: T0,
  publishedAt: T0,
  revision: '2',
};

describe('hearth orphans and hearth work-cleanup against a running API', () => {
  let server: ApiServer;
  let url: string;
  let sent: CleanupDispatch[];

  beforeAll(async () => {
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(
      orphanRoutes({
        membership: { snapshot: async () => snapshot },
        store: { listOps: async () => [orphanOp] },
        orphans: { sweep: async () => findOrphans([orphanOp], snapshot.alive, T0 + 3_000) },
        publisher: { publish: async (d) => void sent.push(d) },
        logger: silentLogger(),
      }),
    );
    url = `http://127.0.0.1:${(await server.listen('127.0.0.1:0')).port}`;
  });
  afterAll(() => server.close());
  beforeEach(() => {
    sent = [];
  });

  it('orphans prints a table for people and JSON for scripts', async () => {
    const table = await hearth('orphans', '--url', url);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/Type\s*│\s*ID\s*│\s*Op\s*│\s*Status\s*│\s*Cluster\s*│\s*Owner Host\s*│\s*Owner Incarnation\s*│\s*Since/);
    expect(table.out).toMatch(/volume\s*│\s*6f1c8a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b\s*│\s*extend_volume\s*│\s*extending\s*│\s*ceph@rbd\s*│\s*dead@rbd\s*│\s*dead@rbd:1/);
    const json = await hearth('orphans', '--json', '--host', 'dead', '--url', url);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ id: orphanOp.id, kind: 'extend_volume', owner_host: 'dead@rbd', age_seconds: 3 })]);
    expect(JSON.parse((await hearth('orphans', '--json', '--cluster', 'other', '--url', url)).out)).toEqual([]);
    expect((await hearth('orphans', '--cluster', 'other', '--url', url)).out).toContain('No orphaned operations.');
  });

  it('work-cleanup prints what cinderclient prints, and --json the answer', async () => {
    const res = await hearth('work-cleanup', '--cluster', 'ceph@rbd', '--url', url);
    expect(res.code).toBe(0);
    expect(res.out).toContain('Following services will be cleaned:');
    expect(res.out).toMatch(/ID\s*│\s*Cluster Name\s*│\s*Host\s*│\s*Binary/);
    expect(res.out).toMatch(/3\s*│\s*ceph@rbd\s*│\s*dead@rbd\s*│\s*cinder-volume/);
    expect(sent).toEqual([expect.objectContaining({ cluster: 'ceph@rbd', host: 'dead@rbd' })]);
    const json = await hearth('work-cleanup', '--json', '--service-id', '4', '--is-up', 'true', '--url', url);
    expect(JSON.parse(json.out)).toEqual({ cleaning: [{ id: 4, host: 'live@rbd', binary: VOLUME_BINARY, cluster_name: 'ceph@rbd' }], unavailable: [] });
    expect((await hearth('work-cleanup', '--host', 'nobody', '--url', url)).out).toContain('No cleanable services matched cleanup criteria.');
  });

  it('bad flags exit 2 and send nothing; an API refusal exits 1 with Cinder\'s message', async () => {
    for (const argv of [['--is-up', 'maybe'], ['--service-id', 'x'], ['--resource-type', 'Backup'], ['--disabled', 'yes']]) {
      const res = await hearth('work-cleanup', ...argv, '--url', url);
      expect(res.code, argv.join(' ')).toBe(2);
      expect(res.err).toMatch(/must be/);
    }
    const refused = await hearth('work-cleanup', '--resource-id', 'nope', '--url', url);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('Invalid input for field/attribute resource_id');
    expect(sent).toEqual([]);
  });

  it('sends only the flags given, typed as the API takes them', () => {
    expect(cleanupBody({})).toEqual({});
    expect(cleanupBody({ cluster: 'c@b', host: 'h', binary: 'cinder-volume', isUp: 'TRUE', disabled: 'false', resourceId: 'u', resourceType: 'snapshot', serviceId: '7' })).toEqual({
      cluster_name: 'c@b',
      host: 'h',
      binary: 'cinder-volume',
      is_up: true,
      disabled: false,
      resource_id: 'u',
      resource_type: 'Snapshot',
      service_id: 7,
    });
  });
});
