// The replica monitor's rules and gauges, against a management API answered from a table (the
// real API: test/integration/topology/rabbitmq-ha.test.ts).
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ManagementAnswer, ManagementReader } from '../../../src/amqp/management.js';
import { BackendAccessError, BackendUnavailableError } from '../../../src/errors.js';
import { systemClock } from '../../../src/lifecycle/clock.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { refusedOverGroupSize } from '../../../src/routing/amqp-declare.js';
import { QueueReplicaMonitor, replicasOf, replicaState } from '../../../src/routing/amqp-replicas.js';
import { replicaMetrics } from '../../../src/routing/metrics.js';

const N = ['r@a', 'r@b', 'r@c'];

describe('replicaState', () => {
  it('is whole, under-replicated (fewer members or fewer online than the target) or without quorum', () => {
    expect(replicaState({ members: N, online: N, leader: 'r@a' }, 3)).toBe('whole');
    expect(replicaState({ members: N, online: N.slice(0, 2), leader: 'r@a' }, 3)).toBe('under-replicated');
    expect(replicaState({ members: N.slice(0, 2), online: N.slice(0, 2), leader: 'r@a' }, 3)).toBe('under-replicated');
    expect(replicaState({ members: N.slice(0, 1), online: N.slice(0, 1), leader: 'r@a' }, 1)).toBe('whole');
    expect(replicaState({ members: N, online: N.slice(0, 1), leader: '' }, 3)).toBe('no-quorum');
    expect(replicaState({ members: N.slice(0, 2), online: N.slice(0, 1), leader: '' }, 3)).toBe('no-quorum');
    expect(replicaState({ members: [], online: [], leader: '' }, 3)).toBe('no-quorum');
  });

  it('reads a management API queue object; a classic queue has no replicas', () => {
    expect(replicasOf({ type: 'quorum', members: N, online: ['r@a', 7], leader: 'r@a' })).toEqual({ members: N, online: ['r@a'], leader: 'r@a' });
    expect(replicasOf({ type: 'classic', node: 'r@a' })).toBeUndefined();
    expect(replicasOf('not json')).toBeUndefined();
  });
});

describe('refusedOverGroupSize', () => {
  it('recognises only RabbitMQ\'s refusal over the initial group size', () => {
    const text = (arg: string): Error =>
      new Error(`Operation failed: QueueDeclare; 406 (PRECONDITION-FAILED) with message "PRECONDITION_FAILED - inequivalent arg '${arg}' for queue 'q' in vhost '/': received '3' but current is none"`);
    expect(refusedOverGroupSize(text('x-quorum-initial-group-size'))).toBe(true);
    expect(refusedOverGroupSize(text('x-dead-letter-exchange'))).toBe(false);
    expect(refusedOverGroupSize(new Error('connection closed'))).toBe(false);
  });
});

/** A management API answered from `table` (path → answer), or failing as `fail` says. */
function reader(table: Map<string, unknown>, state: { fail?: Error }): ManagementReader {
  return {
    get: async (path): Promise<ManagementAnswer> => {
      if (state.fail) throw state.fail;
      const body = table.get(path);
      return { status: body === undefined ? 404 : 200, body, node: 'r0:15672' };
    },
  };
}

describe('QueueReplicaMonitor', () => {
  it('exports members, online members and the target per queue kind, and drops them when the API is gone', async () => {
    const registry = new Registry();
    const table = new Map<string, unknown>([
      ['/api/nodes?columns=name', N.map((name) => ({ name }))],
      ['/api/queues/vh/hearth.volume.c%40be', { type: 'quorum', members: N, online: N.slice(0, 2), leader: 'r@a' }],
      ['/api/queues/vh/hearth.dead', { type: 'quorum', members: N, online: N, leader: 'r@b' }],
    ]);
    const state: { fail?: Error } = {};
    const monitor = new QueueReplicaMonitor({
      reader: reader(table, state),
      vhost: 'vh',
      queues: [
        { kind: 'cluster', name: 'hearth.volume.c@be' },
        { kind: 'dead', name: 'hearth.dead' },
        { kind: 'host', name: 'hearth.volume.c@be.w1@be' }, // not declared yet: no series
      ],
      groupSize: 5,
      intervalMs: 60_000,
      timeoutMs: 1_000,
      metrics: replicaMetrics(registry),
      logger: silentLogger(),
      clock: systemClock,
    });
    await monitor.poll();
    const text = await registry.metrics();
    expect(text).toContain('hearth_amqp_queue_members{queue_kind="cluster"} 3');
    expect(text).toContain('hearth_amqp_queue_online_members{queue_kind="cluster"} 2');
    expect(text).toContain('hearth_amqp_queue_online_members{queue_kind="dead"} 3');
    // min(5 configured, 3 nodes)
    expect(text).toContain('hearth_amqp_queue_target_members{queue_kind="cluster"} 3');
    expect(text).not.toContain('queue_kind="host"');
    expect(text).toContain('hearth_amqp_management_up 1');

    state.fail = new BackendUnavailableError('amqp', 'no RabbitMQ management API answered');
    await monitor.poll();
    const after = await registry.metrics();
    expect(after).toContain('hearth_amqp_management_up 0');
    expect(after).not.toContain('hearth_amqp_queue_members{');
    await monitor.close();
  });

  it('takes the configured size as the target when the user may not list the nodes', async () => {
    const registry = new Registry();
    const table = new Map<string, unknown>([['/api/queues/%2F/q', { type: 'quorum', members: N.slice(0, 1), online: N.slice(0, 1), leader: 'r@a' }]]);
    const base = reader(table, {});
    const monitor = new QueueReplicaMonitor({
      reader: { get: (path, signal) => (path.startsWith('/api/nodes') ? Promise.reject(new BackendAccessError('amqp', 'credentials', 'no monitoring tag')) : base.get(path, signal)) },
      vhost: '/',
      queues: [{ kind: 'cluster', name: 'q' }],
      groupSize: 3,
      intervalMs: 60_000,
      timeoutMs: 1_000,
      metrics: replicaMetrics(registry),
      logger: silentLogger(),
      clock: systemClock,
    });
    await monitor.poll();
    const text = await registry.metrics();
    expect(text).toContain('hearth_amqp_queue_target_members{queue_kind="cluster"} 3');
    expect(text).toContain('hearth_amqp_management_up 1');
  });
});
