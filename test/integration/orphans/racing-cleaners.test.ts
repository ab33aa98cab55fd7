import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { CleanupReport } from '../../../src/orphans/cleaner.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import type { ResourceRef } from '../../../src/state/records.js';
import type { OpKind } from '../../../src/state/state-machine.js';
import { type EtcdTestContext, useEtcd } from '../../support/context.js';
import { etcdConfig } from '../../support/etcd-membership-helpers.js';
import { CLEANED_STATUS, ownBy, seedInFlight } from '../../support/orphan-fixtures.js';
import { ManagedProcess } from '../../support/process.js';
import { GiveUp, waitFor } from '../../support/wait.js';

const REPO = resolve(import.meta.dirname, '../../..');
const CLUSTER = 'race@be';
const CLEANERS = 4;
/** The kinds whose cleanup is one status transition (no driver call), ten of each but two. */
const KINDS: readonly OpKind[] = ['create_volume', 'extend_volume', 'attach_volume', 'detach_volume', 'create_snapshot'];

/**
 * Several cleaners in separate processes, each a live member with its own etcd session, race
 * over the same orphans at the same moment: each orphan is claimed and cleaned exactly once.
 */
describe('cleaners racing from different processes', () => {
  let etcd: EtcdTestContext;
  let dir: string;
  const procs: ManagedProcess[] = [];

  beforeAll(async () => {
    etcd = useEtcd();
    dir = await mkdtemp(join(tmpdir(), 'hearth-race-'));
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await etcd?.close();
  });

  it(`${CLEANERS} processes, 50 orphans of two dead incarnations: every orphan claimed by exactly one, each cleaned once, each death counted once`, async () => {
    const client = createEtcdClient(etcdConfig(etcd.endpoints, etcd.prefix));
    const store = new EtcdStateStore({ client, keys: new KeyLayout(etcd.prefix), clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger() });
    // The owner never had an alive key at this revision: it is dead, as after a lease expiry.
    // Two deaths, their orphans interleaved, so every racer takes some of each.
    const dead = [
      { host: 'dead@be', incarnation: 'dead@be:1', aliveRevision: '1' },
      { host: 'gone@be', incarnation: 'gone@be:2', aliveRevision: '1' },
    ];
    // Both deaths fenced already (takeovers wait for that record; see the fencing tests).
    const membership = new EtcdMembership({ client, keys: new KeyLayout(etcd.prefix), clock: systemClock, logger: silentLogger() });
    for (const d of dead) {
      const fenced = await membership.recordEnd({ incarnation: d.incarnation, host: d.host, how: 'manual', by: 'operator', atMs: Date.now(), detail: 'fenced before the race' });
      expect(fenced.ok).toBe(true);
    }
    await membership.close();
    const seeded: { ref: ResourceRef; kind: OpKind }[] = [];
    for (let i = 0; i < 10; i++) {
      for (const kind of KINDS) {
        const ref = await seedInFlight(store, CLUSTER, kind);
        await ownBy(store, ref, dead[seeded.length % 2] as (typeof dead)[number]);
        seeded.push({ ref, kind });
      }
    }
    const go = join(dir, 'go');
    const outs = Array.from({ length: CLEANERS }, (_, i) => join(dir, `out-${i}.json`));
    for (const [i, out] of outs.entries()) {
      const p = ManagedProcess.start({
        command: process.execPath,
        args: ['--import', 'tsx', join(REPO, 'test/support/children/orphan-cleaner.ts')],
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          CLEAN_ETCD_ENDPOINTS: etcd.endpoints.join(','),
          CLEAN_ETCD_PREFIX: etcd.prefix,
          CLEAN_CLUSTER: CLUSTER,
          CLEAN_HOST: `cleaner-${i}@be`,
          CLEAN_GO: go,
          CLEAN_OUT: out,
        },
        cwd: REPO,
        logDir: dir,
        name: `cleaner-${i}`,
      });
      procs.push(p);
    }
    await waitFor(
      () => {
        const exited = procs.find((p) => !p.alive);
        if (exited) throw new GiveUp(`a cleaner exited early:\n${exited.tail()}`);
        return procs.every((p) => p.output().includes('ready'));
      },
      { timeoutMs: 60_000, what: 'every cleaner to be ready' },
    );
    await writeFile(go, '');
    await Promise.all(procs.map((p) => p.waitForExit()));
    expect(procs.map((p) => p.exit?.code)).toEqual(Array(CLEANERS).fill(0));
    const results = await Promise.all(outs.map(async (o) => JSON.parse(await readFile(o, 'utf8')) as { host: string; report: CleanupReport; claimed: string[]; failovers: number }));

    const claims = results.flatMap((r) => r.claimed);
    expect(claims).toHaveLength(seeded.length);
    expect(new Set(claims).size).toBe(seeded.length);
    expect(results.reduce((n, r) => n + r.report.cleaned, 0)).toBe(seeded.length);
    for (const r of results) {
      expect(r.report.errors).toBe(0);
      expect(r.report.cleaned + r.report.skipped).toBe(r.report.found);
    }
    // hearth_failovers_total: each death once across the racing processes (the failover ledger),
    // not once per op (50) nor once per racer that took some of it (up to 8).
    expect(results.reduce((n, r) => n + r.failovers, 0)).toBe(dead.length);
    // The ledger's records rode on the racers' leases, revoked as they left: nothing is left.
    expect(await client.getAll().prefix(`${etcd.prefix}/failovers/`).keys()).toEqual([]);
    console.log(`[orphans] ${CLEANERS} racing cleaner processes: failovers counted ${results.map((r) => r.failovers).join('/')}; claimed ${results.map((r) => r.report.cleaned).join('/')} of ${seeded.length}; skipped ${results.map((r) => r.report.skipped).join('/')}`);
    for (const { ref, kind } of seeded) expect((await store.get(ref))?.status, kind).toBe(CLEANED_STATUS[kind]);
    expect(await store.listOps()).toEqual([]);
    await store.close();
    client.close();
  });
});
