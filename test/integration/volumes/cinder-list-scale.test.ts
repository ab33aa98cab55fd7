// python-cinderclient's listings against 20,000 volumes (written straight into the store, with
// their index entries): `cinder list` (which follows the next links page by page),
// `cinder list --status error` and `cinder list --sort name:asc`, on a single node (SQLite) and
// on a cluster's API process (etcd). Each page is read from an index; the whole listing of
// 20,000 must come back complete, in order, without a 503 from an oversized etcd response.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../../support/binaries.js';
import { cinder, parseCinderTable } from '../../support/cinder-cli.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { fillEtcd, fillSqlite, filledNamesSorted } from '../../support/volume-fill.js';

const VOLUMES = 20_000;

function listings(api: () => string): void {
  it('cinder list shows every volume, page after page', { timeout: 120_000 }, async () => {
    const rows = parseCinderTable(await cinder(api(), 'list'));
    expect(rows).toHaveLength(VOLUMES);
    expect(new Set(rows.map((r) => r.Name)).size).toBe(VOLUMES);
  });

  it('cinder list --status error shows exactly the volumes in error', { timeout: 120_000 }, async () => {
    const rows = parseCinderTable(await cinder(api(), 'list', '--status', 'error'));
    expect(rows).toHaveLength(VOLUMES / 10);
    expect(rows.every((r) => r.Status === 'error')).toBe(true);
  });

  it('cinder list --sort name:asc shows every volume by name', { timeout: 120_000 }, async () => {
    const rows = parseCinderTable(await cinder(api(), 'list', '--sort', 'name:asc'));
    expect(rows.map((r) => r.Name)).toEqual(filledNamesSorted(VOLUMES));
  });
}

describe('python-cinderclient listings at 20,000 volumes: single node', () => {
  let hearth: HearthProcess;
  beforeAll(async () => {
    requireBinary('cinder', 'python3-cinderclient');
    hearth = await startHearth({ name: 'cinder-list-single', env: { HEARTH_LOG_LEVEL: 'warn' } });
    fillSqlite(hearth.dataDir, 'single@default', 0, VOLUMES);
  }, 120_000);
  afterAll(async () => {
    await hearth?.stop();
  });
  listings(() => hearth.apiUrl);
});

describe('python-cinderclient listings at 20,000 volumes: cluster (etcd)', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let hearth: HearthProcess;
  beforeAll(async () => {
    requireBinary('cinder', 'python3-cinderclient');
    etcd = useEtcd();
    amqp = await useAmqp();
    hearth = await startHearth({
      name: 'cinder-list-api',
      env: {
        HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
        HEARTH_ETCD_PREFIX: etcd.prefix,
        HEARTH_AMQP_URL: amqp.url,
        HEARTH_AMQP_PREFIX: amqp.prefix,
        HEARTH_CLUSTER: `list${randomUUID().slice(0, 6)}`,
        HEARTH_BACKEND: 'be',
        HEARTH_HOST: 'api',
        HEARTH_ROLES: 'api',
        HEARTH_LOG_LEVEL: 'warn',
      },
    });
    await fillEtcd(etcd.endpoints, etcd.prefix, 'list@be', 0, VOLUMES);
  }, 120_000);
  afterAll(async () => {
    await hearth?.stop();
    await amqp?.close();
    await etcd?.close();
  });
  listings(() => hearth.apiUrl);
});
