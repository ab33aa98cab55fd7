// A 15 s quorum loss of a three-member etcd ends every incarnation at once; the cluster must
// recover by self-fencing alone: each process, once its runs settled, records its own earlier
// incarnation as fenced (how=self) and rejoins — no member fences another, though a fence that
// kills is configured (the fault suite's exec fence), and every process is still running after.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AmqpTestContext, useAmqp } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { ClusterClient, readJournal, started, startWorker } from '../../support/orphans-cluster.js';
import { useEtcdCluster } from '../../support/topology-fixtures.js';
import { waitFor } from '../../support/wait.js';

const FENCE_KILL = resolve(import.meta.dirname, '../../support/fence-kill.mjs');
const LOSS_MS = 15_000;
const PREFIX = '/hearth-quorum-loss';

describe('a 15 s etcd quorum loss', () => {
  const etcd = useEtcdCluster();
  let amqp: AmqpTestContext;
  let journal: string;
  let env: Record<string, string>;
  const procs: HearthProcess[] = [];

  beforeAll(async () => {
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-quorum-loss-')), 'journal.jsonl');
    env = {
      HEARTH_ETCD_ENDPOINTS: etcd().endpoints.join(','),
      HEARTH_ETCD_PREFIX: PREFIX,
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_CLUSTER: 'ql',
      HEARTH_BACKEND: 'be',
      HEARTH_LEASE_TTL_MS: '3000',
      HEARTH_LEASE_MARGIN_MS: '1000',
      HEARTH_REPORT_INTERVAL_MS: '1000',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_DRIVER_FAKE_LATENCY_MS: '5000',
      HEARTH_LOG_LEVEL: 'info',
      HEARTH_FENCING_METHOD: 'exec',
      HEARTH_FENCING_EXEC_COMMAND: FENCE_KILL,
      HEARTH_FENCING_SELF_FENCE_GRACE_MS: '60000',
    };
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await amqp?.close();
  });

  it('ends every incarnation; each process fences its own and rejoins; nobody fences another; the work is cleaned up', async () => {
    const api = await startHearth({ name: 'api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    const client = new ClusterClient(api);
    const workers = [await startWorker(env, 'w1'), await startWorker(env, 'w2')];
    procs.push(...workers);
    const volumes: string[] = [];
    for (let i = 0; i < 4; i++) volumes.push(await client.createVolume());
    for (const v of volumes) await client.waitStatus('volume', v, 'available');
    for (const v of volumes) await client.extend(v, 2);
    for (const v of volumes) await started(journal, 'extendVolume', `volume:${v}`);

    // Two of three members down: no leader, no lease can be kept alive, no write commits.
    const cluster = etcd().local();
    const lostAt = Date.now();
    await Promise.all([cluster.member(1).stop(), cluster.member(2).stop()]);
    await waitFor(async () => workers.every((w) => w.logs().some((l) => l.msg === 'this incarnation ended; rejoining as a new one')), {
      timeoutMs: LOSS_MS,
      intervalMs: 100,
      what: 'both workers to lose their sessions',
    });
    await new Promise((r) => setTimeout(r, Math.max(0, LOSS_MS - (Date.now() - lostAt))));
    await Promise.all([cluster.member(1).start(), cluster.member(2).start()]);
    await cluster.waitForLeader({ timeoutMs: 30_000 });
    console.log(`[fencing] quorum lost for ${Date.now() - lostAt} ms`);

    // Every process rejoins as a new incarnation, having fenced its earlier one itself.
    for (const w of workers) {
      await waitFor(async () => (await fetch(`${w.opsUrl}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 60_000, intervalMs: 250, what: `${w.name} ready again` });
    }
    // Each extend ends one way or the other (finished before its fence, or cleaned up after).
    for (const v of volumes) {
      await waitFor(async () => (await client.status('volume', v)) !== 'extending', { timeoutMs: 60_000, intervalMs: 250, what: `volume ${v} out of extending` });
      expect(await client.status('volume', v)).toMatch(/^(available|error_extending)$/);
    }

    const kv = new Etcd3({ hosts: etcd().endpoints });
    try {
      const ends = (await kv.getAll().prefix(`${PREFIX}/fenced/`).strings()) as Record<string, string>;
      const records = Object.values(ends).map((text) => JSON.parse(text) as { incarnation: string; host: string; how: string; by: string });
      const ofWorkers = records.filter((r) => r.host === 'w1@be' || r.host === 'w2@be');
      expect(ofWorkers.length).toBeGreaterThanOrEqual(2);
      for (const r of ofWorkers) {
        expect(r.how).toBe('self');
        // Recorded by a later incarnation of the same host.
        expect(r.by.startsWith(`${r.host}:`)).toBe(true);
        expect(r.by).not.toBe(r.incarnation);
      }
      expect(await kv.getAll().prefix(`${PREFIX}/fences/`).keys()).toEqual([]);
    } finally {
      kv.close();
    }
    for (const w of workers) {
      expect(w.logs().filter((l) => l.msg === 'fenced a dead incarnation')).toEqual([]);
      expect(w.logs().filter((l) => l.msg === 'earlier incarnation of this process fenced by itself').length).toBeGreaterThanOrEqual(1);
      // Still running: nobody's fence killed it.
      expect(() => process.kill(w.pid, 0)).not.toThrow();
    }
    const { report } = await readJournal(journal);
    expect(report.overlaps).toEqual([]);
    expect(report.duplicates).toEqual([]);
  });
});
