import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ClosedError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { type BusMessage, dispositions, type JobDelivery } from '../../../src/routing/job-bus.js';
import { JobBusPublisher } from '../../../src/volumes/job-bus-publisher.js';
import { LocalBroker } from '../../../src/routing/local-broker.js';
import { LocalJobBus } from '../../../src/routing/local-job-bus.js';
import type { OpRecord } from '../../../src/state/records.js';

const op: OpRecord = {
  type: 'volume',
  id: '6f1d2c1e-0000-4000-8000-000000000001',
  opId: '9b1e0000-0000-4000-8000-000000000002',
  kind: 'extend_volume',
  status: 'extending',
  cluster: 'ceph@rbd',
  owner: null,
  attempt: 0,
  params: { newSize: 2 },
  createdAt: 1,
  updatedAt: 1,
  publishedAt: null,
  revision: '7',
};

describe('the volume API publisher over the job bus', () => {
  it('publishes a recorded op as a job to its cluster and reports it confirmed', async () => {
    const bus = new LocalJobBus({ prefix: 'hearth', prefetch: 4, maxDeliveries: 10 }, { broker: new LocalBroker(), identity: { cluster: 'ceph@rbd', host: 'n1@rbd' }, logger: silentLogger(), registry: new Registry() });
    const seen: JobDelivery<BusMessage>[] = [];
    await bus.consume(async (d) => {
      seen.push(d);
      return dispositions.ack();
    });
    expect(await new JobBusPublisher(bus).publish(op)).toBe('confirmed');
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]?.job).toMatchObject({ v: 1, type: 'volume', id: op.id, opId: op.opId, kind: 'extend_volume', cluster: 'ceph@rbd', attempt: 0 });
    await bus.close();
  });

  it('throws when the bus cannot take it, so the op stays unpublished for the sweep', async () => {
    const bus = new LocalJobBus({ prefix: 'hearth', prefetch: 4, maxDeliveries: 10 }, { broker: new LocalBroker(), identity: { cluster: 'ceph@rbd', host: 'n1@rbd' }, logger: silentLogger(), registry: new Registry() });
    await bus.close();
    await expect(new JobBusPublisher(bus).publish(op)).rejects.toBeInstanceOf(ClosedError);
  });
});
