// The first release (tag v0.1.0, built from this repository's history by
// test/support/release-build.ts) beside the current tree, with real processes, etcd and
// RabbitMQ: a worker of the release and a worker and an API process of the current tree.
// Proved: jobs from the current API are run by either worker; records the current worker wrote
// are read (and changed) by the release's; nothing is dead-lettered and the journal is clean;
// once the release's worker leaves, the cluster's message version is the current tree's newest
// within one membership event (no restart); after `finalize` the release refuses to start with
// a message naming both schemas — or, while the current tree still writes the release's schema,
// finalize is refused and the release keeps working (both checked against src/protocol.ts, so
// the test follows the tree's first protocol change without an edit).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL, type ProtocolSupport } from '../../../src/protocol.js';
import { isTransitional } from '../../../src/state/state-machine.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, memberEnv, readJournal } from '../../support/orphans-cluster.js';
import { buildRelease, FIRST_RELEASE, type ReleaseBuild } from '../../support/release-build.js';
import { MixedStream } from '../../support/rolling.js';
import { waitFor } from '../../support/wait.js';

interface UpgradeJson {
  readonly message_versions: readonly { cluster: string; version: number; pinned_by: string[] }[];
  readonly processes: readonly { id: string; host: string; revision: string; messages: string; schema: string }[];
  readonly schema: { version: number };
}

const CLUSTER = 'mixed@be';

describe(`the first release (${FIRST_RELEASE}) beside the current tree`, () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  let release: ReleaseBuild;
  let releaseProtocol: ProtocolSupport;
  const procs = new Set<HearthProcess>();

  async function start(name: string, roles: string, root?: string): Promise<HearthProcess> {
    const p = await startHearth({ name, ...(root === undefined ? {} : { root }), env: { ...env, HEARTH_HOST: name, HEARTH_ROLES: roles }, startTimeoutMs: 150_000 });
    procs.add(p);
    return p;
  }

  async function upgradeStatus(api: HearthProcess): Promise<UpgradeJson> {
    const res = await fetch(`${api.apiUrl}/hearth/v1/upgrade`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { upgrade: UpgradeJson }).upgrade;
  }

  beforeAll(async () => {
    release = await buildRelease(FIRST_RELEASE);
    releaseProtocol = ((await import(pathToFileURL(join(release.root, 'dist/protocol.js')).href)) as { PROTOCOL: ProtocolSupport }).PROTOCOL;
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-mixed-')), 'journal.jsonl');
    env = memberEnv(etcd, amqp, 'mixed', journal, { HEARTH_DRIVER_FAKE_LATENCY_MS: '100', HEARTH_LEASE_TTL_MS: '10000', HEARTH_LEASE_MARGIN_MS: '3000' });
  }, 600_000);
  afterAll(async () => {
    await Promise.all([...procs].map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  it('both builds run the current API\'s jobs and read each other\'s records; the release leaving lifts the message version at once', async () => {
    expect(releaseProtocol.messages.max).toBeLessThanOrEqual(PROTOCOL.messages.max);
    const old = await start('w-old', 'worker', release.root);
    await start('w-new', 'worker');
    const api = await start('api', 'api');
    const client = new ClusterClient({ apiUrl: api.apiUrl, opsUrl: api.opsUrl });

    // Both builds are present, the release's from its tagged commit, and it pins the messages.
    const mixed = await upgradeStatus(api);
    const oldProcess = mixed.processes.find((p) => p.host.startsWith('w-old'));
    expect(oldProcess?.revision).toBe(release.commit.slice(0, 7));
    expect(mixed.message_versions.find((m) => m.cluster === CLUSTER)?.version).toBe(Math.min(releaseProtocol.messages.max, PROTOCOL.messages.max));

    // Replication commands wait for the release (it would drop a failover from the cluster
    // record, and its worker would not freeze): 409, nothing written.
    const freeze = (action: 'freeze' | 'thaw') =>
      fetch(`${api.apiUrl}/v3/admin/os-services/${action}`, { method: 'PUT', headers: { 'content-type': 'application/json', 'OpenStack-API-Version': 'volume 3.26' }, body: JSON.stringify({ cluster: CLUSTER }) });
    const gated = await freeze('freeze');
    expect(gated.status).toBe(409);
    expect(((await gated.json()) as { conflictingRequest: { message: string } }).conflictingRequest.message).toMatch(/^Cannot perform freeze during system upgrade: w-old@be \(release /);

    // A stream of mixed operations until each worker has run calls, and the release's worker
    // has changed a volume the current worker created (it read the current tree's record).
    const stream = new MixedStream(client, 4).start();
    await waitFor(
      async () => {
        if (stream.errors.length > 0) return true;
        const { entries } = await readJournal(journal);
        const ended = entries.filter((e) => e.event === 'end' && e.ok === true);
        const createdByNew = new Set(ended.filter((e) => e.call === 'createVolume' && e.member.startsWith('w-new')).map((e) => e.resource));
        const oldOnNew = ended.some((e) => e.member.startsWith('w-old') && e.call !== 'createVolume' && createdByNew.has(e.resource));
        const byMember = (m: string): number => ended.filter((e) => e.member.startsWith(m)).length;
        return (oldOnNew && byMember('w-old') >= 5 && byMember('w-new') >= 5) || undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500, what: 'both workers running jobs, the release on the current tree\'s records' },
    );
    await stream.stop();
    expect(stream.errors).toEqual([]);

    const dead = (await (await fetch(`${api.apiUrl}/hearth/v1/dead-letters`)).json()) as { dead_letters: unknown[] };
    expect(dead.dead_letters).toEqual([]);
    const { report } = await readJournal(journal);
    expect(report.malformed).toBe(0);
    expect(report.unfinished).toEqual([]);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);

    // The release's worker leaves: the message version is the current tree's newest as soon as
    // its presence key is deleted (one watch event), with no restart of anyone.
    expect((await old.stop(45_000)).code).toBe(0);
    procs.delete(old);
    await waitFor(async () => (await upgradeStatus(api)).message_versions.find((m) => m.cluster === CLUSTER)?.version === PROTOCOL.messages.max || undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: `message version ${PROTOCOL.messages.max} once the release left`,
    });
    // The release gone, a freeze and a thaw are taken.
    expect((await freeze('freeze')).status).toBe(200);
    expect((await freeze('thaw')).status).toBe(200);
    // The current tree alone runs the next operations.
    const after = new MixedStream(client, 2).start();
    await waitFor(() => after.durationsMs.length >= 10 || after.errors.length > 0 || undefined, { timeoutMs: 120_000, intervalMs: 200, what: 'operations after the release left' });
    await after.stop();
    expect(after.errors).toEqual([]);
    const listed = (await (await fetch(`${api.apiUrl}/v3/admin/volumes/detail`, { headers: { 'OpenStack-API-Version': 'volume 3.27' } })).json()) as { volumes: { status: string }[] };
    expect(listed.volumes.filter((v) => isTransitional('volume', v.status))).toEqual([]);

    const finalize = await fetch(`${api.apiUrl}/hearth/v1/upgrade/finalize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    if (PROTOCOL.schema.max > releaseProtocol.schema.max) {
      // The current tree writes a schema the release cannot read: finalize raises it, and the
      // release then refuses to start, naming both schemas.
      expect(finalize.status).toBe(202);
      await waitFor(async () => (await upgradeStatus(api)).schema.version === PROTOCOL.schema.max || undefined, { timeoutMs: 30_000, what: 'the schema raised' });
      const refused = await startHearth({ name: 'w-old-again', root: release.root, env: { ...env, HEARTH_HOST: 'w-old', HEARTH_ROLES: 'worker' }, waitFor: 'none' });
      const exit = await refused.process.waitForExit();
      expect(exit.code).not.toBe(0);
      expect(refused.output()).toMatch(new RegExp(`schema[^\\n]*${PROTOCOL.schema.max}[^\\n]*${releaseProtocol.schema.max}|schema[^\\n]*${releaseProtocol.schema.max}[^\\n]*${PROTOCOL.schema.max}`));
    } else {
      // Still the release's schema: there is nothing to raise, and the release starts again.
      expect(finalize.status).toBe(409);
      const again = await start('w-old-again', 'worker', release.root);
      expect((await upgradeStatus(api)).processes.some((p) => p.host.startsWith('w-old-again'))).toBe(true);
      expect((await again.stop(45_000)).code).toBe(0);
      procs.delete(again);
    }
  }, 900_000);
});
