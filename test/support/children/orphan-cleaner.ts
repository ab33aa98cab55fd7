// A child process for the racing-cleaners test: joins the cluster as its own host (a real etcd
// session and alive key), waits for a go file so its siblings start at the same moment, then
// cleans every orphan of the cluster with the real claim (the worker's OpClaimer) and writes
// what it found, cleaned and claimed as JSON to CLEAN_OUT.
//
// Env: CLEAN_ETCD_ENDPOINTS, CLEAN_ETCD_PREFIX, CLEAN_CLUSTER, CLEAN_HOST, CLEAN_GO, CLEAN_OUT.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Registry } from 'prom-client';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { VOLUME_BINARY } from '../../../src/identity.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { EtcdMembership } from '../../../src/membership/etcd-membership.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { OrphanCleaner } from '../../../src/orphans/cleaner.js';
import { EtcdFailoverLedger } from '../../../src/orphans/etcd-failover-ledger.js';
import { OrphanMetrics } from '../../../src/orphans/metrics.js';
import type { TakeoverClaimer } from '../../../src/orphans/takeover.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { OpClaimer } from '../../../src/worker/op-claim.js';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const prefix = env('CLEAN_ETCD_PREFIX');
const cluster = env('CLEAN_CLUSTER');
const host = env('CLEAN_HOST');
const client = createEtcdClient({ endpoints: env('CLEAN_ETCD_ENDPOINTS').split(','), prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 10_000 });
const keys = new KeyLayout(prefix);
const logger = silentLogger();
const store = new EtcdStateStore({ client, keys, clock: systemClock, metrics: createStateMetrics(new Registry()), logger });
const membership = new EtcdMembership({ client, keys, clock: systemClock, logger });
const session = await EtcdSession.open({ client, host, leaseTtlMs: 10_000, leaseMarginMs: 2_000, callTimeoutMs: 5_000 });
const member = await membership.join({ identity: { cluster, host, zone: 'nova' }, binary: VOLUME_BINARY, version: 'test', session });

const registry = new Registry();
const metrics = new OrphanMetrics(registry);
const real = new OpClaimer({ store, membership });
const claimed: string[] = [];
const claimer: TakeoverClaimer = {
  claimOp: async (op, me, options) => {
    const result = await real.claimOp(op, me, options);
    if (result.ok) claimed.push(`${op.type}/${op.id}`);
    return result;
  },
};
const cleaner = new OrphanCleaner({
  store,
  membership,
  member: () => member,
  claimer,
  runner: {
    run: () => {
      throw new Error('this racer cleans only kinds that end in one status transition');
    },
  },
  clock: systemClock,
  logger,
  metrics,
  ledger: new EtcdFailoverLedger({ client, keys }),
  creatingAction: 'error',
  deathOf: () => undefined,
});

console.log('ready');
const deadline = Date.now() + 60_000;
while (!existsSync(env('CLEAN_GO'))) {
  if (Date.now() > deadline) throw new Error('no go signal within 60 s');
  await new Promise((r) => setTimeout(r, 2));
}
const report = await cleaner.clean({ cluster }, 'cleanup');
const failovers = (await registry.getSingleMetric('hearth_failovers_total')?.get())?.values.reduce((n, v) => n + v.value, 0) ?? 0;
await writeFile(env('CLEAN_OUT'), JSON.stringify({ host, pid: process.pid, report, claimed, failovers }));
await member.leave();
await session.close();
await store.close();
await membership.close();
client.close();
console.log('done');
