import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterRoutes } from '../../../src/api/clusters.js';
import { replicationRoutes } from '../../../src/api/replication.js';
import { ApiServer } from '../../../src/api/server.js';
import { tokenDigest } from '../../../src/api/token-file.js';
import { runCli } from '../../../src/cli/program.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { ManualClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { LocalMembership } from '../../../src/membership/local-membership.js';
import { LocalRecordFile } from '../../../src/membership/local-store.js';
import { TestSession } from '../../support/test-session.js';

/** Runs the CLI in-process and captures what it printed. */
async function hearth(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) }, {});
  return { code, out, err };
}

describe('hearth cluster … and hearth service list against a running API', () => {
  let server: ApiServer;
  let url: string;
  let membership: LocalMembership;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-cli-'));
    membership = new LocalMembership(await LocalRecordFile.open(join(dir, 'membership.json')), new ManualClock(Date.UTC(2024, 0, 2, 3, 4, 5)));
    await membership.join({
      identity: { cluster: 'ceph@rbd', host: 'n1@rbd', zone: 'az1' },
      binary: VOLUME_BINARY,
      version: '1',
      session: TestSession.local('n1@rbd'),
      replication: { targetIds: ['dr1'] },
    });
    server = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536 });
    server.register(clusterRoutes(membership, VOLUME_BINARY));
    server.register(replicationRoutes({ membership, refuses: () => undefined, now: () => 0, volumeBinary: VOLUME_BINARY }));
    const address = await server.listen('127.0.0.1:0');
    url = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await server.close();
    await membership.close();
  });

  it('cluster list prints a table for people and JSON for scripts', async () => {
    const table = await hearth('cluster', 'list', '--url', url);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/Name\s*│\s*Binary\s*│\s*State\s*│\s*Status/);
    expect(table.out).toMatch(/ceph@rbd\s*│\s*cinder-volume\s*│\s*up\s*│\s*enabled/);
    const detailed = await hearth('cluster', 'list', '--detailed', '--url', url);
    expect(detailed.out).toMatch(/Num Hosts.*Num Down Hosts.*Last Heartbeat/);
    expect(detailed.out).toContain('2024-01-02T03:04:05.000000');
    const json = await hearth('cluster', 'list', '--detailed', '--json', '--url', url);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ name: 'ceph@rbd', num_hosts: 1, num_down_hosts: 0, frozen: false })]);
    const filtered = await hearth('cluster', 'list', '--json', '--is-up', 'false', '--url', url);
    expect(JSON.parse(filtered.out)).toEqual([]);
  });

  it('cluster show, disable --reason and enable', async () => {
    const shown = await hearth('cluster', 'show', 'ceph@rbd', '--json', '--url', url);
    expect(JSON.parse(shown.out)).toMatchObject({ name: 'ceph@rbd', state: 'up', status: 'enabled' });
    const table = await hearth('cluster', 'show', 'ceph@rbd', '--url', url);
    expect(table.out).toMatch(/Property\s*│\s*Value/);
    expect(table.out).toMatch(/disabled_reason\s*│\s*-/);
    const disabled = await hearth('cluster', 'disable', 'ceph@rbd', '--reason', 'maintenance', '--json', '--url', url);
    expect(disabled.code).toBe(0);
    expect(JSON.parse(disabled.out)).toMatchObject({ status: 'disabled', disabled_reason: 'maintenance' });
    expect((await membership.snapshot()).clusters[0]).toMatchObject({ disabled: true, disabledReason: 'maintenance' });
    const enabled = await hearth('cluster', 'enable', 'ceph@rbd', '--url', url);
    expect(enabled.code).toBe(0);
    expect(enabled.out).toMatch(/status\s*│\s*enabled/);
  });

  it('cluster freeze, thaw and failover change the cluster record; a refused one exits 1 with Cinder\'s message', async () => {
    const frozen = await hearth('cluster', 'freeze', 'ceph@rbd', '--json', '--url', url);
    expect(frozen.code).toBe(0);
    expect(JSON.parse(frozen.out)).toMatchObject({ name: 'ceph@rbd', frozen: true, replication_status: 'enabled' });
    const twice = await hearth('cluster', 'freeze', 'ceph@rbd', '--url', url);
    expect(twice.code).toBe(1);
    expect(twice.err).toContain('frozen in ceph@rbd must be False to failover.');
    expect((await hearth('cluster', 'thaw', 'ceph@rbd', '--url', url)).out).toMatch(/frozen\s*│\s*false/);
    const unknown = await hearth('cluster', 'failover', 'ceph@rbd', '--backend-id', 'dr9', '--url', url);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('Invalid Replication Target: dr9');
    const failover = await hearth('cluster', 'failover', 'ceph@rbd', '--backend-id', 'dr1', '--json', '--url', url);
    expect(failover.code).toBe(0);
    expect(JSON.parse(failover.out)).toMatchObject({ replication_status: 'failing-over', frozen: true });
    // Nobody runs it here (no worker): put the record back for the other tests.
    await membership.updateCluster('ceph@rbd', VOLUME_BINARY, { expect: {}, set: () => ({ replicationStatus: 'enabled', frozen: false, failover: null }) });
  });

  it('service list prints the hosts with state, zone and cluster', async () => {
    const table = await hearth('service', 'list', '--url', url);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/cinder-volume\s*│\s*n1@rbd\s*│\s*az1\s*│\s*enabled\s*│\s*up/);
    expect(table.out).toContain('ceph@rbd');
    const json = await hearth('service', 'list', '--host', 'n1', '--json', '--url', url);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ host: 'n1@rbd', cluster: 'ceph@rbd', backend_state: 'up' })]);
    expect(JSON.parse((await hearth('service', 'list', '--host', 'n9', '--json', '--url', url)).out)).toEqual([]);
  });

  it('an API error exits 1 with Cinder\'s message', async () => {
    const res = await hearth('cluster', 'show', 'nope@rbd', '--url', url);
    expect(res.code).toBe(1);
    expect(res.err).toContain('Cluster nope@rbd could not be found.');
    expect(res.out).toBe('');
  });

  it('bad usage exits 2 and sends nothing', async () => {
    const bad = await hearth('cluster', 'list', '--is-up', 'maybe', '--url', url);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--is-up must be true or false');
    expect((await hearth('cluster', 'list', '--num-hosts', 'two', '--url', url)).code).toBe(2);
    expect((await hearth('cluster', 'show', '--url', url)).code).toBe(2);
    expect((await hearth('cluster', 'frobnicate')).code).toBe(2);
  });

  it('sends the API token from --token-file; a wrong or missing one is refused (exit 1)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hearth-cli-token-'));
    const token = 'secret-token-0123456789abcdef';
    await writeFile(join(dir, 'token'), `${token}\n`);
    await writeFile(join(dir, 'wrong'), 'another-token-0123456789abcdef\n');
    const secured = new ApiServer({ logger: silentLogger(), maxBodyBytes: 65_536, auth: { mode: 'token', admin: { digest: async () => tokenDigest(token) } } });
    secured.register(clusterRoutes(membership, VOLUME_BINARY));
    const address = await secured.listen('127.0.0.1:0');
    const securedUrl = `http://127.0.0.1:${address.port}`;
    try {
      const ok = await hearth('cluster', 'list', '--json', '--url', securedUrl, '--token-file', join(dir, 'token'));
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.out)).toEqual([expect.objectContaining({ name: 'ceph@rbd' })]);
      const wrong = await hearth('cluster', 'list', '--url', securedUrl, '--token-file', join(dir, 'wrong'));
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain('the token was not accepted');
      const none = await hearth('cluster', 'list', '--url', securedUrl);
      expect(none.code).toBe(1);
      expect(none.err).toContain('requires authentication');
      const missing = await hearth('cluster', 'list', '--url', securedUrl, '--token-file', join(dir, 'absent'));
      expect(missing.code).toBe(2);
      expect(missing.err).toContain('cannot read the API token file');
    } finally {
      await secured.close();
    }
  });

  it('without --url it dials api.listen from the configuration (a wildcard bind as loopback)', async () => {
    const port = new URL(url).port;
    let out = '';
    const code = await runCli(['cluster', 'list', '--json'], { out: (t) => (out += t), err: () => undefined }, { HEARTH_API_LISTEN: `0.0.0.0:${port}`, HEARTH_API_ALLOW_REMOTE_NOAUTH: "true" });
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual([expect.objectContaining({ name: 'ceph@rbd' })]);
  });

  it('an unreachable API exits 1 and says where it tried', async () => {
    const res = await hearth('service', 'list', '--url', 'http://127.0.0.1:9');
    expect(res.code).toBe(1);
    expect(res.err).toContain('cannot reach the hearth API at http://127.0.0.1:9');
  });
});
