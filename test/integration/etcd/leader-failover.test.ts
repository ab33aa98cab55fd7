// The etcd leader killed (kill -9) under load, and back six seconds later, three times, on a
// three-member etcd with every member in etcd.endpoints: at the default lease TTL no worker
// incarnation ends, the API refuses no request, and every volume ends available.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, useAmqp } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, readJournal, startWorker } from '../../support/orphans-cluster.js';
import { useEtcdCluster } from '../../support/topology-fixtures.js';
import { waitFor } from '../../support/wait.js';

const KILLS = 3;
const DOWN_MS = 6_000;

describe('the etcd leader killed under load', () => {
  const etcd = useEtcdCluster();
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-leader-')), 'journal.jsonl');
    env = {
      HEARTH_ETCD_ENDPOINTS: etcd().endpoints.join(','),
      HEARTH_ETCD_PREFIX: '/hearth-leader',
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_CLUSTER: 'lf',
      HEARTH_BACKEND: 'be',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_DRIVER_FAKE_LATENCY_MS: '50',
      HEARTH_LOG_LEVEL: 'info',
    };
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await amqp?.close();
  });

  it(`${KILLS} kills of the leader, ${DOWN_MS / 1000} s down each: no incarnation ends, no request is refused, nothing is lost`, async () => {
    const api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    const workers = [await startWorker(env, 'w1'), await startWorker(env, 'w2')];
    procs.push(...workers);
    const client = new ClusterClient(api);
    const cluster = etcd().local();

    const refused: string[] = [];
    const created: string[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop && i < 2_000; i++) {
        const res = await fetch(`${api.apiUrl}/v3/admin/volumes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-auth-token': 'admin:admin' },
          body: JSON.stringify({ volume: { size: 1 } }),
        });
        if (res.status === 202) created.push(((await res.json()) as { volume: { id: string } }).volume.id);
        else refused.push(`${res.status} ${await res.text()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    for (let k = 0; k < KILLS; k++) {
      await new Promise((r) => setTimeout(r, 2_000));
      const leader = await cluster.waitForLeader({ timeoutMs: 20_000 });
      const killedAt = Date.now();
      await leader.kill();
      const next = await cluster.waitForLeader({ not: leader, timeoutMs: 20_000 });
      console.log(`[etcd] leader ${leader.name} killed; ${next.name} elected after ${Date.now() - killedAt} ms`);
      await new Promise((r) => setTimeout(r, Math.max(0, DOWN_MS - (Date.now() - killedAt))));
      await leader.start();
    }
    stop = true;
    await load;

    expect(refused).toEqual([]);
    expect(created.length).toBeGreaterThan(50);
    for (const id of created) await client.waitStatus('volume', id, 'available', 60_000);
    for (const w of workers) {
      const ended = w.logs().filter((l) => l.msg === 'this incarnation ended; rejoining as a new one');
      expect(ended).toEqual([]);
      expect((await fetch(`${w.opsUrl}/readyz`)).status).toBe(200);
    }
    const { report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
    console.log(`[etcd] ${created.length} volumes created across ${KILLS} leader kills, none refused`);
    await waitFor(async () => (await client.orphans()).length === 0, { timeoutMs: 10_000, what: 'no orphans' });
  });
});
