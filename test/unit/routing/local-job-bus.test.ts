import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JobBus } from '../../../src/routing/job-bus.js';
import { LocalBroker } from '../../../src/routing/local-broker.js';
import { LocalJobBus } from '../../../src/routing/local-job-bus.js';
import { clusterQueueName } from '../../../src/routing/topology.js';
import { describeJobBusContract, type JobBusBackend } from '../../contract/job-bus.contract.js';

const PREFIX = 'hearth';

describeJobBusContract('in-process', async (): Promise<JobBusBackend> => {
  const broker = new LocalBroker();
  const cluster = 'local@be';
  const members: JobBus[] = [];
  return {
    cluster,
    async member(host, options = {}) {
      const bus = new LocalJobBus(
        { prefix: PREFIX, prefetch: options.prefetch ?? 8, maxDeliveries: options.maxDeliveries ?? 10 },
        { broker, identity: { cluster, host }, logger: silentLogger(), registry: options.registry ?? new Registry() },
      );
      await bus.start();
      members.push(bus);
      return bus;
    },
    async injectRaw(content) {
      broker.inject(clusterQueueName(PREFIX, cluster), content);
    },
    async close() {
      await Promise.all(members.map((m) => m.close()));
    },
  };
});
