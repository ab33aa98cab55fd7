// One worker process of the scaling benchmark (test/bench/suites/scaling.ts).
// Usage: node --import tsx throughput-worker.ts <lock|transition> <endpoint> <prefix> <inFlight>
// `lock`: uncontended acquire + release on names of its own, through one session (as a worker);
// `transition`: conditional transitions on volumes of its own in the shared state store.
// Prints `ready` once set up. Then, for every `go <startAtEpochMs> <endAtEpochMs>` line on stdin, runs
// `inFlight` loops between those times and prints one JSON line `{"ops": n, "ms": elapsed}`. `exit` ends it.
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Registry } from 'prom-client';
import { createEtcdClient } from '../../../src/etcd/client.js';
import { KeyLayout } from '../../../src/etcd/keys.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { EtcdLockService } from '../../../src/locks/etcd-lock-service.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { EtcdSession } from '../../../src/session/etcd-session.js';
import { EtcdStateStore } from '../../../src/state/etcd-state-store.js';
import { createStateMetrics } from '../../../src/state/metrics.js';
import { newVolume } from '../../contract/state-store.contract.js';

const [mode, endpoint, prefix, inFlightText] = process.argv.slice(2) as [string, string, string, string];
const inFlight = Number(inFlightText);
const now = (): number => performance.timeOrigin + performance.now();
const client = createEtcdClient({ endpoints: [endpoint], prefix, username: '', password: '', caFile: '', certFile: '', keyFile: '', callTimeoutMs: 10_000 });

/** One operation of loop `w`, and how to clean up. */
interface Work {
  op(w: number, i: number): Promise<void>;
  close(): Promise<void>;
}

async function locks(): Promise<Work> {
  const session = await EtcdSession.open({ client, host: `bench-${process.pid}@bench`, leaseTtlMs: 10_000, leaseMarginMs: 2_000, callTimeoutMs: 10_000 });
  const service = new EtcdLockService({ client, keys: new KeyLayout(prefix), session, callTimeoutMs: 10_000 });
  const names = Array.from({ length: inFlight }, () => `${randomUUID()}-delete_volume`);
  return {
    op: async (w) => (await service.acquire(names[w] as string)).release(),
    close: async () => {
      await service.close();
      await session.close();
    },
  };
}

async function transitions(): Promise<Work> {
  const store = new EtcdStateStore({ client, keys: new KeyLayout(prefix), clock: systemClock, metrics: createStateMetrics(new Registry()), logger: silentLogger() });
  const ids: string[] = [];
  for (let i = 0; i < inFlight; i++) {
    const created = await store.create('volume', { record: newVolume(), op: { kind: 'create_volume' } });
    if (!created.ok) throw new Error('create refused');
    const done = await store.transition({ type: 'volume', id: created.record.id }, { expect: { status: 'creating' }, set: { status: 'available' }, op: 'remove', by: 'worker' });
    if (!done.ok) throw new Error('completion refused');
    ids.push(created.record.id);
  }
  return {
    op: async (w, i) => {
      const res = await store.transition({ type: 'volume', id: ids[w] as string }, { expect: { status: 'available' }, set: { host: `node${i % 7}@bench` }, by: 'worker' });
      if (!res.ok) throw new Error(`transition refused: ${JSON.stringify(res.failed)}`);
    },
    close: () => store.close(),
  };
}

const work = mode === 'lock' ? await locks() : await transitions();
// Warm up (JIT, connections) before the first measured run.
await Promise.all(Array.from({ length: inFlight }, async (_, w) => {
  for (let i = 0; i < 30; i++) await work.op(w, i);
}));
process.stdout.write('ready\n');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const [word, startAt, endAt] = line.split(' ');
  if (word === 'exit') break;
  if (word !== 'go') continue;
  // Every process starts at the same instant and stops at the same instant.
  while (now() < Number(startAt)) await new Promise((r) => setTimeout(r, 1));
  const until = Number(endAt);
  let ops = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      for (let i = 0; now() < until; i++, ops++) await work.op(w, i);
    }),
  );
  process.stdout.write(`${JSON.stringify({ ops, ms: now() - started })}\n`);
}
lines.close();
await work.close();
client.close();
