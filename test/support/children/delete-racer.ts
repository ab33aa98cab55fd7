// A child process for race tests: opens its own state store (etcd or SQLite), waits for a go
// file so that its sibling starts at the same moment, fires RACE_COUNT concurrent API deletes
// at one volume, and writes every result as JSON to RACE_OUT.
//
// Env: RACE_BACKEND=etcd|sqlite, RACE_ETCD_ENDPOINTS, RACE_ETCD_PREFIX, RACE_SQLITE_PATH,
//      RACE_VOLUME_ID, RACE_COUNT, RACE_GO (file to wait for), RACE_OUT (file to write).
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Registry } from 'prom-client';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { SqliteStateStore } from '../../../src/state/sqlite-state-store.js';
import { sourcesOf } from '../../../src/state/state-machine.js';
import type { StateStore } from '../../../src/state/state-store.js';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const metrics = createStateMetrics(new Registry());
let store: StateStore;
let closeClient = (): void => undefined;
if (env('RACE_BACKEND') === 'etcd') {
  const client = createEtcdClient({
    endpoints: env('RACE_ETCD_ENDPOINTS').split(','),
    prefix: env('RACE_ETCD_PREFIX'),
    username: '',
    password: '',
    caFile: '',
    certFile: '',
    keyFile: '',
    callTimeoutMs: 10_000,
  });
  store = new EtcdStateStore({ client, keys: new KeyLayout(env('RACE_ETCD_PREFIX')), clock: systemClock, metrics, logger: silentLogger() });
  closeClient = () => client.close();
} else {
  store = SqliteStateStore.open({ path: env('RACE_SQLITE_PATH'), clock: systemClock, metrics, busyTimeoutMs: 20_000 });
}

const id = env('RACE_VOLUME_ID');
const count = Number(env('RACE_COUNT'));
console.log('ready');
const deadline = Date.now() + 30_000;
while (!existsSync(env('RACE_GO'))) {
  if (Date.now() > deadline) throw new Error('no go signal within 30 s');
  await new Promise((r) => setTimeout(r, 2));
}
const results = await Promise.all(
  Array.from({ length: count }, () =>
    store
      .transition(
        { type: 'volume', id },
        { expect: { status: sourcesOf('volume', 'deleting', 'api') }, set: { status: 'deleting' }, op: { create: { kind: 'delete_volume' } }, by: 'api' },
      )
      .then(
        (r) => (r.ok ? { ok: true, revision: r.revision, opId: r.op?.opId } : { ok: false, failed: r.failed }),
        (err: unknown) => ({ ok: false, error: err instanceof Error ? err.message : String(err) }),
      ),
  ),
);
await writeFile(env('RACE_OUT'), JSON.stringify({ pid: process.pid, results }));
await store.close();
closeClient();
console.log('done');
