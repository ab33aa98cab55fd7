// Copies (issue 16): clones per second against plain creates in the same run, and clones of one
// source against clones of distinct sources — what the source's hold costs. An API process and
// two workers on the bench's etcd and RabbitMQ, the fake driver with latency so that a copy is
// not free (every call takes FAKE_LATENCY_MS). Each client sends one request at a time and waits
// for its op record to be gone (the worker's final write), seen on a watch of etcd's ops/ prefix.
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { type HearthProcess, startHearth } from '../../support/hearth-process.js';
import { VolumeClient } from '../../support/volume-client.js';
import { type BenchSuite, percentile, relative, standalone } from '../types.js';
import { measure } from './etcd-baseline.js';
import { etcdCompletion } from './e2e.js';

const CLIENTS = 16;
const FAKE_LATENCY_MS = 50;

export const suite: BenchSuite = {
  name: 'copies',
  async run(ctx) {
    const prefix = `/bench-copies-${randomUUID().slice(0, 8)}`;
    const env = {
      HEARTH_ETCD_ENDPOINTS: ctx.etcd.endpoints.join(','),
      HEARTH_ETCD_PREFIX: prefix,
      HEARTH_AMQP_URL: ctx.rabbit.url,
      HEARTH_AMQP_PREFIX: `c${randomUUID().slice(0, 8)}`,
      HEARTH_CLUSTER: 'bench',
      HEARTH_BACKEND: 'fake',
      HEARTH_DRIVER_NAME: 'fake',
      HEARTH_DRIVER_FAKE_LATENCY_MS: String(FAKE_LATENCY_MS),
      HEARTH_LOG_LEVEL: 'warn',
    };
    const procs: HearthProcess[] = [];
    const completion = await etcdCompletion(ctx.etcd.endpoints, prefix);
    try {
      procs.push(
        ...(await Promise.all([
          startHearth({ name: 'bench-copies-api', env: { ...env, HEARTH_HOST: 'api', HEARTH_ROLES: 'api' }, startTimeoutMs: 60_000 }),
          ...[1, 2].map((n) => startHearth({ name: `bench-copies-w${n}`, env: { ...env, HEARTH_HOST: `w${n}`, HEARTH_ROLES: 'worker' }, startTimeoutMs: 60_000 })),
        ])),
      );
      const api = new VolumeClient(procs[0]!.apiUrl);
      const create = async (): Promise<string> => {
        const id = await api.createVolume(1);
        await completion.done(id);
        return id;
      };
      const clone = async (source: string): Promise<void> => {
        const made = await api.createFrom({ sourceVolid: source });
        if (made.status !== 202) throw new Error(`clone of ${source}: HTTP ${made.status} ${made.message ?? ''}`);
        await completion.done(made.id!);
      };
      const sources = await Promise.all(Array.from({ length: CLIENTS }, create));
      await measure(1, CLIENTS, () => create());
      const creates = await measure(ctx.seconds, CLIENTS, () => create());
      ctx.log(`plain creates: ${creates.opsPerSecond.toFixed(1)}/s`);
      const distinct = await measure(ctx.seconds, CLIENTS, (client) => clone(sources[client]!));
      ctx.log(`clones of ${CLIENTS} distinct sources: ${distinct.opsPerSecond.toFixed(1)}/s`);
      const one = await measure(ctx.seconds, CLIENTS, () => clone(sources[0]!));
      ctx.log(`clones of one source: ${one.opsPerSecond.toFixed(1)}/s`);
      const createsPerS = standalone('copies.creates_per_s', creates.opsPerSecond, 'ops/s');
      const distinctPerS = relative('copies.clones_per_s_distinct_sources', distinct.opsPerSecond, 'ops/s', createsPerS);
      const createsP50 = standalone('copies.create_p50_ms', percentile(creates.latenciesMs, 50), 'ms');
      return [
        createsPerS,
        distinctPerS,
        // What the hold costs: clones of one source run at once (no lock on the source), so this is near 1.
        relative('copies.clones_per_s_one_source', one.opsPerSecond, 'ops/s', distinctPerS),
        createsP50,
        relative('copies.clone_p50_ms_distinct_sources', percentile(distinct.latenciesMs, 50), 'ms', createsP50),
        relative('copies.clone_p50_ms_one_source', percentile(one.latenciesMs, 50), 'ms', createsP50),
      ];
    } finally {
      await completion.close();
      await Promise.all(procs.map((p) => p.stop()));
      const client = new Etcd3({ hosts: ctx.etcd.endpoints });
      await client.delete().prefix(`${prefix}/`);
      client.close();
    }
  },
};
