// Graceful drain on SIGTERM with real `hearth serve` processes on etcd and RabbitMQ: readiness
// goes false, consuming stops, a short operation finishes, a long one is handed back and done by
// another worker, the lease is revoked so peers see the member leave at once; a second signal
// exits at once.
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJournal, type JournalCall, parseJournal } from '../../../src/drivers/fake-journal.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { type AmqpTestContext, type EtcdTestContext, useAmqp, useEtcd } from '../../support/context.js';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { VolumeClient } from '../../support/volume-client.js';

const LEASE_TTL_MS = 10_000;

describe('graceful drain on SIGTERM', () => {
  let etcd: EtcdTestContext;
  let amqp: AmqpTestContext;
  let journal: string;
  let api: HearthProcess;
  let client: VolumeClient;
  const procs: HearthProcess[] = [];
  let base: Record<string, string>;

  beforeAll(async () => {
    etcd = useEtcd();
    amqp = await useAmqp();
    journal = join(await mkdtemp(join(tmpdir(), 'hearth-drain-')), 'journal.jsonl');
    base = {
      HEARTH_ETCD_ENDPOINTS: etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: etcd.prefix,
      HEARTH_AMQP_URL: amqp.url,
      HEARTH_AMQP_PREFIX: amqp.prefix,
      HEARTH_CLUSTER: 'drain',
      HEARTH_BACKEND: 'fake',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_JOURNAL: journal,
      HEARTH_LEASE_TTL_MS: String(LEASE_TTL_MS),
    };
    api = await startHearth({ name: 'drain-api', env: { ...base, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' } });
    procs.push(api);
    client = new VolumeClient(api.apiUrl);
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
    await amqp?.close();
  });

  async function worker(host: string, latencyMs: number, graceMs: number): Promise<HearthProcess> {
    const proc = await startHearth({
      name: `drain-${host}`,
      env: { ...base, HEARTH_HOST: host, HEARTH_ROLES: 'worker', HEARTH_DRIVER_FAKE_LATENCY_MS: String(latencyMs), HEARTH_SHUTDOWN_GRACE_MS: String(graceMs) },
    });
    procs.push(proc);
    return proc;
  }

  async function calls(): Promise<readonly JournalCall[]> {
    return checkJournal(parseJournal(await readFile(journal, 'utf8').catch(() => '')).entries).calls;
  }

  /** The lease of a worker's (last) incarnation, from its log. */
  function leaseOf(proc: HearthProcess): string {
    const joined = proc.logs().filter((l) => l.msg === 'joined the cluster').at(-1) as { owner?: { incarnation?: string } } | undefined;
    const hex = joined?.owner?.incarnation?.split(':')[1];
    if (!hex) throw new Error(`no incarnation in the log of ${proc.name}`);
    return BigInt(`0x${hex}`).toString();
  }

  it('a short operation finishes during the drain; readiness is false meanwhile; exit 0', async () => {
    const w1 = await worker('w1', 1_500, 10_000);
    const id = await client.createVolume(1);
    await expect.poll(async () => (await calls()).filter((c) => c.resource === `volume:${id}`).length, { timeout: 15_000, interval: 20 }).toBe(1);
    const signalled = Date.now();
    w1.process.signal('SIGTERM');
    await expect.poll(async () => (await fetch(`${w1.opsUrl}/readyz`).catch(() => undefined))?.status, { timeout: 1_000, interval: 20 }).toBe(503);
    expect(await w1.process.waitForExit()).toEqual({ code: 0, signal: null });
    const exitedMs = Date.now() - signalled;
    expect(await client.show('volume', id)).toMatchObject({ status: 'available' });
    const [call] = (await calls()).filter((c) => c.resource === `volume:${id}`);
    expect(call).toMatchObject({ member: 'w1@fake', ok: true });
    const drained = w1.logs().find((l) => l.msg === 'worker drained');
    expect(drained).toMatchObject({ finished: 1, stopped: 0 });
    expect(await etcd.client.get(new KeyLayout(etcd.prefix).alive('w1@fake')).string()).toBeNull();
    console.log(`[drain] short op: SIGTERM → op finished ${(call!.end! - signalled).toFixed(0)} ms later → exit ${exitedMs} ms after SIGTERM`);
  });

  it('a second signal exits at once, even in the middle of a drain', async () => {
    const w3 = await worker('w3', 60_000, 60_000);
    const id = await client.createVolume(1);
    await expect.poll(async () => (await calls()).filter((c) => c.resource === `volume:${id}`).length, { timeout: 15_000, interval: 20 }).toBe(1);
    w3.process.signal('SIGTERM');
    await expect.poll(() => w3.logs().some((l) => l.msg === 'shutting down'), { timeout: 5_000, interval: 20 }).toBe(true);
    const second = Date.now();
    w3.process.signal('SIGTERM');
    expect(await w3.process.waitForExit()).toEqual({ code: 130, signal: null });
    const exitMs = Date.now() - second;
    expect(exitMs).toBeLessThan(3_000);
    expect(w3.logs().some((l) => l.msg === 'second signal: exiting now')).toBe(true);
    console.log(`[drain] second signal: exit 130 ${exitMs} ms after it`);
  });

  it('a long operation is handed back and finished by another worker; peers see the member leave at once (lease revoked)', async () => {
    const keys = new KeyLayout(etcd.prefix);
    const w1 = await worker('w1', 30_000, 1_000);
    const id = await client.createVolume(1);
    await expect.poll(async () => (await calls()).filter((c) => c.resource === `volume:${id}` && c.member === 'w1@fake').length, { timeout: 15_000, interval: 20 }).toBe(1);
    const w2 = await worker('w2', 200, 10_000);
    const lease = leaseOf(w1);

    // Watch w1's alive key from here, as a peer does.
    let leftAt: number | undefined;
    const watcher = await etcd.client.watch().key(keys.alive('w1@fake')).create();
    watcher.on('delete', () => (leftAt ??= Date.now()));
    try {
      const signalled = Date.now();
      w1.process.signal('SIGTERM');
      expect(await w1.process.waitForExit()).toEqual({ code: 0, signal: null });
      const exitedMs = Date.now() - signalled;
      const done = await client.until('volume', id, (v) => v?.status === 'available', { timeoutMs: 30_000, intervalMs: 20 });
      const doneMs = Date.now() - signalled;
      expect(done).toMatchObject({ status: 'available' });
      await expect.poll(() => leftAt, { timeout: 2_000 }).toBeDefined();
      const leftMs = leftAt! - signalled;
      // At once: within the grace period plus a little, far below the lease TTL.
      expect(leftMs).toBeLessThan(1_000 + 3_000);
      const ttl = await etcd.client.leaseClient.leaseTimeToLive({ ID: lease });
      expect(ttl.TTL).toBe('-1'); // revoked, not left to expire

      const mine = (await calls()).filter((c) => c.resource === `volume:${id}`);
      expect(mine).toEqual([expect.objectContaining({ member: 'w1@fake', ok: false }), expect.objectContaining({ member: 'w2@fake', ok: true })]);
      expect(mine[0]!.end!).toBeLessThanOrEqual(mine[1]!.start);
      expect(w1.logs().find((l) => l.msg === 'worker drained')).toMatchObject({ finished: 0, stopped: 1 });
      expect(w1.logs().some((l) => l.msg === 'handed the op back for another member')).toBe(true);
      const shown = (await (await fetch(`${api.apiUrl}/v3/admin/volumes/${id}`)).json()) as { volume: Record<string, unknown> };
      expect(shown.volume['os-vol-host-attr:host']).toBe('w2@fake');
      console.log(
        `[drain] long op (grace 1000 ms, lease TTL ${LEASE_TTL_MS} ms): SIGTERM → alive key deleted (peers saw w1 leave) ${leftMs} ms → exit ${exitedMs} ms → ` +
          `op finished by w2 ${doneMs} ms after SIGTERM`,
      );
    } finally {
      await watcher.cancel();
    }
    await w2.stop();
  });
});
