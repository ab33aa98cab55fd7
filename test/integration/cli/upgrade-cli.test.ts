// `hearth upgrade status` and `hearth upgrade finalize` against an API on a real etcd, with a
// process of the previous release alive and then gone.
import type { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../../src/api/server.js';
import { runCli } from '../../../src/cli/program.js';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { DEFAULT_ETCD_RETRY } from '../../../src/lifecycle/retry.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { ProtocolSupport } from '../../../src/protocol.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { RecordVersions, type SchemaStep } from '../../../src/state/record-versions.js';
import { EtcdUpgradeRegistry } from '../../../src/upgrade/etcd-upgrade-registry.js';
import { MigrationRunner } from '../../../src/upgrade/migration.js';
import { PresenceKeeper } from '../../../src/upgrade/presence-keeper.js';
import type { PresenceRecord } from '../../../src/upgrade/records.js';
import { upgradeRoutes } from '../../../src/upgrade/routes.js';
import { UpgradeService } from '../../../src/upgrade/service.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { etcdConfig } from '../locks/fixtures.js';
import { RELEASE_1, RELEASE_2 } from '../upgrade/releases.js';

const NOTHING: SchemaStep = { from: 1, doc: 'no change', up: (b) => b, down: (b) => b };

async function hearth(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) }, {});
  return { code, out, err };
}

describe('hearth upgrade status|finalize', () => {
  let ctx: EtcdTestContext;
  let client: Etcd3;
  let server: ApiServer;
  let url: string;
  const closers: (() => Promise<void>)[] = [];
  let old: PresenceKeeper;

  function registry(host: string): EtcdUpgradeRegistry {
    const r = new EtcdUpgradeRegistry({
      client,
      keys: new KeyLayout(ctx.prefix),
      clock: systemClock,
      logger: silentLogger(),
      retry: DEFAULT_ETCD_RETRY,
      openSession: (signal) => EtcdSession.open({ client, host, leaseTtlMs: 3_000, leaseMarginMs: 900, callTimeoutMs: 2_000, ...(signal ? { signal } : {}) }),
    });
    closers.push(() => r.close());
    return r;
  }

  const record = (host: string, own: ProtocolSupport, build: string): PresenceRecord => ({
    host,
    cluster: 'ceph@rbd',
    roles: ['worker'],
    build,
    revision: 'test',
    messages: own.messages,
    schema: own.schema,
    pid: process.pid,
    startedAtMs: Date.now(),
  });

  beforeAll(async () => {
    ctx = useEtcd();
    client = createEtcdClient(etcdConfig(ctx.endpoints, ctx.prefix));
    old = new PresenceKeeper({ registry: registry('old@rbd'), record: record('old@rbd', RELEASE_1, '0.1.0'), own: RELEASE_1, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    await old.start();
    const reg = registry('new@rbd');
    const self = record('new@rbd', RELEASE_2, '0.2.0');
    const keeper = new PresenceKeeper({ registry: reg, record: self, own: RELEASE_2, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    await keeper.start();
    closers.push(() => keeper.close());
    const runner = new MigrationRunner({ registry: reg, codec: new RecordVersions(RELEASE_2.schema, 2, [NOTHING]), batchSize: 10, clock: systemClock, logger: silentLogger(), retry: DEFAULT_ETCD_RETRY });
    const service = new UpgradeService({ registry: reg, own: RELEASE_2, record: self, presence: () => keeper.presence, runner, clock: systemClock, logger: silentLogger() });
    closers.push(() => service.close());
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(upgradeRoutes(service));
    url = `http://127.0.0.1:${(await server.listen('127.0.0.1:0')).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await old?.close();
    for (const close of closers.reverse()) await close();
    client?.close();
    await ctx?.close();
  });

  it('status names each process with its release, the pinned message version and what blocks the next schema', async () => {
    const table = await hearth('upgrade', 'status', '--url', url);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/Record schema: 1 \(as the cluster started; no data migration\)/);
    expect(table.out).toMatch(/Schema 2: blocked/);
    expect(table.out).toMatch(/process old@rbd\/[0-9a-f]+ \(hearth 0\.1\.0, worker\) reads schemas 1/);
    expect(table.out).toMatch(/Cluster ceph@rbd has run more than one release since/);
    expect(table.out).toMatch(/old@rbd\/[0-9a-f]+\s*│\s*ceph@rbd\s*│\s*worker\s*│\s*0\.1\.0\s*│\s*1\s*│\s*1/);
    const json = JSON.parse((await hearth('upgrade', 'status', '--json', '--url', url)).out) as { message_versions: unknown[]; processes: unknown[] };
    expect(json.message_versions).toEqual([expect.objectContaining({ cluster: 'ceph@rbd', version: 1, worker_version: 1, workers: 2, pinned_by: [expect.stringMatching(/^old@rbd\//)] })]);
    expect(json.processes).toHaveLength(2);
  });

  it('finalize is refused while the old process lives, naming it; once it is gone, it raises the schema and waits for the migration', async () => {
    const refused = await hearth('upgrade', 'finalize', '--url', url);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toMatch(/Cannot finalize record schema 2: process old@rbd\/[0-9a-f]+ \(hearth 0\.1\.0, worker\) reads schemas 1/);
    await old.close();
    const done = await hearth('upgrade', 'finalize', '--wait', '--url', url);
    expect(done.err).toBe('');
    expect(done.code).toBe(0);
    expect(done.out).toMatch(/Record schema 2 is finalized; migrating the records\.\nThe data migration is done: 0 records rewritten\./);
    const status = await hearth('upgrade', 'status', '--url', url);
    expect(status.out).toMatch(/Record schema: 2 \(finalized .*; data migration from 1 done \(0 records\)\)/);
    expect(status.out).toMatch(/Schema 3: blocked/);
  });
});
